//! Prometheus metrics of one server instance, rendered at `/metrics`.
//!
//! Each [`crate::app::App`] owns its registry (no global recorder), so several servers in one
//! process — as in the integration tests — never mix their counts. Label values that come
//! from clients go through [`BoundedLabels`] first.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::kernel::infra::labels::{BoundedLabels, Label};

/// Labels of one GraphQL or HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Operation name (bounded), `-` when anonymous, or the route for non-GraphQL requests.
    pub operation: Label,
    /// HTTP status code.
    pub status: u16,
    /// `ios`, `android`, `web` or `unknown`.
    pub platform: &'static str,
    /// `major.minor` of `X-App-Version` (bounded) or `unknown`.
    pub app_version: Label,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Operation name (bounded) or route.
    pub operation: Label,
}

/// Labels of a body-size counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    /// Operation name (bounded) or route.
    pub operation: Label,
    /// `raw` (before compression) or `wire` (as sent).
    pub stage: &'static str,
}

/// Labels of a persisted-document lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DocumentLabels {
    /// `hit` (id only, found), `registered` (id + text), `miss` (id unknown), `text` (no id).
    pub outcome: String,
}

/// Labels of a DataLoader batch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoaderLabels {
    /// The loader's name.
    pub loader: String,
}

/// Labels of an upstream metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// `recommendations` or `link_previews`.
    pub upstream: String,
}

/// Labels of an upstream call or cache lookup outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamOutcomeLabels {
    /// `recommendations` or `link_previews`.
    pub upstream: String,
    /// Calls: `ok`, `retried`, or a failure reason (`TIMEOUT`, `HTTP_STATUS`, ...). Cache:
    /// `hit`, `coalesced` (waited for another request's call) or `miss`.
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    /// Requests by operation, status, platform and app version.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds by operation.
    pub request_seconds: HistogramFamily<LatencyLabels>,
    /// SQL statements executed (`bff_db_statements_total`).
    pub db_statements: Counter,
    /// SQL statements that failed.
    pub db_statement_errors: Counter,
    /// SQL statements of background work (job workers), not counted in `db_statements`.
    pub db_background_statements: Counter,
    /// Request body bytes by operation: `wire` (as received, maybe compressed) and `raw`.
    pub request_bytes: Family<BytesLabels, Counter>,
    /// Response body bytes by operation: `raw` (before compression) and `wire` (as sent).
    pub response_bytes: Family<BytesLabels, Counter>,
    /// Persisted-document lookups by outcome.
    pub documents: Family<DocumentLabels, Counter>,
    /// Keys per DataLoader batch, by loader.
    pub loader_batch_size: HistogramFamily<LoaderLabels>,
    /// Upstream call attempts by upstream and outcome.
    pub upstream_calls: Family<UpstreamOutcomeLabels, Counter>,
    /// Upstream call latency (one attempt, to the response headers) in seconds.
    pub upstream_seconds: HistogramFamily<UpstreamLabels>,
    /// Keys per upstream batch call.
    pub upstream_batch_size: HistogramFamily<UpstreamLabels>,
    /// Upstream cache lookups by result.
    pub upstream_cache: Family<UpstreamOutcomeLabels, Counter>,
    /// Circuit-breaker state per upstream: 0 closed, 1 half-open, 2 open.
    pub upstream_breaker_state: Family<UpstreamLabels, Gauge>,
    /// Operation names admitted as label values.
    pub operation_labels: BoundedLabels,
    /// App versions admitted as label values.
    pub app_version_labels: BoundedLabels,
    /// Real-time connections, subscriptions and closes.
    pub live: LiveMetrics,
    /// The job queue.
    pub jobs: JobMetrics,
    /// Push sends by provider and outcome.
    pub push_sends: Family<PushLabels, Counter>,
    /// Feature-flag evaluations by flag, variant and value.
    pub flag_evaluations: Family<FlagLabels, Counter>,
    /// Flag keys admitted as label values (clients may ask for any key).
    pub flag_labels: BoundedLabels,
}

/// Labels of a feature-flag evaluation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlagLabels {
    /// The flag (`other` past the label budget).
    pub flag: Label,
    /// The variant (`disabled` for none).
    pub variant: Label,
    /// `true` or `false`.
    pub enabled: &'static str,
}

/// Labels of a push send outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    /// `APNS` or `FCM`.
    pub provider: String,
    /// `delivered`, `logged` (log provider), `token_dead`, `refused` or `transient`.
    pub outcome: String,
}

/// Labels of a job-queue gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The handler kind (`push.send`, ...): a fixed set registered by the code.
    pub kind: String,
    /// `queued`, `running`, `done` or `dead`.
    pub status: String,
}

/// Labels of a job attempt outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcomeLabels {
    /// The handler kind.
    pub kind: String,
    /// `done`, `failed` (a retry is scheduled), `dead`, `reclaimed` (a lease expired and the
    /// job runs again: a possible duplicate) or `lease_lost` (a result came after the lease).
    pub outcome: String,
}

/// Labels of a per-kind gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobKindLabels {
    /// The handler kind.
    pub kind: String,
}

/// Job-queue metrics (`bff_jobs*`): rows by kind and status (refreshed from the table, so
/// they cover every replica), the age of the oldest due job, and attempt outcomes counted by
/// this replica's workers.
#[derive(Clone, Default)]
pub struct JobMetrics {
    /// Rows by kind and status.
    pub rows: Family<JobLabels, Gauge>,
    /// Seconds the oldest due queued job has waited, by kind.
    pub oldest_due_seconds: Family<JobKindLabels, Gauge>,
    /// Attempt outcomes by kind.
    pub outcomes: Family<JobOutcomeLabels, Counter>,
}

impl JobMetrics {
    fn register(registry: &mut Registry) -> Self {
        let jobs = Self::default();
        registry.register("jobs", "Job-queue rows by kind and status", jobs.rows.clone());
        registry.register(
            "jobs_oldest_due_seconds",
            "Seconds the oldest due queued job has waited, by kind",
            jobs.oldest_due_seconds.clone(),
        );
        registry.register("job_attempts", "Job attempt outcomes by kind", jobs.outcomes.clone());
        jobs
    }

    /// Counts one attempt outcome.
    pub fn outcome(&self, kind: &str, outcome: &str) {
        self.outcomes.get_or_create(&JobOutcomeLabels { kind: kind.to_owned(), outcome: outcome.to_owned() }).inc();
    }
}

/// Labels of real-time connection metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LiveLabels {
    /// `ws` or `sse`.
    pub transport: String,
}

/// Labels of WebSocket close counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The close code sent (or `peer` when the client closed or vanished).
    pub code: String,
}

/// Real-time metrics (`bff_live_*`).
#[derive(Clone, Default)]
pub struct LiveMetrics {
    /// Open connections by transport.
    pub connections: Family<LiveLabels, Gauge>,
    /// Active subscriptions (all transports).
    pub subscriptions: Gauge,
    /// Subscription results sent.
    pub messages_sent: Counter,
    /// Users with a shared feed (log subscriptions) on this replica.
    pub feeds: Gauge,
    /// Events resolved by the feeds (once per event and operation, whatever the subscribers).
    pub feed_resolutions: Counter,
    /// WebSocket connections ended, by close code.
    pub closes: Family<CloseLabels, Counter>,
    /// Subscriptions joined to a shared feed (their start position fixed from then on).
    pub feed_joins: Counter,
    /// `pollEvents` requests waiting for news.
    pub polls_waiting: Gauge,
}

impl LiveMetrics {
    fn register(registry: &mut Registry) -> Self {
        let live = Self::default();
        registry.register("live_connections", "Open real-time connections by transport", live.connections.clone());
        registry.register("live_subscriptions", "Active subscriptions", live.subscriptions.clone());
        registry.register("live_messages_sent", "Subscription results sent", live.messages_sent.clone());
        registry.register("live_feeds", "Users with a shared feed on this replica", live.feeds.clone());
        registry.register(
            "live_feed_resolutions",
            "Resolutions of events by the shared feeds (one per event and operation)",
            live.feed_resolutions.clone(),
        );
        registry.register("live_closes", "WebSocket connections ended, by close code", live.closes.clone());
        registry.register(
            "live_feed_joins",
            "Subscriptions joined to a shared feed (events from then on reach them)",
            live.feed_joins.clone(),
        );
        registry.register("live_polls_waiting", "pollEvents requests waiting for news", live.polls_waiting.clone());
        live
    }

    /// The open-connection gauge of `transport`.
    pub fn connections_of(&self, transport: &str) -> Gauge {
        self.connections.get_or_create(&LiveLabels { transport: transport.to_owned() }).clone()
    }

    /// Counts a WebSocket end.
    pub fn closed(&self, code: &str) {
        self.closes.get_or_create(&CloseLabels { code: code.to_owned() }).inc();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `bff_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bff");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests by operation, status and client", requests.clone());
        let request_seconds: HistogramFamily<LatencyLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("request_duration_seconds", "Request latency", request_seconds.clone());
        let db_statements = Counter::default();
        registry.register("db_statements", "SQL statements executed", db_statements.clone());
        let db_background_statements = Counter::default();
        registry.register(
            "db_background_statements",
            "SQL statements executed by background work (job workers)",
            db_background_statements.clone(),
        );
        let db_statement_errors = Counter::default();
        registry.register("db_statement_errors", "SQL statements that failed", db_statement_errors.clone());
        let request_bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "request_bytes",
            "Request body bytes, as received (wire) and decompressed (raw)",
            request_bytes.clone(),
        );
        let response_bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "response_bytes",
            "Response body bytes, before (raw) and after (wire) compression",
            response_bytes.clone(),
        );
        let documents = Family::<DocumentLabels, Counter>::default();
        registry.register("persisted_documents", "Persisted-document lookups by outcome", documents.clone());
        let loader_batch_size: HistogramFamily<LoaderLabels> = Family::new_with_constructor(batch_histogram);
        registry.register("dataloader_batch_size", "Keys per DataLoader batch", loader_batch_size.clone());
        let upstream_calls = Family::<UpstreamOutcomeLabels, Counter>::default();
        registry.register("upstream_calls", "Upstream call attempts by outcome", upstream_calls.clone());
        let upstream_seconds: HistogramFamily<UpstreamLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("upstream_call_duration_seconds", "Upstream call latency", upstream_seconds.clone());
        let upstream_batch_size: HistogramFamily<UpstreamLabels> = Family::new_with_constructor(batch_histogram);
        registry.register("upstream_batch_size", "Keys per upstream batch call", upstream_batch_size.clone());
        let upstream_cache = Family::<UpstreamOutcomeLabels, Counter>::default();
        registry.register("upstream_cache", "Upstream cache lookups (hit, coalesced, miss)", upstream_cache.clone());
        let upstream_breaker_state = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "upstream_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open",
            upstream_breaker_state.clone(),
        );
        let live = LiveMetrics::register(&mut registry);
        let jobs = JobMetrics::register(&mut registry);
        let push_sends = Family::<PushLabels, Counter>::default();
        registry.register("push_sends", "Push sends by provider and outcome", push_sends.clone());
        let flag_evaluations = Family::<FlagLabels, Counter>::default();
        registry.register(
            "flag_evaluations",
            "Feature-flag evaluations by flag, variant and value",
            flag_evaluations.clone(),
        );
        Self {
            flag_evaluations,
            flag_labels: BoundedLabels::new(300),
            live,
            jobs,
            push_sends,
            registry,
            upstream_calls,
            upstream_seconds,
            upstream_batch_size,
            upstream_cache,
            upstream_breaker_state,
            requests,
            request_seconds,
            db_statements,
            db_statement_errors,
            db_background_statements,
            request_bytes,
            response_bytes,
            documents,
            loader_batch_size,
            operation_labels: BoundedLabels::new(200),
            app_version_labels: BoundedLabels::new(50),
        }
    }

    /// Records one DataLoader batch of `size` keys.
    pub fn observe_batch(&self, loader: &str, size: usize) {
        self.loader_batch_size.get_or_create(&LoaderLabels { loader: loader.to_owned() }).observe(size as f64);
    }

    /// Records cache lookups of one upstream batch.
    pub fn observe_upstream_cache(&self, upstream: &str, hits: u64, coalesced: u64, misses: u64) {
        for (outcome, n) in [("hit", hits), ("coalesced", coalesced), ("miss", misses)] {
            if n > 0 {
                let labels = UpstreamOutcomeLabels { upstream: upstream.to_owned(), outcome: outcome.to_owned() };
                self.upstream_cache.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Records one upstream call attempt.
    pub fn observe_upstream_call(&self, upstream: &str, outcome: &str, seconds: Option<f64>) {
        let labels = UpstreamOutcomeLabels { upstream: upstream.to_owned(), outcome: outcome.to_owned() };
        self.upstream_calls.get_or_create(&labels).inc();
        if let Some(seconds) = seconds {
            self.upstream_seconds.get_or_create(&UpstreamLabels { upstream: upstream.to_owned() }).observe(seconds);
        }
    }

    /// Records the size of one upstream batch call.
    pub fn observe_upstream_batch(&self, upstream: &str, keys: usize) {
        self.upstream_batch_size.get_or_create(&UpstreamLabels { upstream: upstream.to_owned() }).observe(keys as f64);
    }

    /// Publishes a breaker state (0 closed, 1 half-open, 2 open).
    pub fn set_breaker_state(&self, upstream: &str, state: i64) {
        self.upstream_breaker_state.get_or_create(&UpstreamLabels { upstream: upstream.to_owned() }).set(state);
    }

    /// Counts one evaluation of `flag` giving `variant`.
    pub fn count_flag_evaluation(&self, flag: &str, variant: &str, enabled: bool) {
        let labels = FlagLabels {
            flag: self.flag_labels.admit(flag),
            variant: self.flag_labels.admit(variant),
            enabled: if enabled { "true" } else { "false" },
        };
        self.flag_evaluations.get_or_create(&labels).inc();
    }

    /// Counts one push send outcome.
    pub fn push_outcome(&self, provider: &str, outcome: &str) {
        self.push_sends.get_or_create(&PushLabels { provider: provider.to_owned(), outcome: outcome.to_owned() }).inc();
    }

    /// Counts a decompressed request body.
    pub fn observe_request_bytes(&self, raw: usize) {
        self.request_bytes
            .get_or_create(&BytesLabels { operation: Label::Static("graphql"), stage: "raw" })
            .inc_by(raw as u64);
    }

    /// Counts one persisted-document outcome.
    pub fn observe_document(&self, outcome: &str) {
        self.documents.get_or_create(&DocumentLabels { outcome: outcome.to_owned() }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
