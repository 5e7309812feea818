//! Typed configuration: `BFF_*` environment variables over an optional TOML file.
//!
//! Every setting has a default that runs the embedded mode (SQLite under `./data`). Nested
//! sections are reached from the environment with a double underscore
//! (`BFF_LIMITS__MAX_DEPTH=12`). Unknown keys are rejected at start so that a typo never
//! silently falls back to a default, and secrets are wrapped in [`Secret`], whose `Debug`
//! output is redacted so they can never reach a log line. `BFF_CONFIG` names the TOML file
//! (like `--config`) and is not itself a setting.
//!
//! `profile = "production"` (`BFF_PROFILE`) changes the defaults an operator forgets: no
//! playground, no open introspection, trusted documents only — each unless configured
//! explicitly in the file or the environment ([`Settings::load`]). A production-looking
//! deployment still on the development profile is named by [`Settings::production_warnings`].

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use crate::{
    auth::settings::{AuthSettings, OAuthClient},
    kernel::settings::{
        CompressionSettings, CorsSettings, DataLoaderSettings, IdempotencySettings, JobSettings, KernelSettings,
        LimitSettings, LiveSettings, PersistedMode, PersistedSettings, PlaygroundSettings, Secret,
    },
};

/// Which defaults apply.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Playground, open introspection and any operation: what `cargo run` wants.
    #[default]
    Development,
    /// Playground off, introspection off, `persisted.mode = "trusted"`, unless configured.
    Production,
}

/// The settings (figment keys) the production profile changes when they are not configured.
const PRODUCTION_DEFAULTS: [&str; 3] = ["playground.enabled", "persisted.allow_introspection", "persisted.mode"];

/// The whole configuration of one `mobile-bff` process.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `development` (default) or `production` (`BFF_PROFILE`): see [`Profile`].
    pub profile: Profile,
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
    /// Minimum and recommended app versions per platform (starting values).
    pub versions: crate::flags::settings::VersionsSettings,
    /// What the `bootstrap` query hands out.
    pub bootstrap: crate::flags::settings::BootstrapSettings,
    /// Feature flags.
    pub flags: crate::flags::settings::FlagSettings,
    /// The durable job queue and its workers.
    pub jobs: JobSettings,
    /// Push notifications: APNs and FCM credentials, delivery limits.
    pub push: crate::push::settings::PushSettings,
    /// Media: storage, per-file limits and quotas, decoding limits, the variant ladder.
    pub media: crate::media::settings::MediaSettings,
    /// Offline-first sync of notes: bounds, tombstone retention, conflict strategies.
    pub sync: crate::sync::settings::SyncSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
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
            versions: Default::default(),
            bootstrap: Default::default(),
            flags: Default::default(),
            jobs: JobSettings::default(),
            push: crate::push::settings::PushSettings::default(),
            media: crate::media::settings::MediaSettings::default(),
            sync: crate::sync::settings::SyncSettings::default(),
        }
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

/// Environment keys (after `BFF_`) whose values are taken as text, never parsed as numbers.
fn is_raw_string(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("versions__")
        && (key.ends_with("__minimum") || key.ends_with("__recommended") || key.ends_with("__store_url"))
}

impl Settings {
    /// The sections the kernel reads.
    pub fn kernel(&self) -> KernelSettings {
        let realtime = &self.realtime;
        KernelSettings {
            limits: self.limits.clone(),
            cors: self.cors.clone(),
            compression: self.compression.clone(),
            trust_forwarded_for: self.trust_forwarded_for,
            live: LiveSettings {
                max_connections_per_user: realtime.max_connections_per_user,
                max_subscriptions_per_connection: realtime.max_subscriptions_per_connection,
                ws_init_timeout_seconds: realtime.ws_init_timeout_seconds,
                ws_ping_interval_seconds: realtime.ws_ping_interval_seconds,
                ws_idle_timeout_seconds: realtime.ws_idle_timeout_seconds,
                ws_read_buffer_bytes: realtime.ws_read_buffer_bytes,
                ws_write_buffer_bytes: realtime.ws_write_buffer_bytes,
                ws_max_message_bytes: realtime.ws_max_message_bytes,
                token_leeway_seconds: self.auth.leeway_seconds,
            },
        }
    }

    /// Loads defaults, then the TOML file (when given), then `BFF_*` variables; then the
    /// profile's defaults for what neither the file nor the environment set.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        // What the operator configured, without the defaults: the profile fills the rest.
        let mut configured = Figment::new();
        if let Some(path) = file {
            configured = configured.merge(Toml::file_exact(path));
        }
        // `BFF_CONFIG` is the file's name (read by the CLI, like `--config`) and `BFF_TEST_*`
        // variables belong to the test harness: neither is a setting.
        let env = Env::prefixed("BFF_").split("__").lowercase(true).filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && !key.starts_with("test_") && !is_raw_string(&key)
        });
        configured = configured.merge(env);
        // Versions stay text: `BFF_VERSIONS__IOS__MINIMUM=2.10` is 2.10, not the float 2.1.
        for (key, value) in std::env::vars() {
            if let Some(rest) = key.strip_prefix("BFF_")
                && is_raw_string(rest)
            {
                let path = rest.to_ascii_lowercase().replace("__", ".");
                configured = configured.merge(Serialized::default(&path, value));
            }
        }
        let figment = Figment::from(Serialized::defaults(Settings::default())).merge(configured.clone());
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        settings.apply_profile(|key| configured.contains(key));
        settings.validate()?;
        Ok(settings)
    }

    /// Applies the profile's defaults to each setting `configured` says was not set.
    pub fn apply_profile(&mut self, configured: impl Fn(&str) -> bool) {
        if self.profile != Profile::Production {
            return;
        }
        for key in PRODUCTION_DEFAULTS.into_iter().filter(|key| !configured(key)) {
            match key {
                "playground.enabled" => self.playground.enabled = false,
                "persisted.allow_introspection" => self.persisted.allow_introspection = Some(false),
                _ => self.persisted.mode = PersistedMode::Trusted,
            }
        }
    }

    /// Why this configuration looks like a production deployment running the development
    /// profile's defaults (empty when it does not): logged as warnings at start.
    pub fn production_warnings(&self) -> Vec<String> {
        if self.profile == Profile::Production {
            return Vec::new();
        }
        let mut looks = Vec::new();
        if self.is_postgres() {
            looks.push("the database is PostgreSQL".to_owned());
        }
        if !self.listen.ip().is_loopback() {
            looks.push(format!("it listens on {}, not a loopback address", self.listen));
        }
        if looks.is_empty() {
            return Vec::new();
        }
        let mut open = Vec::new();
        if self.playground.enabled {
            open.push("the playground is on");
        }
        if self.persisted.allow_introspection.unwrap_or(self.persisted.mode != PersistedMode::Trusted) {
            open.push("introspection is open");
        }
        if self.persisted.mode == PersistedMode::Open {
            open.push("any operation runs (persisted.mode = open)");
        }
        if open.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "this looks like a production deployment ({}) but runs the development defaults: {}; \
             set profile = \"production\" (BFF_PROFILE=production) or configure these explicitly",
            looks.join(", "),
            open.join(", ")
        )]
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
        self.versions.validate().map_err(ConfigError::OutOfRange)?;
        if self.jobs.lease_seconds == 0 || self.jobs.max_attempts == 0 {
            return Err(ConfigError::OutOfRange("jobs.lease_seconds and jobs.max_attempts must be positive".into()));
        }
        self.push.validate().map_err(ConfigError::OutOfRange)?;
        self.media.validate().map_err(ConfigError::OutOfRange)?;
        self.sync.validate().map_err(ConfigError::OutOfRange)?;
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
    fn the_production_profile_closes_what_is_not_configured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bff.toml");
        std::fs::write(&path, "profile = \"production\"\n").expect("write");
        let settings = Settings::load(Some(&path)).expect("valid file");
        assert!(!settings.playground.enabled);
        assert_eq!(settings.persisted.mode, PersistedMode::Trusted);
        assert_eq!(settings.persisted.allow_introspection, Some(false));
        assert!(settings.production_warnings().is_empty());

        let explicit = "profile = \"production\"\n[playground]\nenabled = true\n[persisted]\nmode = \"open\"\n";
        std::fs::write(&path, explicit).expect("write");
        let settings = Settings::load(Some(&path)).expect("valid file");
        assert!(settings.playground.enabled, "explicit settings win over the profile");
        assert_eq!(settings.persisted.mode, PersistedMode::Open);
        assert_eq!(settings.persisted.allow_introspection, Some(false), "not configured: still closed");

        let development = Settings::default();
        assert!(development.production_warnings().is_empty(), "loopback SQLite is not production");
        let exposed = Settings { listen: "0.0.0.0:8080".parse().expect("addr"), ..Settings::default() };
        let warning = exposed.production_warnings().join("");
        assert!(warning.contains("0.0.0.0:8080") && warning.contains("playground"), "{warning}");
        let clustered = Settings { database_url: Secret::new("postgres://db/app"), ..Settings::default() };
        assert!(clustered.production_warnings().join("").contains("PostgreSQL"));
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
