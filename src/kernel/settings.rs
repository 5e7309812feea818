//! Settings sections the kernel reads (request limits, CORS, the playground, idempotency,
//! loaders, persisted documents, compression) and [`Secret`], the wrapper that keeps secret
//! values out of logs. The composition root's `config::Settings` holds them as sections.

use std::{fmt, path::PathBuf};

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
    /// Allow introspection; unset: allowed in `open` mode, refused in `trusted` mode (the
    /// `production` profile sets `false` unless configured).
    pub allow_introspection: Option<bool>,
    /// Directory of manifests (`*.json`) imported at start.
    pub manifest_dir: Option<PathBuf>,
    /// Bytes of document text kept in memory in front of the database.
    pub cache_capacity: u64,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        Self {
            mode: PersistedMode::Open,
            allow_introspection: None,
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

/// Live-transport settings (WebSocket and SSE), taken from the `[realtime]` and `[auth]`
/// sections.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// Open live connections per user on one replica.
    pub max_connections_per_user: usize,
    /// Subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Seconds a WebSocket may take to send `connection_init`.
    pub ws_init_timeout_seconds: u64,
    /// Seconds between pings (and SSE keep-alive comments and revocation checks).
    pub ws_ping_interval_seconds: u64,
    /// Seconds of silence after which a peer is dropped.
    pub ws_idle_timeout_seconds: u64,
    /// WebSocket read buffer per connection.
    pub ws_read_buffer_bytes: usize,
    /// WebSocket write buffer per connection.
    pub ws_write_buffer_bytes: usize,
    /// Largest WebSocket message.
    pub ws_max_message_bytes: usize,
    /// Clock skew tolerated on a token's expiry.
    pub token_leeway_seconds: u64,
}

/// The settings sections the kernel reads, copied from the process configuration at start.
#[derive(Clone, Debug)]
pub struct KernelSettings {
    /// Query and request limits.
    pub limits: LimitSettings,
    /// Cross-origin settings.
    pub cors: CorsSettings,
    /// Response compression.
    pub compression: CompressionSettings,
    /// Take the client IP from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// WebSocket and SSE.
    pub live: LiveSettings,
}

/// The job queue and its workers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Run job workers in this process (every replica normally does).
    pub workers: bool,
    /// How often an idle worker looks for due jobs, in milliseconds (jobs enqueued by this
    /// replica wake its workers at once).
    pub poll_interval_ms: u64,
    /// How long a claimed job is leased to its worker, in seconds; a job whose worker died runs
    /// again once its lease expires. An attempt is cut off at the lease.
    pub lease_seconds: u64,
    /// Attempts before a job is dead-lettered (a handler may ask for fewer).
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles per attempt, with jitter (half to full).
    pub backoff_base_ms: u64,
    /// Longest retry delay in milliseconds (a provider's `Retry-After` is honoured beyond it).
    pub backoff_max_ms: u64,
    /// How often the queue metrics are refreshed and done jobs swept, in seconds.
    pub maintenance_interval_seconds: u64,
    /// How long done jobs are kept, in seconds (dead ones are kept for operators).
    pub done_retention_seconds: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            workers: true,
            poll_interval_ms: 500,
            lease_seconds: 60,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            maintenance_interval_seconds: 10,
            done_retention_seconds: 7 * 24 * 3600,
        }
    }
}
