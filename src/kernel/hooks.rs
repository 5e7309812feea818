//! What the kernel's transport needs from the concerns, as traits the composition root
//! implements: verifying bearer tokens ([`Verifier`]), executing operations on the schema
//! ([`Engine`]), attaching each operation's request data ([`Prepare`]), serving some
//! subscriptions from shared feeds ([`SharedSubscriptions`]), counting live connections
//! ([`Connections`]) and admitting app versions ([`ClientGate`]). The kernel holds them as trait objects in [`Hooks`], so it never names
//! a concern and a concern never reaches into the transport.

use std::{any::Any, sync::Arc};

use async_graphql::{Data, Request, Response, parser::types::ExecutableDocument};
use futures_util::{future::BoxFuture, stream::BoxStream};

use super::{
    graphql::batch_driver::BatchSpawner,
    infra::{rate_limit::Limit, trace::TraceContext},
    request::{ClientInfo, Viewer},
};

/// A verified access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub viewer: Viewer,
    /// When the token expires (its `exp`, seconds since the epoch).
    pub expires_at: i64,
}

/// Why credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No token was sent.
    #[error("send an access token")]
    Missing,
    /// The credentials are not `Bearer <token>`.
    #[error("Authorization must be `Bearer <access token>`")]
    Malformed,
    /// The token is invalid, expired, or its device signed out.
    #[error("access token is invalid or expired")]
    Invalid,
    /// The revocation check failed.
    #[error("internal error")]
    Internal,
}

/// How credentials are written where they arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// An `Authorization` header: the `Bearer` scheme is required.
    Header,
    /// A `connection_init` or re-auth payload: `Bearer <token>` or the bare token.
    Payload,
}

/// Verifies access tokens and watches their devices (implemented by `auth`).
pub trait Verifier: Send + Sync {
    /// Verifies `credentials` (signature, expiry, device still signed in).
    fn verify<'a>(&'a self, credentials: &'a str, form: Credentials) -> BoxFuture<'a, Result<Session, AuthFailure>>;

    /// Whether `device` of `user` is still signed in; `true` when the check itself fails (a
    /// long-lived connection is not cut for a database hiccup).
    fn still_signed_in(&self, user: i64, device: i64) -> BoxFuture<'_, bool>;

    /// Device ids as they are signed out, for closing their live connections.
    fn revocations(&self) -> tokio::sync::broadcast::Receiver<i64>;
}

/// Executes operations on the schema (implemented by the composition root's schema).
pub trait Engine: Send + Sync {
    /// Runs a query or mutation.
    fn execute(&self, request: Request) -> BoxFuture<'_, Response>;

    /// Runs a subscription (or a query/mutation as a one-item stream).
    fn execute_stream(&self, request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response>;
}

/// Where an operation comes from, for the request data its resolvers need.
pub struct Scope<'a> {
    /// The caller.
    pub viewer: Viewer,
    /// The app's headers.
    pub client: &'a ClientInfo,
    /// Runs this operation's loader batches on its own task.
    pub spawner: &'a BatchSpawner,
    /// The request id (HTTP requests), for upstream calls.
    pub request_id: Option<&'a str>,
    /// The trace the operation belongs to.
    pub trace: TraceContext,
    /// The seq a reconnecting SSE client resumes after (`Last-Event-ID`).
    pub resume: Option<i64>,
}

/// Attaches the concerns' per-operation data (loaders, upstream scope, resume point).
pub trait Prepare: Send + Sync {
    /// `request` with the data its resolvers need for `scope`.
    fn prepare(&self, request: Request, scope: &Scope<'_>) -> Request;
}

/// Resolves one request through the pipeline's preparation and the engine: every response
/// of its stream, collected (used by shared feeds to resolve an event once).
pub type Resolve = Arc<dyn Fn(Request) -> BoxFuture<'static, Vec<Response>> + Send + Sync>;

/// A subscription offered to the shared feeds.
pub struct Offered<'a> {
    /// The subscriber.
    pub user: i64,
    /// The admitted document.
    pub document: &'a Arc<ExecutableDocument>,
    /// The request (query, operation name, variables).
    pub request: &'a Request,
    /// `Last-Event-ID` of an SSE reconnect.
    pub resume: Option<i64>,
}

/// Serves subscriptions that many connections share (implemented by `realtime`).
pub trait SharedSubscriptions: Send + Sync {
    /// The results of `offered` when a shared feed serves it, resolving through `resolve`;
    /// `None` to run it as its own stream.
    fn serve(&self, offered: Offered<'_>, resolve: Resolve) -> Option<BoxStream<'static, Response>>;
}

/// Counts live connections per user (implemented by `realtime`'s presence).
pub trait Connections: Send + Sync {
    /// Open live connections of `user` on this replica.
    fn open(&self, user: i64) -> usize;

    /// Marks `user` connected until the returned guard is dropped.
    fn connect(&self, user: i64) -> BoxFuture<'_, Box<dyn Any + Send + Sync>>;
}

/// Why a client's operations are refused (all of them but the exempt bootstrap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The app is older than the minimum version of its platform: HTTP 426
    /// `UPGRADE_REQUIRED`, WebSocket close 4426.
    UpgradeRequired {
        /// The minimum version, as configured.
        min_version: String,
        /// Where to get a newer version.
        store_url: Option<String>,
    },
    /// The service is in maintenance: HTTP 503 `MAINTENANCE` with `Retry-After`, WebSocket
    /// close 1013.
    Maintenance {
        /// What to tell users.
        message: String,
        /// When it is expected to end (RFC 3339), if announced.
        until: Option<String>,
        /// When to try again.
        retry_after_seconds: u64,
    },
}

/// Decides which app versions are served (implemented by `flags`). Synchronous and cheap:
/// it is asked on every request from a snapshot the concern keeps fresh.
pub trait ClientGate: Send + Sync {
    /// The minimum version of `client`'s platform, for the `X-Min-App-Version` header on
    /// every response; `None` when none is configured (or the platform is unknown).
    fn min_version(&self, client: &ClientInfo) -> Option<Arc<str>>;

    /// Whether `client` may run operations other than the exempt ones.
    fn check(&self, client: &ClientInfo) -> Result<(), Refusal>;

    /// Query root fields that answer whatever [`ClientGate::check`] says (the bootstrap): an
    /// operation whose root selections are only these (and `__typename`) is never refused.
    fn exempt_root_fields(&self) -> &'static [&'static str];
}

/// The budget a root field spends instead of the default one of its operation type.
#[derive(Clone, Copy, Debug)]
pub struct FieldBudget {
    /// A root field of a mutation.
    pub field: &'static str,
    /// Its budget.
    pub limit: Limit,
}

/// Everything the kernel's transport calls into.
#[derive(Clone)]
pub struct Hooks {
    /// Runs operations.
    pub engine: Arc<dyn Engine>,
    /// Verifies tokens.
    pub verifier: Arc<dyn Verifier>,
    /// Attaches per-operation data.
    pub prepare: Arc<dyn Prepare>,
    /// Shared feeds for subscriptions.
    pub subscriptions: Arc<dyn SharedSubscriptions>,
    /// Live connection counting.
    pub connections: Arc<dyn Connections>,
    /// Mutation root fields with their own budget (sign-in, refresh).
    pub budgets: &'static [FieldBudget],
    /// Which app versions are served, and maintenance.
    pub gate: Arc<dyn ClientGate>,
}
