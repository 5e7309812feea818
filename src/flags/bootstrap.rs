//! The `bootstrap` query: everything an app needs at start in one request, answered even
//! when every other operation is refused (below the minimum, maintenance), so the app can
//! show its upgrade or maintenance screen.
//!
//! It works signed out; signed in it adds the viewer. It is cacheable: `private` (it depends
//! on the app's headers and token, so only the device's own cache keeps it), `max-age=30`,
//! and as a GET it gets an ETag and `304 Not Modified` while nothing changed. Nothing in it
//! moves by itself: `serverTime` is rounded down to `bootstrap.server_time_granularity_seconds`
//! (an hour), and the precise server time for clock skew is the `Date` header of every
//! response, 304s included; maintenance gives its announced end, not a countdown.

use async_graphql::{ComplexObject, Context, Object, SimpleObject};

use crate::kernel::request::Platform;
use chrono::{DateTime, Utc};

use super::policy::{Threshold, UpdateStatus};
use crate::{
    app::{App, app},
    auth::CertificatePin,
    kernel::{
        graphql::{context::viewer, error::loader_error},
        request::ClientInfo,
    },
    social::{User, loaders},
};

/// Reconnect backoff the transports document (docs/realtime.md): full jitter, doubling.
const BACKOFF_INITIAL_MS: i32 = 500;
const BACKOFF_MAX_MS: i32 = 30_000;
/// Failed connects in a row before falling back to the next transport.
const FAILURES_BEFORE_FALLBACK: i32 = 3;

/// Where this app stands against the version policy of its platform.
#[derive(SimpleObject)]
pub struct UpdateInfo {
    /// `FORCE`: below the minimum, every other operation is refused until the app updates;
    /// `SOFT`: below the recommended version, suggest updating; `NONE`: up to date, or the
    /// version or platform headers are missing or unreadable.
    pub status: UpdateStatus,
    /// The platform from `X-Platform` (`ios`, `android`, `web`, `unknown`).
    pub platform: String,
    /// The version (and build) the app sent, as understood (`1.2` reads `1.2.0`).
    pub current_version: Option<String>,
    /// The oldest version served on this platform.
    pub minimum_version: Option<String>,
    /// The version apps are asked to update to.
    pub recommended_version: Option<String>,
    /// Where to update.
    pub store_url: Option<String>,
}

/// Planned maintenance.
#[derive(SimpleObject)]
pub struct MaintenanceInfo {
    /// Every operation but `bootstrap` answers 503 `MAINTENANCE` while true.
    pub active: bool,
    /// What to show users.
    pub message: Option<String>,
    /// The announced end; maintenance ends by itself then.
    pub until: Option<DateTime<Utc>>,
}

/// The API's endpoints (absolute when `bootstrap.api_base_url` or `public_base_url` is set).
#[derive(SimpleObject)]
pub struct ApiEndpoints {
    /// `POST`/`GET` GraphQL.
    pub graphql: String,
    /// GraphQL over WebSocket (`graphql-transport-ws`, legacy `graphql-ws`).
    pub websocket: String,
    /// GraphQL over SSE.
    pub sse: String,
    /// Uploads.
    pub uploads: String,
    /// Prefix of media URLs (CDN).
    pub media: String,
    /// The schema in SDL.
    pub schema: String,
}

/// How to stay connected (docs/realtime.md).
#[derive(SimpleObject)]
pub struct RealtimeHints {
    /// Transports in the order to try them.
    pub transports: Vec<String>,
    /// WebSocket subprotocols, preferred first.
    pub websocket_protocols: Vec<String>,
    /// The server pings (and SSE keep-alives) this often.
    pub ping_interval_seconds: i32,
    /// A socket silent this long is dropped.
    pub idle_timeout_seconds: i32,
    /// Send `heartbeat` this often without a socket.
    pub presence_heartbeat_seconds: i32,
    /// Longest `pollEvents(waitSeconds:)`.
    pub max_poll_wait_seconds: i32,
    /// First reconnect delay bound (full jitter: a random delay up to it, doubling).
    pub backoff_initial_ms: i32,
    /// Largest reconnect delay bound.
    pub backoff_max_ms: i32,
    /// Failed connects in a row before falling back to the next transport.
    pub failures_before_fallback: i32,
}

/// Limits a client should stay within.
#[derive(SimpleObject)]
pub struct ClientLimits {
    /// Largest `first`.
    pub max_page_size: i32,
    /// Operations per batched request.
    pub max_batch_size: i32,
    /// Request body, after decompression.
    pub max_body_bytes: i32,
    /// Query document size.
    pub max_query_bytes: i32,
    /// Ids per `nodes(ids:)`.
    pub max_node_ids: i32,
    /// Message body, in characters.
    pub max_message_chars: i32,
    /// Subscriptions per WebSocket.
    pub max_subscriptions_per_connection: i32,
}

/// The app's start-up configuration.
#[derive(SimpleObject)]
#[graphql(complex, cache_control(private, max_age = 30))]
pub struct Bootstrap {
    /// Whether this app must or should update.
    pub update: UpdateInfo,
    /// Maintenance.
    pub maintenance: MaintenanceInfo,
    /// Endpoints.
    pub api: ApiEndpoints,
    /// Certificate pins (current and backup).
    pub pins: Vec<CertificatePin>,
    /// Real-time connection hints.
    pub realtime: RealtimeHints,
    /// Limits.
    pub limits: ClientLimits,
    /// Server time rounded down to `bootstrap.server_time_granularity_seconds` (an hour by
    /// default) so the ETag holds; for clock skew use the response's `Date` header.
    pub server_time: DateTime<Utc>,
}

#[ComplexObject]
impl Bootstrap {
    /// Every feature flag evaluated for this app (as `flags` would answer).
    #[graphql(cache_control(private))]
    async fn flags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::graphql::FlagEvaluation>> {
        Ok(super::graphql::for_caller(ctx, app(ctx)?, None))
    }

    /// The signed-in user; null signed out.
    #[graphql(cache_control(private))]
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(user_id) = viewer(ctx).user_id else {
            return Ok(None);
        };
        let user = loaders(ctx)?.users.load_one(user_id).await.map_err(loader_error)?;
        Ok(user.map(User::from))
    }
}

/// The bootstrap root field.
#[derive(Default)]
pub struct BootstrapQuery;

#[Object]
impl BootstrapQuery {
    /// Everything an app needs at start: update status, maintenance, endpoints, pins,
    /// real-time hints, limits, server time. Always answered, also to app versions below the
    /// minimum and during maintenance (when it is the only root field of the operation).
    /// Send it as a persisted GET to get `304 Not Modified` on a warm start.
    async fn bootstrap(&self, ctx: &Context<'_>) -> async_graphql::Result<Bootstrap> {
        let app = app(ctx)?;
        let client = ctx.data::<ClientInfo>().cloned().unwrap_or_default();
        Ok(build(app, &client, Utc::now()))
    }
}

fn int(value: impl TryInto<i32>) -> i32 {
    value.try_into().unwrap_or(i32::MAX)
}

/// The bootstrap of `client` at `now`.
pub fn build(app: &App, client: &ClientInfo, now: DateTime<Utc>) -> Bootstrap {
    let policy = app.versions.current();
    let platform = policy.platform(client.platform);
    let text = |pick: fn(&super::policy::PlatformPolicy) -> &Option<Threshold>| {
        platform.and_then(|p| pick(p).as_ref()).map(|t| t.text.to_string())
    };
    let update = UpdateInfo {
        status: policy.status(client),
        platform: Platform::label(client.platform).to_owned(),
        current_version: client.version().map(|v| v.to_string()),
        minimum_version: text(|p| &p.minimum),
        recommended_version: text(|p| &p.recommended),
        store_url: platform.and_then(|p| p.store_url.clone()),
    };
    let maintenance = match policy.maintenance_at(now) {
        Some(m) => MaintenanceInfo { active: true, message: Some(m.message.clone()), until: m.until },
        None => MaintenanceInfo { active: false, message: None, until: None },
    };
    let settings = &app.settings;
    let realtime = &settings.realtime;
    let limits = &settings.limits;
    let granularity = i64::try_from(settings.bootstrap.server_time_granularity_seconds.max(1)).unwrap_or(3600);
    let rounded = now.timestamp() - now.timestamp().rem_euclid(granularity);
    Bootstrap {
        update,
        maintenance,
        api: endpoints(app),
        pins: app.pins.iter().map(CertificatePin::from).collect(),
        realtime: RealtimeHints {
            transports: ["websocket", "sse", "longpoll"].map(str::to_owned).to_vec(),
            websocket_protocols: ["graphql-transport-ws", "graphql-ws"].map(str::to_owned).to_vec(),
            ping_interval_seconds: int(realtime.ws_ping_interval_seconds),
            idle_timeout_seconds: int(realtime.ws_idle_timeout_seconds),
            presence_heartbeat_seconds: int(realtime.presence_heartbeat_seconds),
            max_poll_wait_seconds: int(realtime.max_poll_wait_seconds),
            backoff_initial_ms: BACKOFF_INITIAL_MS,
            backoff_max_ms: BACKOFF_MAX_MS,
            failures_before_fallback: FAILURES_BEFORE_FALLBACK,
        },
        limits: ClientLimits {
            max_page_size: int(limits.max_page_size),
            max_batch_size: int(limits.max_batch_size),
            max_body_bytes: int(limits.max_body_bytes),
            max_query_bytes: int(limits.max_query_bytes),
            max_node_ids: int(limits.max_node_ids),
            max_message_chars: int(realtime.max_message_chars),
            max_subscriptions_per_connection: int(realtime.max_subscriptions_per_connection),
        },
        server_time: DateTime::from_timestamp(rounded, 0).unwrap_or(now),
    }
}

/// The endpoints under `bootstrap.api_base_url`, else `public_base_url`, else as paths.
fn endpoints(app: &App) -> ApiEndpoints {
    let settings = &app.settings;
    let base = if settings.bootstrap.api_base_url.is_empty() {
        settings.public_base_url.trim_end_matches('/')
    } else {
        settings.bootstrap.api_base_url.trim_end_matches('/')
    };
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    // The versioned paths (`/graphql` and friends are their aliases: docs/versioning.md).
    ApiEndpoints {
        graphql: format!("{base}/v1/graphql"),
        websocket: format!("{ws_base}/v1/graphql/ws"),
        sse: format!("{base}/v1/graphql/sse"),
        uploads: format!("{base}/uploads"),
        media: app.media_url(""),
        schema: format!("{base}/v1/schema.graphql"),
    }
}
