//! `/graphql/sse`: GraphQL over Server-Sent Events, "distinct connections" mode.
//!
//! `POST` (JSON body) or `GET` (query string) with `Accept: text/event-stream` and the usual
//! `Authorization` header starts one operation; each result is an `event: next` whose `id:`
//! is the result's `seq` (for `events`, `presenceChanged`: the event seq; for
//! `messageAdded`: the message seq), and `event: complete` ends it. A reconnecting client
//! sends `Last-Event-ID`, which resumes the subscription after that seq (it overrides the
//! `afterSeq` argument). Comments keep the connection alive through proxies. The stream ends
//! without `complete` (so clients reconnect) on shutdown and when the device is signed out.
//! `GET` streams (`EventSource`) carry their reconnect delay as `retry:` fields: 1 s at the
//! start, a random 0–2 s when the server shuts down.
//! An app below its platform's minimum gets `426 UPGRADE_REQUIRED`, any app during
//! maintenance `503 MAINTENANCE`, before the stream starts ([`crate::kernel::http::gate`]).

use std::{convert::Infallible, time::Duration};

use async_graphql::{Executor, Request};
use axum::{
    Extension,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::{Stream, StreamExt};

use super::LiveExecutor;
use crate::kernel::{
    graphql::error::ErrorCode,
    http::{
        HttpState,
        auth::authenticate,
        errors::{error_response, retry_later},
        gate,
        observe::ClientIp,
        wire::{self, WireRequest},
    },
    request::ClientInfo,
};

/// `POST /graphql/sse`.
pub async fn post_handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > state.kernel().settings.limits.max_body_bytes {
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, "request body too large");
    }
    match serde_json::from_slice::<WireRequest>(&body) {
        Ok(request) => start(state, client, ip, headers, request, false).await,
        Err(err) => error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &format!("the body is not a GraphQL request in JSON: {err}"),
        ),
    }
}

/// `GET /graphql/sse?query=…&variables=…`.
pub async fn get_handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match WireRequest::from_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => start(state, client, ip, headers, request, true).await,
        Err(err) => {
            error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &format!("invalid query string: {err}"))
        }
    }
}

/// `Last-Event-ID` as a seq.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| *s >= 0)
}

/// The `seq` of a result's root field, for the event id.
fn seq_of(response: &async_graphql::Response) -> Option<i64> {
    let async_graphql::Value::Object(root) = &response.data else { return None };
    let (_, value) = root.iter().next()?;
    let async_graphql::Value::Object(fields) = value else { return None };
    match fields.get("seq")? {
        async_graphql::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Seconds a client over its connection limit should wait (`Retry-After`).
pub const TOO_MANY_RETRY_SECONDS: u64 = 30;

/// The reconnect delay an `EventSource` stream starts with (`retry:`, milliseconds).
pub const RECONNECT_MS: u64 = 1000;

/// The reconnect delay sent as a stream ends for shutdown: random in 0–2 s, so that a deploy
/// does not bring every client back in the same millisecond.
fn shutdown_reconnect() -> Duration {
    Duration::from_millis(rand::random_range(0..=2000))
}

/// Starts one operation's stream. `eventsource`: a `GET` stream, the only kind browsers'
/// `EventSource` opens, is told its reconnect delay with `retry:` fields; `POST` streams are
/// not, because fetch-based clients such as graphql-sse refuse a `retry:` field (their own
/// backoff applies, docs/realtime.md).
async fn start(
    state: HttpState,
    client: ClientInfo,
    ip: ClientIp,
    headers: HeaderMap,
    wire: WireRequest,
    eventsource: bool,
) -> Response {
    let accepts = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream") || accept.contains("*/*"));
    if !accepts {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::NotAcceptable,
            "Accept must allow text/event-stream",
        );
    }
    let kernel = state.kernel().clone();
    let hooks = state.pipeline.hooks().clone();
    let viewer = match authenticate(&headers, hooks.verifier.as_ref()).await {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let Some(user_id) = viewer.user_id else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "send Authorization: Bearer <token>",
        );
    };
    let settings = &kernel.settings.live;
    if hooks.connections.open(user_id) >= settings.max_connections_per_user {
        let message = "too many connections of this user";
        return retry_later(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message, TOO_MANY_RETRY_SECONDS);
    }
    let resolved = match wire::resolve(&wire, &kernel.documents).await {
        Ok(resolved) => resolved,
        Err(error) => {
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &error.message);
        }
    };
    if let Err(refusal) = hooks.gate.check(&client) {
        let exempt = kernel.parsed.admit(&resolved.query, kernel.settings.limits.max_fields).is_ok_and(|document| {
            gate::is_exempt(&document, wire.operation_name.as_deref(), hooks.gate.exempt_root_fields())
        });
        if !exempt {
            return gate::refusal_response(&refusal);
        }
    }
    let variables = match wire.variables() {
        Ok(variables) => variables,
        Err(error) => return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &error.message),
    };
    let mut request = Request::new(resolved.query).variables(variables);
    if let Some(name) = &wire.operation_name {
        request = request.operation_name(name);
    }
    let executor = LiveExecutor::new(&state.pipeline, viewer, client, ip.0, last_event_id(&headers));
    let online = hooks.connections.connect(user_id).await;
    let gauge = kernel.metrics.live.connections_of("sse");
    gauge.inc();
    let mut closing = kernel.closing.subscribe();
    let mut revocations = hooks.verifier.revocations();
    let device = viewer.device_id;
    let every = Duration::from_secs(settings.ws_ping_interval_seconds);
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let results = executor.execute_stream(request, None);
    let events = async_stream::stream! {
        let _online = online;
        let _gauge = GaugeGuard(gauge);
        let mut results = results;
        if *closing.borrow_and_update() {
            return;
        }
        if eventsource {
            yield Ok::<Event, Infallible>(Event::default().retry(Duration::from_millis(RECONNECT_MS)));
        }
        loop {
            tokio::select! {
                next = results.next() => match next {
                    Some(response) => {
                        let mut event = Event::default().event("next");
                        if let Some(seq) = seq_of(&response) {
                            event = event.id(seq.to_string());
                        }
                        match event.json_data(&response) {
                            Ok(event) => yield Ok::<Event, Infallible>(event),
                            Err(err) => {
                                tracing::error!(error = %err, "could not serialise an SSE result");
                                return;
                            }
                        }
                    }
                    None => {
                        yield Ok(Event::default().event("complete").data(""));
                        return;
                    }
                },
                revoked = revocations.recv() => {
                    if let Ok(id) = revoked && Some(id) == device {
                        return;
                    }
                }
                // Signed out on another replica: seen through the gate within one interval.
                _ = checks.tick() => {
                    if let Some(id) = device && !hooks.verifier.still_signed_in(user_id, id).await {
                        return;
                    }
                }
                _ = closing.changed() => {
                    if eventsource {
                        yield Ok(Event::default().retry(shutdown_reconnect()));
                    }
                    return;
                }
            }
        }
    };
    sse_response(events, Duration::from_secs(settings.ws_ping_interval_seconds))
}

struct GaugeGuard(prometheus_client::metrics::gauge::Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keepalive: Duration,
) -> Response {
    let mut response = Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive).text("")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, no-store"));
    // Tell buffering proxies (nginx) to pass events through at once.
    headers.insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_come_from_the_root_seq() {
        let response =
            async_graphql::Response::new(async_graphql::value!({ "events": { "seq": 42, "kind": "MESSAGE_ADDED" } }));
        assert_eq!(seq_of(&response), Some(42));
        let without = async_graphql::Response::new(async_graphql::value!({ "events": { "kind": "MESSAGE_ADDED" } }));
        assert_eq!(seq_of(&without), None);
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", "17".parse().expect("header"));
        assert_eq!(last_event_id(&headers), Some(17));
        headers.insert("last-event-id", "-3".parse().expect("header"));
        assert_eq!(last_event_id(&headers), None);
    }
}
