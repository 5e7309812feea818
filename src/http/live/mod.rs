//! Long-lived GraphQL transports: WebSocket ([`ws`], `graphql-transport-ws` and legacy
//! `graphql-ws`) and Server-Sent Events ([`sse`], GraphQL over SSE in distinct-connections
//! mode). Both run operations through [`LiveExecutor`], which gives every operation the same
//! per-request data as `POST /graphql` (viewer, client info, fresh loaders driven by the batch
//! driver) and counts subscriptions.

pub mod sse;
pub mod ws;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{Data, Executor, Request, Response, ServerError, parser::types::OperationType};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{StreamExt, stream::BoxStream};

use crate::{
    app::App,
    graphql::{
        AppSchema, batch_driver,
        context::with_loaders,
        error::{ErrorCode, rate_limited},
        error_codes::{assign_codes, with_code},
        ordering::selected_operation,
        realtime::ResumeFrom,
        upstream::UpstreamContext,
    },
    infra::{
        rate_limit::Limit,
        upstream::{CallScope, TraceContext},
    },
    request::{ClientInfo, Viewer},
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
    app: Arc<App>,
    viewer: Viewer,
    client: ClientInfo,
    resume: Option<i64>,
    active: Arc<AtomicUsize>,
    max_active: usize,
}

impl LiveExecutor {
    /// An executor for `viewer`'s connection; `resume` is an SSE `Last-Event-ID`.
    pub fn new(schema: AppSchema, app: Arc<App>, viewer: Viewer, client: ClientInfo, resume: Option<i64>) -> Self {
        let max_active = app.settings.realtime.max_subscriptions_per_connection;
        Self { schema, app, viewer, client, resume, active: Arc::new(AtomicUsize::new(0)), max_active }
    }

    /// Parses the document (through the shared cache) and applies the field-count limit, as
    /// the HTTP transport does; the operation's type, or the error response when the document
    /// is refused.
    fn admit(&self, request: &mut Request) -> Result<Option<OperationType>, Box<Response>> {
        let document = self
            .app
            .parsed
            .admit(&request.query, self.app.settings.limits.max_fields)
            .map_err(|error| Box::new(Response::from_errors(vec![error])))?;
        let kind = selected_operation(&document, request.operation_name.as_deref()).map(|op| op.node.ty);
        request.set_parsed_query(async_graphql::parser::types::ExecutableDocument::clone(&document));
        Ok(kind)
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
            Ok(kind) => kind,
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
        let kind = match self.admit(&mut request) {
            Ok(kind) => kind,
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
