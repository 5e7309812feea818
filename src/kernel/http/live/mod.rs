//! Long-lived GraphQL transports: WebSocket ([`ws`], `graphql-transport-ws` and legacy
//! `graphql-ws`) and Server-Sent Events ([`sse`], GraphQL over SSE in distinct-connections
//! mode). Both run operations through [`LiveExecutor`], which gives every operation the same
//! per-request data as `POST /graphql` (viewer, client info, fresh loaders driven by the batch
//! driver) through the one [`Pipeline`], and counts subscriptions. A subscription that a
//! shared feed can serve (the concerns' [`crate::kernel::hooks::SharedSubscriptions`]) gets its
//! results from there; the protocol machines here never see the difference.

pub mod sse;
pub mod ws;

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures_util::{StreamExt, stream::BoxStream};

use crate::kernel::{
    graphql::{
        error::ErrorCode,
        error_codes::with_code,
        pipeline::{Admitted, Caller, Pipeline},
    },
    hooks::{AuthFailure, Credentials, Offered, Session},
    infra::trace::TraceContext,
    request::{ClientInfo, Viewer},
};

/// Verifies the token of a live connection (`connection_init`, a re-auth `ping`).
pub async fn authenticate_token(pipeline: &Pipeline, token: &str) -> Result<Session, AuthFailure> {
    pipeline.hooks().verifier.verify(token, Credentials::Payload).await
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

/// Runs the operations of one live connection through the [`Pipeline`], as its caller.
#[derive(Clone)]
pub struct LiveExecutor {
    pipeline: Pipeline,
    viewer: Viewer,
    client: ClientInfo,
    ip: IpAddr,
    resume: Option<i64>,
    active: Arc<AtomicUsize>,
    max_active: usize,
}

impl LiveExecutor {
    /// An executor for `viewer`'s connection from `ip`; `resume` is an SSE `Last-Event-ID`.
    pub fn new(pipeline: &Pipeline, viewer: Viewer, client: ClientInfo, ip: IpAddr, resume: Option<i64>) -> Self {
        let max_active = pipeline.kernel().settings.live.max_subscriptions_per_connection;
        let active = Arc::new(AtomicUsize::new(0));
        Self { pipeline: pipeline.clone(), viewer, client, ip, resume, active, max_active }
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            viewer: self.viewer,
            client: &self.client,
            ip: self.ip,
            request_id: None,
            trace: TraceContext::new_root(),
            resume: self.resume,
        }
    }

    fn refused(error: ServerError) -> Response {
        Response::from_errors(vec![error])
    }

    /// The gate's refusal of an admitted operation (a minimum raised or maintenance started
    /// while the connection is open; the socket itself is closed at its next check).
    fn gated(&self, admitted: &Admitted) -> Result<(), ServerError> {
        let gate = self.pipeline.hooks().gate.as_ref();
        let name = admitted.request.operation_name.as_deref();
        crate::kernel::http::gate::admit(gate, &self.client, &admitted.document, name)
            .map_err(|refusal| crate::kernel::http::gate::refusal_error(&refusal))
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
    async fn execute(&self, request: Request) -> Response {
        let admitted = match self.pipeline.admit(request) {
            Ok(admitted) => admitted,
            Err(error) => return Self::refused(error),
        };
        if let Err(error) = self.gated(&admitted) {
            return Self::refused(error);
        }
        let caller = self.caller();
        if let Err(error) = self.pipeline.throttle(&admitted, &caller).await {
            return Self::refused(error);
        }
        self.pipeline.execute(admitted, &caller).await
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let admitted = match self.pipeline.admit(request) {
            Ok(admitted) => admitted,
            Err(error) => return futures_util::stream::once(async move { Self::refused(error) }).boxed(),
        };
        if let Err(error) = self.gated(&admitted) {
            return futures_util::stream::once(async move { Self::refused(error) }).boxed();
        }
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.max_active {
            self.active.fetch_sub(1, Ordering::AcqRel);
            let message = format!("at most {} subscriptions per connection", self.max_active);
            let error = with_code(ServerError::new(message, None), ErrorCode::BadRequest);
            return futures_util::stream::once(async move { Self::refused(error) }).boxed();
        }
        let live = &self.pipeline.kernel().metrics.live;
        live.subscriptions.inc();
        let guard = ActiveGuard { active: self.active.clone(), gauge: live.subscriptions.clone() };
        let sent = live.messages_sent.clone();
        let shared = self.viewer.user_id.and_then(|user| {
            let Admitted { request, document, .. } = &admitted;
            let offered = Offered { user, document, request, resume: self.resume };
            let resolve = self.pipeline.resolver(self.viewer, self.client.clone(), self.ip, self.resume);
            self.pipeline.hooks().subscriptions.serve(offered, resolve)
        });
        let this = self.clone();
        async_stream::stream! {
            let _held = guard;
            if let Err(error) = Box::pin(this.pipeline.throttle(&admitted, &this.caller())).await {
                yield Self::refused(error);
                return;
            }
            let mut results = match shared {
                Some(results) => results,
                None => this.pipeline.execute_stream(admitted.request, &this.caller(), session_data),
            };
            drop(admitted.document);
            while let Some(response) = results.next().await {
                sent.inc();
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
}
