//! Long-lived GraphQL transports: WebSocket ([`ws`], `graphql-transport-ws` and legacy
//! `graphql-ws`) and Server-Sent Events ([`sse`], GraphQL over SSE in distinct-connections
//! mode). Both run operations through [`LiveExecutor`], which gives every operation the same
//! per-request data as `POST /graphql` (viewer, client info, fresh loaders driven by the batch
//! driver) and counts subscriptions. Subscriptions to the viewer's log (`events`,
//! `presenceChanged`) are served by the user's shared feed ([`fanout`]).

pub mod sse;
pub mod ws;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{
    Data, Executor, Request, Response, ServerError,
    parser::types::{ExecutableDocument, OperationType},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{StreamExt, stream::BoxStream};

use crate::realtime::fanout::{self, Fanout, Membership, Operation};
use crate::{
    app::App,
    kernel::{
        graphql::{
            batch_driver,
            context::with_loaders,
            error::{ErrorCode, rate_limited},
            error_codes::{assign_codes, with_code},
            ordering::selected_operation,
        },
        infra::rate_limit::Limit,
        request::{ClientInfo, Viewer},
    },
    realtime::{
        graphql::{Preloaded, ResumeFrom},
        stream::Item,
    },
    schema::AppSchema,
    upstreams::{CallScope, TraceContext, loaders::UpstreamContext},
};

/// Why a live connection's credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// No token was sent.
    #[error("send an access token")]
    Missing,
    /// The token is invalid, expired, or its device signed out.
    #[error("access token is invalid or expired")]
    Invalid,
    /// The token belongs to another user than the connection.
    #[error("the new token belongs to another user")]
    OtherUser,
    /// The revocation check failed.
    #[error("internal error")]
    Internal,
}

/// An authenticated live connection.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated {
    /// Who.
    pub viewer: Viewer,
    /// When the token expires (seconds since the epoch).
    pub expires_at: i64,
}

/// Verifies an access token like the HTTP layer does (signature, expiry, revoked devices).
pub async fn authenticate_token(app: &App, token: &str) -> Result<Authenticated, AuthFailure> {
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").or_else(|| token.strip_prefix("bearer ")).unwrap_or(token).trim();
    if token.is_empty() {
        return Err(AuthFailure::Missing);
    }
    let verified = app.keys.verify_claims(token).map_err(|_| AuthFailure::Invalid)?;
    if let Some(device_id) = verified.device_id {
        match app.gate.allows(verified.user_id, device_id).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthFailure::Invalid),
            Err(err) => {
                tracing::error!(error = %err, "revocation check failed");
                return Err(AuthFailure::Internal);
            }
        }
    }
    let expires_at = expiry(token).unwrap_or(i64::MAX);
    Ok(Authenticated { viewer: Viewer { user_id: Some(verified.user_id), device_id: verified.device_id }, expires_at })
}

/// `exp` of an already verified JWT.
fn expiry(token: &str) -> Option<i64> {
    let claims = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(claims).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("exp")?.as_i64()
}

/// The token in a `connection_init` (or re-auth `ping`) payload: `authorization` /
/// `Authorization` (`Bearer …`), `token`, `accessToken`, or `headers.Authorization`.
pub fn token_in(payload: &serde_json::Value) -> Option<String> {
    let direct = ["authorization", "Authorization", "token", "accessToken"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()));
    let nested = || {
        let headers = payload.get("headers")?;
        ["authorization", "Authorization"].iter().find_map(|key| headers.get(*key).and_then(|v| v.as_str()))
    };
    direct.or_else(nested).map(str::to_owned)
}

/// Runs the operations of one live connection.
#[derive(Clone)]
pub struct LiveExecutor {
    schema: AppSchema,
    pub(crate) app: Arc<App>,
    viewer: Viewer,
    client: ClientInfo,
    resume: Option<i64>,
    active: Arc<AtomicUsize>,
    max_active: usize,
    fanout: Arc<Fanout>,
}

impl LiveExecutor {
    /// An executor for `viewer`'s connection on `state`; `resume` is an SSE `Last-Event-ID`.
    pub fn new(
        state: &crate::kernel::http::HttpState,
        viewer: Viewer,
        client: ClientInfo,
        resume: Option<i64>,
    ) -> Self {
        let app = state.app.clone();
        let max_active = app.settings.realtime.max_subscriptions_per_connection;
        let active = Arc::new(AtomicUsize::new(0));
        let (schema, fanout) = (state.schema.clone(), state.fanout.clone());
        Self { schema, app, viewer, client, resume, active, max_active, fanout }
    }

    /// Parses the document (through the shared cache) and applies the field-count limit, as
    /// the HTTP transport does; the operation's type, or the error response when the document
    /// is refused.
    fn admit(&self, request: &mut Request) -> Result<(Option<OperationType>, Arc<ExecutableDocument>), Box<Response>> {
        let document = self
            .app
            .parsed
            .admit(&request.query, self.app.settings.limits.max_fields)
            .map_err(|error| Box::new(Response::from_errors(vec![error])))?;
        let kind = selected_operation(&document, request.operation_name.as_deref()).map(|op| op.node.ty);
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Ok((kind, document))
    }

    /// Runs a log subscription's `operation` over `items` only (no log read, no waiting):
    /// one response per event it keeps, the errors of validation or authorisation when
    /// `items` is empty and the operation is refused.
    pub(crate) async fn resolve(
        &self,
        operation: &Operation,
        items: Arc<[Result<Item, async_graphql::Error>]>,
    ) -> Vec<Response> {
        let (spawner, queue) = batch_driver::channel();
        let request = self.prepare(operation.request(), &spawner).data(Preloaded(items));
        let stream = self.schema.execute_stream(request);
        let mut driven = batch_driver::drive_stream(stream, queue);
        let mut responses = Vec::new();
        while let Some(mut response) = driven.next().await {
            assign_codes(&mut response);
            responses.push(response);
        }
        responses
    }

    /// The same rate limits as over HTTP: mutations per user, other operations per client.
    async fn throttle(&self, kind: Option<OperationType>) -> Result<(), Box<Response>> {
        let limit = if kind == Some(OperationType::Mutation) { Limit::MutationPerUser } else { Limit::QueryPerClient };
        let key = format!("u{}", self.viewer.id_or_zero());
        self.app.limits.check(limit, &key).await.map_err(|retry| {
            let mut error = rate_limited(retry).into_server_error(async_graphql::Pos::default());
            error.locations.clear();
            Box::new(Response::from_errors(vec![error]))
        })
    }

    fn prepare(&self, request: Request, spawner: &batch_driver::BatchSpawner) -> Request {
        let user = self.viewer.id_or_zero();
        // Upstream fields resolved over a live connection get the same deadline as a screen,
        // counted from the start of the operation (or of the subscription).
        let upstream = UpstreamContext {
            upstreams: self.app.upstreams.clone(),
            scope: CallScope::new(self.app.upstreams.screen_deadline, None, TraceContext::new_root()),
        };
        let mut request =
            with_loaders(request, &self.app, user, spawner, upstream).data(self.viewer).data(self.client.clone());
        if let Some(seq) = self.resume {
            request = request.data(ResumeFrom(seq));
        }
        if !self.app.documents.introspection_allowed() {
            request = request.disable_introspection();
        }
        request
    }
}

/// Decrements the active-subscription count when a subscription ends.
struct ActiveGuard {
    active: Arc<AtomicUsize>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

impl Executor for LiveExecutor {
    async fn execute(&self, mut request: Request) -> Response {
        let kind = match self.admit(&mut request) {
            Ok((kind, _)) => kind,
            Err(refused) => return *refused,
        };
        if let Err(refused) = self.throttle(kind).await {
            return *refused;
        }
        let (spawner, queue) = batch_driver::channel();
        let request = self.prepare(request, &spawner);
        let mut response = batch_driver::drive(self.schema.execute(request), queue).await;
        assign_codes(&mut response);
        response
    }

    fn execute_stream(&self, mut request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let (kind, document) = match self.admit(&mut request) {
            Ok(admitted) => admitted,
            Err(refused) => return futures_util::stream::once(async move { *refused }).boxed(),
        };
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.max_active {
            self.active.fetch_sub(1, Ordering::AcqRel);
            let message = format!("at most {} subscriptions per connection", self.max_active);
            let error = with_code(ServerError::new(message, None), ErrorCode::BadRequest);
            return futures_util::stream::once(async move { Response::from_errors(vec![error]) }).boxed();
        }
        let live = &self.app.metrics.live;
        live.subscriptions.inc();
        let guard = ActiveGuard { active: self.active.clone(), gauge: live.subscriptions.clone() };
        let sent = live.messages_sent.clone();
        if let (Some(user), Some(start)) = (self.viewer.user_id, fanout::shared_start(&document, &request)) {
            let after = self.resume.or(start.after);
            let operation = Operation::new(self.clone(), request, document);
            return shared(self.clone(), kind, user, operation, after, guard, sent);
        }
        drop(document);
        let this = self.clone();
        async_stream::stream! {
            let _held = guard;
            if let Err(refused) = Box::pin(this.throttle(kind)).await {
                yield *refused;
                return;
            }
            let (spawner, queue) = batch_driver::channel();
            let request = this.prepare(request, &spawner);
            let stream = this.schema.execute_stream_with_session_data(request, session_data.unwrap_or_default());
            let mut driven = batch_driver::drive_stream(stream, queue);
            while let Some(mut response) = driven.next().await {
                sent.inc();
                assign_codes(&mut response);
                yield response;
            }
        }
        .boxed()
    }
}

/// A log subscription served by the user's feed: checked like any operation (rate limit,
/// validation, authorisation) by resolving it over no events, then fed.
fn shared(
    this: LiveExecutor,
    kind: Option<OperationType>,
    user: i64,
    operation: Operation,
    after: Option<i64>,
    guard: ActiveGuard,
    sent: prometheus_client::metrics::counter::Counter,
) -> BoxStream<'static, Response> {
    async_stream::stream! {
        let _held = guard;
        if let Err(refused) = Box::pin(this.throttle(kind)).await {
            yield *refused;
            return;
        }
        let refused = Box::pin(this.resolve(&operation, Arc::from(Vec::new()))).await;
        if !refused.is_empty() {
            for response in refused {
                yield response;
            }
            return;
        }
        let mut membership: Membership = this.fanout.join(user, operation, after);
        drop(this);
        while let Some(response) = membership.next().await {
            sent.inc();
            yield copy(&response);
        }
    }
    .boxed()
}

/// A shared result for one subscriber (`Response` is not `Clone`).
fn copy(shared: &Response) -> Response {
    let mut response = Response::new(shared.data.clone());
    response.extensions = shared.extensions.clone();
    response.cache_control = shared.cache_control;
    response.errors = shared.errors.clone();
    response.http_headers = shared.http_headers.clone();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_where_clients_put_them() {
        let cases = [
            serde_json::json!({ "authorization": "Bearer a" }),
            serde_json::json!({ "Authorization": "Bearer a" }),
            serde_json::json!({ "token": "Bearer a" }),
            serde_json::json!({ "accessToken": "Bearer a" }),
            serde_json::json!({ "headers": { "Authorization": "Bearer a" } }),
        ];
        for payload in cases {
            assert_eq!(token_in(&payload).as_deref(), Some("Bearer a"), "{payload}");
        }
        assert_eq!(token_in(&serde_json::json!({ "authorization": 7 })), None);
        assert_eq!(token_in(&serde_json::json!(null)), None);
    }

    #[test]
    fn expiry_is_read_from_the_claims() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"exp":1700000000,"sub":"1"}"#);
        assert_eq!(expiry(&format!("h.{claims}.s")), Some(1_700_000_000));
        assert_eq!(expiry("garbage"), None);
    }
}
