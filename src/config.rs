//! Typed configuration: `BFF_*` environment variables over an optional TOML file.
//!
//! Every setting has a default that runs the embedded mode (SQLite under `./data`). Nested
//! sections are reached from the environment with a double underscore
//! (`BFF_LIMITS__MAX_DEPTH=12`). Unknown keys are rejected at start so that a typo never
//! silently falls back to a default, and secrets are wrapped in [`Secret`], whose `Debug`
//! output is redacted so they can never reach a log line.

use std::{fmt, net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// A configuration value that must never be printed (keys, passwords, tokens).
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole configuration of one `mobile-bff` process.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server binds (`BFF_LISTEN`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the SQLite file, generated keys and local media (`BFF_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://...` (embedded) or `postgres://...` (cluster) (`BFF_DATABASE_URL`).
    pub database_url: Secret,
    /// Maximum pooled database connections.
    pub database_max_connections: u32,
    /// `redis://…` (cluster mode, optional): shared cache tier (`BFF_REDIS_URL`).
    pub redis_url: Option<Secret>,
    /// Public base URL used to build absolute media URLs; empty means relative URLs.
    pub public_base_url: String,
    /// Log filter in `tracing` syntax (`BFF_LOG`), e.g. `info,mobile_bff=debug`.
    pub log: String,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_seconds: u64,
    /// Access-token settings.
    pub auth: AuthSettings,
    /// Query and request limits.
    pub limits: LimitSettings,
    /// Cross-origin settings for browser clients (native apps do not need CORS).
    pub cors: CorsSettings,
    /// Playground settings.
    pub playground: PlaygroundSettings,
    /// Idempotency-key settings.
    pub idempotency: IdempotencySettings,
    /// DataLoader settings.
    pub dataloader: DataLoaderSettings,
    /// Persisted queries and trusted documents.
    pub persisted: PersistedSettings,
    /// Response compression.
    pub compression: CompressionSettings,
    /// Rate limits.
    pub rate_limits: crate::kernel::infra::rate_limit::RateLimitSettings,
    /// Use the first `X-Forwarded-For` address as the client IP (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Certificate / public-key files whose SPKI pins are published (current and backup).
    pub pins: Vec<crate::kernel::infra::pins::PinSource>,
    /// Registered OAuth2 public clients (mobile apps) for the authorization-code + PKCE flow.
    pub oauth_clients: Vec<OAuthClient>,
    /// HTTP services a screen aggregates (recommendations, link previews).
    pub upstreams: crate::upstreams::UpstreamsSettings,
    /// Real-time: event log, subscriptions, sockets, presence.
    pub realtime: crate::realtime::settings::RealtimeSettings,
}

/// A registered OAuth2 public client.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// The `client_id`.
    pub client_id: String,
    /// Exact redirect URIs allowed: custom schemes (`com.example.app:/oauth`) or https app links.
    pub redirect_uris: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: Secret::new("sqlite://data/mobile-bff.db?mode=rwc"),
            database_max_connections: 16,
            redis_url: None,
            public_base_url: String::new(),
            log: "info".to_owned(),
            log_json: false,
            shutdown_grace_seconds: 10,
            auth: AuthSettings::default(),
            limits: LimitSettings::default(),
            cors: CorsSettings::default(),
            playground: PlaygroundSettings::default(),
            idempotency: IdempotencySettings::default(),
            dataloader: DataLoaderSettings::default(),
            persisted: PersistedSettings::default(),
            compression: CompressionSettings::default(),
            rate_limits: crate::kernel::infra::rate_limit::RateLimitSettings::default(),
            trust_forwarded_for: false,
            pins: Vec::new(),
            oauth_clients: Vec::new(),
            upstreams: crate::upstreams::UpstreamsSettings::default(),
            realtime: Default::default(),
        }
    }
}

/// Access-token settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Ed25519 signing key in PKCS#8 PEM. Empty: generated into `data_dir` on first start.
    pub signing_key_pem: Secret,
    /// Retired signing keys (PKCS#8 private or SPKI public PEM) still accepted for verification
    /// and published in the JWKS until the tokens they signed have expired.
    pub previous_keys_pem: Vec<Secret>,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Access-token lifetime in seconds (5 to 30 minutes).
    pub access_token_ttl_seconds: u64,
    /// Clock skew tolerated when checking `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Sliding refresh-token lifetime: each rotation extends the session by this many days.
    pub refresh_sliding_days: u64,
    /// Absolute cap of a refresh-token family (a session), in days.
    pub refresh_absolute_days: u64,
    /// Window in which the same used refresh token from the same device gets the same new pair
    /// back instead of a family revocation (apps fire concurrent refreshes).
    pub refresh_grace_seconds: u64,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// How long a device's "not revoked" answer is cached, in seconds (revocation on this
    /// replica is immediate; other replicas see it within this time).
    pub revocation_cache_seconds: u64,
    /// How long a biometric challenge may be answered, in seconds.
    pub biometric_challenge_seconds: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            signing_key_pem: Secret::default(),
            previous_keys_pem: Vec::new(),
            issuer: "mobile-bff".to_owned(),
            audience: "mobile-bff".to_owned(),
            access_token_ttl_seconds: 15 * 60,
            leeway_seconds: 30,
            refresh_sliding_days: 60,
            refresh_absolute_days: 365,
            refresh_grace_seconds: 10,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            revocation_cache_seconds: 5,
            biometric_challenge_seconds: 60,
        }
    }
}

/// Query and request limits; every one is enforced with a JSON error, never a crash.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Maximum selection depth of one operation.
    pub max_depth: usize,
    /// Maximum complexity (fields weighted by page size) of one operation.
    pub max_complexity: usize,
    /// Maximum field selections (aliases included) in one document.
    pub max_fields: usize,
    /// Maximum `first`/`last` of any connection.
    pub max_page_size: usize,
    /// Maximum operations in one batched request.
    pub max_batch_size: usize,
    /// Maximum request body in bytes, after decompression.
    pub max_body_bytes: usize,
    /// Maximum ids in `nodes(ids:)`.
    pub max_node_ids: usize,
    /// Maximum length of a query document in bytes.
    pub max_query_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_complexity: 10_000,
            max_fields: 300,
            max_page_size: 100,
            max_batch_size: 20,
            max_body_bytes: 1024 * 1024,
            max_node_ids: 100,
            max_query_bytes: 64 * 1024,
        }
    }
}

/// Cross-origin settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Allowed origins (`https://app.example.com`), or `["*"]` for any. Empty: CORS off.
    pub allowed_origins: Vec<String>,
}

/// Playground settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaygroundSettings {
    /// Serve the GraphiQL playground at `/playground`.
    pub enabled: bool,
    /// Offer a one-click login as a demo user. Development only: anyone who can reach the
    /// server can then act as that user.
    pub dev_login: bool,
}

impl Default for PlaygroundSettings {
    fn default() -> Self {
        Self { enabled: true, dev_login: false }
    }
}

/// Idempotency-key settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencySettings {
    /// How long a key is remembered, in seconds.
    pub retention_seconds: u64,
    /// How long a retry waits for a concurrent first attempt to finish, in milliseconds.
    pub wait_for_inflight_ms: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self { retention_seconds: 24 * 3600, wait_for_inflight_ms: 5_000 }
    }
}

/// DataLoader settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataLoaderSettings {
    /// How long a loader waits to collect keys before it runs a batch, in microseconds.
    pub delay_micros: u64,
    /// Largest batch one loader sends in one statement.
    pub max_batch_size: usize,
}

impl Default for DataLoaderSettings {
    fn default() -> Self {
        Self { delay_micros: 0, max_batch_size: 500 }
    }
}

/// Which operations the server runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PersistedMode {
    /// Any valid operation; clients may register automatic persisted queries.
    #[default]
    Open,
    /// Only operations from imported manifests (`PERSISTED_QUERY_REQUIRED` otherwise).
    Trusted,
}

/// Persisted queries and trusted documents.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistedSettings {
    /// `open` or `trusted`.
    pub mode: PersistedMode,
    /// Allow introspection in `trusted` mode (it is always allowed in `open` mode).
    pub allow_introspection: bool,
    /// Directory of manifests (`*.json`) imported at start.
    pub manifest_dir: Option<PathBuf>,
    /// Bytes of document text kept in memory in front of the database.
    pub cache_capacity: u64,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        Self {
            mode: PersistedMode::Open,
            allow_introspection: false,
            manifest_dir: None,
            cache_capacity: 32 * 1024 * 1024,
        }
    }
}

/// Response compression.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionSettings {
    /// Responses smaller than this many bytes are sent uncompressed.
    pub min_bytes: u64,
}

impl Default for CompressionSettings {
    fn default() -> Self {
        Self { min_bytes: 860 }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, a value has the wrong type, or the TOML file is malformed.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value is outside its allowed range.
    #[error("invalid configuration: {0}")]
    OutOfRange(String),
}

impl Settings {
    /// Loads defaults, then the TOML file (when given), then `BFF_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // `BFF_TEST_*` variables belong to the test harness, not to the server.
        let env = Env::prefixed("BFF_")
            .split("__")
            .lowercase(true)
            .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"));
        figment = figment.merge(env);
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ttl = self.auth.access_token_ttl_seconds;
        if !(300..=1800).contains(&ttl) {
            return Err(ConfigError::OutOfRange(format!(
                "auth.access_token_ttl_seconds must be between 300 and 1800, got {ttl}"
            )));
        }
        let auth = &self.auth;
        if auth.refresh_sliding_days == 0 || auth.refresh_absolute_days < auth.refresh_sliding_days {
            return Err(ConfigError::OutOfRange(
                "auth.refresh_sliding_days must be positive and at most auth.refresh_absolute_days".into(),
            ));
        }
        if auth.refresh_grace_seconds > 120 {
            return Err(ConfigError::OutOfRange("auth.refresh_grace_seconds must be at most 120".into()));
        }
        if auth.argon2_memory_kib < 8 || auth.argon2_iterations == 0 {
            return Err(ConfigError::OutOfRange("auth.argon2_memory_kib ≥ 8 and auth.argon2_iterations ≥ 1".into()));
        }
        let limits = &self.limits;
        if limits.max_page_size == 0 || limits.max_page_size > 1000 {
            return Err(ConfigError::OutOfRange("limits.max_page_size must be 1..=1000".into()));
        }
        if limits.max_batch_size == 0 || limits.max_depth == 0 || limits.max_complexity == 0 || limits.max_fields == 0 {
            return Err(ConfigError::OutOfRange(
                "limits.max_batch_size, max_depth, max_complexity and max_fields must be positive".into(),
            ));
        }
        if limits.max_body_bytes < 1024 {
            return Err(ConfigError::OutOfRange("limits.max_body_bytes must be ≥ 1024".into()));
        }
        self.upstreams.validate().map_err(ConfigError::OutOfRange)?;
        if self.dataloader.max_batch_size == 0 {
            return Err(ConfigError::OutOfRange("dataloader.max_batch_size must be positive".into()));
        }
        self.realtime.validate().map_err(ConfigError::OutOfRange)?;
        Ok(())
    }

    /// True when the database is PostgreSQL (cluster mode).
    pub fn is_postgres(&self) -> bool {
        let url = self.database_url.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut settings = Settings::default();
        settings.auth.signing_key_pem = Secret::new("-----BEGIN PRIVATE KEY----- top secret");
        settings.database_url = Secret::new("postgres://user:hunter2@db/app");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("top secret"));
        assert!(!printed.contains("hunter2"));
        assert!(printed.contains("Secret(***)"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bff.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlisten_port = 1\n").expect("write");
        let err = Settings::load(Some(&path)).expect_err("unknown key must fail");
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn file_values_apply_and_ranges_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bff.toml");
        std::fs::write(&path, "[limits]\nmax_depth = 7\n").expect("write");
        let settings = Settings::load(Some(&path)).expect("valid file");
        assert_eq!(settings.limits.max_depth, 7);

        std::fs::write(&path, "[auth]\naccess_token_ttl_seconds = 60\n").expect("write");
        let err = Settings::load(Some(&path)).expect_err("ttl out of range");
        assert!(matches!(err, ConfigError::OutOfRange(_)));
    }
}
