//! The upstream layer: HTTP services a screen aggregates next to the database.
//!
//! Every upstream gets its own [`client::UpstreamClient`] (one reqwest client with its own
//! timeouts, concurrency limit, retry policy and circuit breaker) and its own cache
//! ([`cache::UpstreamCache`]: moka with a TTL for values and a shorter one for misses, plus
//! coalescing of concurrent requests for the same key). A screen gives all its upstream calls
//! one deadline ([`CallScope`]); whatever is not there by then is answered as
//! `UPSTREAM_TIMEOUT` while the rest of the screen renders. The request id and a W3C
//! `traceparent` travel with every call. The upstreams themselves — the recommendations
//! service and the link-preview fetcher — live in [`recommendations`] and [`link_preview`],
//! each behind a trait with a typed error.

pub mod breaker;
pub mod cache;
pub mod client;
pub mod link_preview;
pub mod loaders;
pub mod recommendations;
pub mod suggestions;

// The API other concerns use (they reach upstreams only through these names).
pub use self::link_preview::LinkPreview;
pub use self::loaders::{LinkPreviewLoader, SuggestionsLoader, UpstreamContext, upstream_error};
pub use self::suggestions::{
    UserSuggestion, parse_first, suggestion_complexity, suggestions_for, users as suggested_users,
};

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::kernel::infra::metrics::Metrics;
use crate::upstreams::cache::UpstreamCache;

pub use crate::kernel::infra::trace::TraceContext;

/// What one screen's upstream calls share: the deadline and the ids to propagate.
#[derive(Clone, Debug)]
pub struct CallScope {
    /// When the screen stops waiting for upstream data.
    pub deadline: Instant,
    /// The request id of the screen request (sent as `X-Request-Id`).
    pub request_id: Option<String>,
    /// The trace the screen request belongs to (sent as `traceparent`).
    pub trace: TraceContext,
}

impl CallScope {
    /// A scope that ends `deadline` from now.
    pub fn new(deadline: Duration, request_id: Option<String>, trace: TraceContext) -> Self {
        Self { deadline: Instant::now() + deadline, request_id, trace }
    }
}

/// Why one call to an upstream failed. Cheap to clone: a failed call is shared by every
/// request that waited for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call did not finish within its timeout or the screen's deadline.
    #[error("timed out")]
    Timeout,
    /// The circuit breaker is open: the upstream failed repeatedly and is given a rest.
    #[error("circuit open")]
    CircuitOpen,
    /// No connection could be made, or it broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The upstream answered with an error status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The upstream answered something that is not its contract.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The response body is larger than allowed.
    #[error("response too large")]
    TooLarge,
    /// The task making the call went away before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The host resolved to an address the client may not connect to (SSRF guard).
    #[error("address refused")]
    Refused,
}

impl CallError {
    /// True for failures that say nothing about the key (worth retrying later), as opposed to
    /// answers that will not change soon (a 404, a body over the limit), which are cached as
    /// misses.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status(status) => *status >= 500 || *status == 429 || *status == 408,
            Self::TooLarge | Self::InvalidResponse(_) | Self::Refused => false,
            Self::Timeout | Self::CircuitOpen | Self::Connect(_) | Self::Cancelled => true,
        }
    }

    /// True when the attempt counts against the upstream's health (the breaker) and may be
    /// retried; 4xx answers are the caller's fault and are neither.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            Self::Status(status) => *status >= 500 || *status == 429,
            Self::Timeout | Self::Connect(_) | Self::InvalidResponse(_) => true,
            Self::CircuitOpen | Self::TooLarge | Self::Cancelled | Self::Refused => false,
        }
    }

    /// A short, stable reason for `extensions.reason` and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "TIMEOUT",
            Self::CircuitOpen => "CIRCUIT_OPEN",
            Self::Connect(_) => "CONNECT_FAILED",
            Self::Status(_) => "HTTP_STATUS",
            Self::InvalidResponse(_) => "INVALID_RESPONSE",
            Self::TooLarge => "TOO_LARGE",
            Self::Cancelled => "CANCELLED",
            Self::Refused => "BLOCKED_ADDRESS",
        }
    }
}

/// How a failed upstream shows at the GraphQL edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeCode {
    /// `UPSTREAM_UNAVAILABLE`: down, refused, misbehaving or not configured.
    Unavailable,
    /// `UPSTREAM_TIMEOUT`: did not answer within the screen's deadline.
    Timeout,
}

/// An upstream error as the GraphQL edge reports it.
pub trait UpstreamFailure: std::error::Error {
    /// The public code.
    fn edge_code(&self) -> EdgeCode;
    /// The stable machine-readable reason (`extensions.reason`).
    fn reason(&self) -> &'static str;
}

/// The retry, timeout, concurrency, breaker and cache policy of one upstream client.
#[derive(Clone, Debug)]
pub struct ClientPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt, from sending to the end of the response.
    pub request_timeout: Duration,
    /// Calls in flight at once (more wait).
    pub max_concurrent: usize,
    /// Extra attempts for idempotent calls after a transient failure.
    pub retries: u32,
    /// First backoff before a retry (full jitter, doubled per attempt).
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// Failures within `breaker_window` that open the breaker (0: no breaker).
    pub breaker_failures: u32,
    /// Window in which failures are counted.
    pub breaker_window: Duration,
    /// How long the breaker stays open before one probe call is let through.
    pub breaker_open: Duration,
    /// How long a value is cached.
    pub cache_ttl: Duration,
    /// How long a miss or a permanent failure is cached.
    pub negative_cache_ttl: Duration,
    /// Entries kept in the cache.
    pub cache_capacity: u64,
}

/// Upstream services a screen aggregates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamsSettings {
    /// How long one GraphQL operation waits for all its upstream data, in milliseconds; fields
    /// still missing then are `null` with `UPSTREAM_TIMEOUT` and the rest of the screen is sent.
    pub screen_deadline_ms: u64,
    /// The recommendations service (`suggestedUsers`, `suggestedPosts`, `User.relatedUsers`).
    pub recommendations: ServiceSettings,
    /// Link previews fetched from the linked pages (`Post.linkPreview`).
    pub link_previews: LinkPreviewSettings,
}

impl Default for UpstreamsSettings {
    fn default() -> Self {
        Self {
            screen_deadline_ms: 800,
            recommendations: ServiceSettings::default(),
            link_previews: LinkPreviewSettings::default(),
        }
    }
}

/// Settings of an HTTP service with a fixed base URL.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Base URL (`http://recommendations.internal:8091`); unset: the service is off and its
    /// fields answer `UPSTREAM_UNAVAILABLE` with reason `NOT_CONFIGURED`.
    pub base_url: Option<String>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Timeout of one attempt in milliseconds.
    pub request_timeout_ms: u64,
    /// Calls in flight at once.
    pub max_concurrent: usize,
    /// Retries of idempotent calls after a transient failure (jittered exponential backoff).
    pub retries: u32,
    /// First retry backoff in milliseconds.
    pub backoff_base_ms: u64,
    /// Largest retry backoff in milliseconds.
    pub backoff_max_ms: u64,
    /// Failures within `breaker_window_ms` that open the circuit breaker (0: no breaker).
    pub breaker_failures: u32,
    /// Failure-counting window in milliseconds.
    pub breaker_window_ms: u64,
    /// How long the breaker stays open before a probe, in milliseconds.
    pub breaker_open_ms: u64,
    /// Most keys in one batch call (the upstream's own limit).
    pub max_batch_size: usize,
    /// Seconds a result is cached.
    pub cache_ttl_seconds: u64,
    /// Seconds an empty result is cached.
    pub negative_cache_ttl_seconds: u64,
    /// Entries kept in the cache.
    pub cache_capacity: u64,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            connect_timeout_ms: 300,
            request_timeout_ms: 2_000,
            max_concurrent: 64,
            retries: 2,
            backoff_base_ms: 25,
            backoff_max_ms: 250,
            breaker_failures: 5,
            breaker_window_ms: 10_000,
            breaker_open_ms: 5_000,
            max_batch_size: 50,
            cache_ttl_seconds: 60,
            negative_cache_ttl_seconds: 10,
            cache_capacity: 50_000,
        }
    }
}

impl ServiceSettings {
    /// The client policy these settings describe.
    pub fn policy(&self) -> ClientPolicy {
        ClientPolicy {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_concurrent: self.max_concurrent,
            retries: self.retries,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            breaker_failures: self.breaker_failures,
            breaker_window: Duration::from_millis(self.breaker_window_ms),
            breaker_open: Duration::from_millis(self.breaker_open_ms),
            cache_ttl: Duration::from_secs(self.cache_ttl_seconds),
            negative_cache_ttl: Duration::from_secs(self.negative_cache_ttl_seconds),
            cache_capacity: self.cache_capacity,
        }
    }
}

/// Settings of the link-preview fetcher, which talks to arbitrary web sites.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkPreviewSettings {
    /// Fetch previews at all (off: `linkPreview` is always null).
    pub enabled: bool,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Timeout of one page fetch (all redirects included) in milliseconds.
    pub request_timeout_ms: u64,
    /// Pages fetched at once, for the whole server.
    pub max_concurrent: usize,
    /// Retries after a connection failure or a 5xx (GET is idempotent).
    pub retries: u32,
    /// Most redirects followed; every hop is checked like the first URL.
    pub max_redirects: usize,
    /// Most bytes of a page read (the `<head>` is what matters).
    pub max_bytes: usize,
    /// Ports a preview may be fetched from (allowlisted hosts may use any port).
    pub allowed_ports: Vec<u16>,
    /// Hosts, IP addresses or CIDR ranges that may be fetched even though they are private,
    /// loopback or link-local (tests and local demos only: `["127.0.0.1"]`).
    pub allow_hosts: Vec<String>,
    /// `User-Agent` sent to sites.
    pub user_agent: String,
    /// Seconds a preview is cached.
    pub cache_ttl_seconds: u64,
    /// Seconds a page without a preview, or a refused or failed one, is cached.
    pub negative_cache_ttl_seconds: u64,
    /// Previews kept in the cache.
    pub cache_capacity: u64,
}

impl Default for LinkPreviewSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            max_concurrent: 16,
            retries: 1,
            max_redirects: 3,
            max_bytes: 512 * 1024,
            allowed_ports: vec![80, 443, 8080, 8443],
            allow_hosts: Vec::new(),
            user_agent: "mobile-bff-link-preview/0.1 (+https://github.com/mobile-bff)".to_owned(),
            cache_ttl_seconds: 6 * 3600,
            negative_cache_ttl_seconds: 600,
            cache_capacity: 20_000,
        }
    }
}

impl LinkPreviewSettings {
    /// The client policy these settings describe (no breaker: the "upstream" is the whole
    /// web, and one broken site must not switch previews off for every other site; failed
    /// pages are cached as misses instead).
    pub fn policy(&self) -> ClientPolicy {
        ClientPolicy {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_concurrent: self.max_concurrent,
            retries: self.retries,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            breaker_failures: 0,
            breaker_window: Duration::ZERO,
            breaker_open: Duration::ZERO,
            cache_ttl: Duration::from_secs(self.cache_ttl_seconds),
            negative_cache_ttl: Duration::from_secs(self.negative_cache_ttl_seconds),
            cache_capacity: self.cache_capacity,
        }
    }
}

impl UpstreamsSettings {
    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=60_000).contains(&self.screen_deadline_ms) {
            return Err("upstreams.screen_deadline_ms must be 10..=60000".into());
        }
        let rec = &self.recommendations;
        if let Some(base) = &rec.base_url {
            let parsed = url::Url::parse(base)
                .map_err(|err| format!("upstreams.recommendations.base_url is not a URL: {err}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("upstreams.recommendations.base_url must be http or https".into());
            }
        }
        if rec.max_batch_size == 0 || rec.max_concurrent == 0 || rec.request_timeout_ms == 0 {
            return Err(
                "upstreams.recommendations: max_batch_size, max_concurrent and request_timeout_ms must be positive"
                    .into(),
            );
        }
        if rec.retries > 5 {
            return Err("upstreams.recommendations.retries must be at most 5".into());
        }
        let lp = &self.link_previews;
        if lp.max_concurrent == 0 || lp.request_timeout_ms == 0 || lp.max_bytes < 1024 || lp.max_redirects > 10 {
            return Err("upstreams.link_previews: max_concurrent and request_timeout_ms positive, max_bytes ≥ 1024, max_redirects ≤ 10".into());
        }
        if lp.retries > 3 {
            return Err("upstreams.link_previews.retries must be at most 3".into());
        }
        link_preview::ssrf::Allowlist::parse(&lp.allow_hosts)
            .map_err(|entry| format!("upstreams.link_previews.allow_hosts: cannot parse {entry:?}"))?;
        Ok(())
    }
}

/// Why an upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A base URL does not parse.
    #[error("invalid upstream URL: {0}")]
    Url(String),
    /// An allowlist entry does not parse.
    #[error("invalid allowlist entry {0:?}")]
    Allowlist(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Every upstream of the server, with its cache.
pub struct Upstreams {
    /// How long one operation waits for upstream data.
    pub screen_deadline: Duration,
    /// The recommendations service (or [`recommendations::NotConfigured`]).
    pub recommendations: Arc<dyn recommendations::Recommendations>,
    /// Suggestions by subject user.
    pub suggestions_cache: UpstreamCache<i64, recommendations::Suggestions, recommendations::RecommendationsError>,
    /// The link-preview fetcher (or [`link_preview::NoLinkPreviews`]).
    pub link_previews: Arc<dyn link_preview::LinkPreviewer>,
    /// Previews by URL.
    pub preview_cache: UpstreamCache<String, link_preview::LinkPreview, link_preview::LinkPreviewError>,
    /// Where upstream metrics go.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams").field("screen_deadline", &self.screen_deadline).finish_non_exhaustive()
    }
}

impl Upstreams {
    /// The upstreams `settings` describe.
    pub fn new(settings: &UpstreamsSettings, metrics: Arc<Metrics>) -> Result<Self, BuildError> {
        let rec = &settings.recommendations;
        let recommendations: Arc<dyn recommendations::Recommendations> = match &rec.base_url {
            Some(base) => Arc::new(recommendations::HttpRecommendations::new(base, rec, metrics.clone())?),
            None => Arc::new(recommendations::NotConfigured),
        };
        let policy = rec.policy();
        let suggestions_cache = UpstreamCache::new(
            "recommendations",
            policy.cache_capacity,
            policy.cache_ttl,
            policy.negative_cache_ttl,
            metrics.clone(),
        );
        let lp = &settings.link_previews;
        let link_previews: Arc<dyn link_preview::LinkPreviewer> = if lp.enabled {
            Arc::new(link_preview::HttpLinkPreviewer::new(lp, metrics.clone())?)
        } else {
            Arc::new(link_preview::NoLinkPreviews)
        };
        let policy = lp.policy();
        let preview_cache = UpstreamCache::new(
            "link_previews",
            policy.cache_capacity,
            policy.cache_ttl,
            policy.negative_cache_ttl,
            metrics.clone(),
        );
        Ok(Self {
            screen_deadline: Duration::from_millis(settings.screen_deadline_ms),
            recommendations,
            suggestions_cache,
            link_previews,
            preview_cache,
            metrics,
        })
    }
}
