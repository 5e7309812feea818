//! `GET /graphql/ws`: GraphQL over WebSocket, `graphql-transport-ws` (and legacy `graphql-ws`).
//!
//! The protocol machine is async-graphql's; this module owns the socket around it:
//!
//! - **Auth** from the `connection_init` payload (`{"authorization": "Bearer …"}`, also
//!   `token`/`headers.Authorization`), or the upgrade request's `Authorization` header.
//!   Missing/invalid/revoked → close `4401`; no init within `ws_init_timeout_seconds` →
//!   `4408`; too many connections of the user → `4429`.
//! - **Re-auth without reconnecting**: a `ping` message whose payload carries a fresh token
//!   of the same user extends the connection past the old token's expiry; when the token
//!   expires without one, the socket closes with `4401`.
//! - **Keepalive**: WebSocket pings every `ws_ping_interval_seconds`; a peer silent for
//!   `ws_idle_timeout_seconds` is dropped (dead after a network change).
//! - **Revocation**: signing the device out closes its sockets at once (`4401`), through
//!   the gate's broadcast, fed on PostgreSQL by other replicas' NOTIFY too (and checked again
//!   at every ping, should a notification be lost).
//! - **Version gate**: an app below its platform's minimum is closed with `4426`, any app
//!   during maintenance with `1013`, after `connection_init` and again at every ping (a
//!   minimum raised while the socket is open); see [`crate::kernel::http::gate`].
//! - **Shutdown**: results already produced are flushed, then `1001` ("going away":
//!   reconnect with your last seq, to another replica).
//! - **Memory**: small read/write buffers and a bounded inbound queue per connection (a
//!   client that floods it is closed with `4429`).

use std::{str::FromStr, time::Duration};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::{
    Extension,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use tokio::{sync::mpsc, time::Instant};

use super::{LiveExecutor, authenticate_token, token_in};
use crate::kernel::{
    graphql::error::ErrorCode,
    hooks::{AuthFailure, Session},
    http::{HttpState, errors::error_response, gate, observe::ClientIp},
    request::ClientInfo,
};

/// Close codes (documented in docs/realtime.md).
pub mod close {
    /// The server is going away (shutdown, deploy): reconnect, with backoff, elsewhere.
    pub const GOING_AWAY: u16 = 1001;
    /// Internal error: reconnect with backoff.
    pub const INTERNAL: u16 = 1011;
    /// The client broke the protocol.
    pub const BAD_REQUEST: u16 = 4400;
    /// Not authenticated, token expired, or device signed out: refresh the token (or sign
    /// in) before reconnecting.
    pub const UNAUTHORIZED: u16 = 4401;
    /// A re-auth token of another user.
    pub const FORBIDDEN: u16 = 4403;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// Too many connections of this user: reconnect later.
    pub const TOO_MANY: u16 = 4429;

    /// The `4429` reason for a user over its connection limit: JSON with the backoff, so a
    /// client reads how long to wait (`retryAfterSeconds`) instead of parsing prose.
    pub const TOO_MANY_CONNECTIONS: &str =
        r#"{"message":"too many connections of this user","code":"RATE_LIMITED","retryAfterSeconds":30}"#;
    /// The `4429` reason for a client that sends faster than its messages are processed.
    pub const TOO_MANY_MESSAGES: &str =
        r#"{"message":"too many messages in flight","code":"RATE_LIMITED","retryAfterSeconds":30}"#;
}

/// `GET /graphql/ws`.
pub async fn handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok());
    let Some(protocol) = protocol else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "Sec-WebSocket-Protocol must be graphql-transport-ws or graphql-ws",
        );
    };
    let header_token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let settings = &state.kernel().settings.live;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(settings.ws_read_buffer_bytes)
        .write_buffer_size(settings.ws_write_buffer_bytes)
        .max_write_buffer_size(settings.ws_max_message_bytes.max(settings.ws_write_buffer_bytes + 1) * 4)
        .max_message_size(settings.ws_max_message_bytes)
        .max_frame_size(settings.ws_max_message_bytes)
        .on_upgrade(move |socket| async move {
            serve(state, socket, protocol, Connection { client, ip }, header_token).await;
        })
        .into_response()
}

/// Who is on the other end of a socket, from the upgrade request.
struct Connection {
    client: ClientInfo,
    ip: ClientIp,
}

/// Client messages queued for the protocol machine at most.
const INBOUND_QUEUE: usize = 32;

/// Why a connection ended, for the close frame and the metric.
struct Ending {
    code: u16,
    reason: &'static str,
}

fn ending(code: u16, reason: &'static str) -> Option<Ending> {
    Some(Ending { code, reason })
}

async fn close(socket: &mut (impl SinkExt<Message> + Unpin), end: &Ending) {
    let frame = CloseFrame { code: end.code, reason: end.reason.into() };
    let goodbye = async {
        // After the peer's close this fails, but flushing sends the automatic reply.
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            let _ = socket.flush().await;
        }
        let _ = socket.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
}

/// The first text frame, or why there is none.
async fn first_message(socket: &mut WebSocket, wait: Duration) -> Result<Vec<u8>, Option<Ending>> {
    let deadline = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err(ending(close::INIT_TIMEOUT, "Connection initialisation timeout")),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Err(None),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.as_bytes().to_vec()),
            Ok(Some(Ok(Message::Binary(bytes)))) => return Ok(bytes.to_vec()),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Authenticates from the `connection_init` message (or the upgrade header).
async fn authenticate(state: &HttpState, init: &[u8], header_token: Option<&str>) -> Result<Session, Ending> {
    let message: serde_json::Value =
        serde_json::from_slice(init).map_err(|_| Ending { code: close::BAD_REQUEST, reason: "Invalid message" })?;
    if message.get("type").and_then(|t| t.as_str()) != Some("connection_init") {
        return Err(Ending { code: close::UNAUTHORIZED, reason: "Unauthorized" });
    }
    let payload = message.get("payload").cloned().unwrap_or_default();
    let token = token_in(&payload).or_else(|| header_token.map(str::to_owned));
    let Some(token) = token else {
        return Err(Ending { code: close::UNAUTHORIZED, reason: "Unauthorized: send a token in connection_init" });
    };
    authenticate_token(&state.pipeline, &token).await.map_err(|failure| match failure {
        AuthFailure::Internal => Ending { code: close::INTERNAL, reason: "Internal error" },
        _ => Ending { code: close::UNAUTHORIZED, reason: "Unauthorized: token invalid or expired" },
    })
}

/// A `ping` carrying a token: the re-auth extension.
fn reauth_token(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(4).any(|w| w == b"ping") {
        return None;
    }
    let message: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if message.get("type")?.as_str()? != "ping" {
        return None;
    }
    token_in(message.get("payload")?)
}

fn expiry_instant(expires_at: i64, leeway: u64) -> Instant {
    let now = chrono::Utc::now().timestamp();
    let left = expires_at.saturating_sub(now).saturating_add(i64::try_from(leeway).unwrap_or(0)).max(0);
    Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0).min(86_400 * 365))
}

async fn serve(
    state: HttpState,
    mut socket: WebSocket,
    protocol: WebSocketProtocols,
    connection: Connection,
    header_token: Option<String>,
) {
    let metrics = state.kernel().metrics.live.clone();
    let gauge = metrics.connections_of("ws");
    gauge.inc();
    let end = run(&state, &mut socket, protocol, connection, header_token.as_deref()).await;
    match end {
        Some(end) => {
            Box::pin(close(&mut socket, &end)).await;
            metrics.closed(&end.code.to_string());
        }
        None => metrics.closed("peer"),
    }
    gauge.dec();
}

// One-off steps (authentication, presence, the revocation check, closing) are awaited through
// `Box::pin`: a connection's task is as large as the largest future it awaits inline, and an
// idle socket must not keep room for futures it ran once.
async fn run(
    state: &HttpState,
    socket: &mut WebSocket,
    protocol: WebSocketProtocols,
    connection: Connection,
    header_token: Option<&str>,
) -> Option<Ending> {
    let kernel = state.kernel().clone();
    let hooks = state.pipeline.hooks().clone();
    let settings = &kernel.settings.live;
    let mut closing = kernel.closing.subscribe();
    if *closing.borrow_and_update() {
        return ending(close::GOING_AWAY, "Server shutting down: reconnect");
    }
    // Futures awaited once or rarely are boxed so that the connection's own state, kept for
    // its whole life, stays small.
    let init = match Box::pin(first_message(socket, Duration::from_secs(settings.ws_init_timeout_seconds))).await {
        Ok(init) => init,
        Err(end) => return end,
    };
    let auth = match Box::pin(authenticate(state, &init, header_token)).await {
        Ok(auth) => auth,
        Err(end) => return Some(end),
    };
    let user_id = auth.viewer.user_id?;
    // An app below the minimum (or any app during maintenance) is told so by the close code.
    if let Err(refusal) = hooks.gate.check(&connection.client) {
        let (code, reason) = gate::close_frame(&refusal);
        return ending(code, reason);
    }
    if hooks.connections.open(user_id) >= settings.max_connections_per_user {
        return ending(close::TOO_MANY, close::TOO_MANY_CONNECTIONS);
    }
    let _online = Box::pin(hooks.connections.connect(user_id)).await;
    let mut revocations = hooks.verifier.revocations();
    let leeway = settings.token_leeway_seconds;
    // One timer for the token's expiry, moved when a ping renews the token (a fresh `sleep`
    // per loop turn would insert and remove a timer for every message sent).
    let expires = tokio::time::sleep_until(expiry_instant(auth.expires_at, leeway));
    tokio::pin!(expires);

    // Inbound frames go to the protocol machine through a small bounded queue. It is filled
    // with `try_send` (never awaited here, where the machine is not being polled): a client
    // that outruns it is flooding, and is told so.
    let (inbound, inbound_rx) = mpsc::channel::<Vec<u8>>(INBOUND_QUEUE);
    if inbound.try_send(init).is_err() {
        return ending(close::INTERNAL, "Internal error");
    }
    let executor_client = &connection.client;
    let executor = LiveExecutor::new(&state.pipeline, auth.viewer, connection.client.clone(), connection.ip.0, None);
    let frames = tokio_stream_from(inbound_rx);
    let mut machine = async_graphql::http::WebSocket::new(executor, frames, protocol);

    let ping_every = Duration::from_secs(settings.ws_ping_interval_seconds);
    let idle_timeout = Duration::from_secs(settings.ws_idle_timeout_seconds);
    let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            frame = socket.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => { heard = Instant::now(); continue; }
                    // Answer the client's close (the closing handshake) and stop.
                    Some(Ok(Message::Close(_))) => return ending(1000, "Normal Closure"),
                    Some(Err(_)) | None => return None,
                };
                heard = Instant::now();
                if let Some(token) = reauth_token(&bytes) {
                    match Box::pin(authenticate_token(&state.pipeline, &token)).await {
                        Ok(fresh) if fresh.viewer.user_id == auth.viewer.user_id => {
                            expires.as_mut().reset(expiry_instant(fresh.expires_at, leeway));
                        }
                        Ok(_) => return ending(close::FORBIDDEN, "Forbidden: token of another user"),
                        Err(_) => return ending(close::UNAUTHORIZED, "Unauthorized: token invalid or expired"),
                    }
                }
                match inbound.try_send(bytes) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        return ending(close::TOO_MANY, close::TOO_MANY_MESSAGES);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return ending(close::INTERNAL, "Internal error"),
                }
            }
            out = machine.next() => match out {
                Some(WsMessage::Text(text)) => {
                    // A peer that stops reading (full TCP window) is as dead as a silent one.
                    match tokio::time::timeout(idle_timeout, socket.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return None,
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    kernel.metrics.live.closed(&code.to_string());
                    return None;
                }
                None => return ending(1000, "Normal closure"),
            },
            _ = pings.tick() => {
                if heard.elapsed() > idle_timeout {
                    // Nobody answers: the network is gone. Closing is a courtesy.
                    return ending(close::GOING_AWAY, "Idle timeout");
                }
                // A minimum raised, or maintenance started, since the socket opened.
                if let Err(refusal) = hooks.gate.check(executor_client) {
                    let (code, reason) = gate::close_frame(&refusal);
                    return ending(code, reason);
                }
                // A device signed out on another replica: the gate's answer (cached for
                // `auth.revocation_cache_seconds`) catches it within one ping interval.
                if let Some(device) = auth.viewer.device_id
                    && !Box::pin(hooks.verifier.still_signed_in(user_id, device)).await
                {
                    return ending(close::UNAUTHORIZED, "Unauthorized: device signed out");
                }
                match tokio::time::timeout(idle_timeout, socket.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return None,
                }
            }
            revoked = revocations.recv() => {
                let gone = match revoked {
                    Ok(device) => Some(device) == auth.viewer.device_id,
                    // Missed some: ask the gate directly.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => match auth.viewer.device_id {
                        Some(device) => !Box::pin(hooks.verifier.still_signed_in(user_id, device)).await,
                        None => false,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => false,
                };
                if gone {
                    return ending(close::UNAUTHORIZED, "Unauthorized: device signed out");
                }
            }
            _ = &mut expires => {
                return ending(close::UNAUTHORIZED, "Unauthorized: token expired");
            }
            changed = closing.changed() => {
                if changed.is_ok() && !*closing.borrow() {
                    continue;
                }
                // Drain: send what is already produced, then say goodbye.
                let drain = async {
                    while let Some(WsMessage::Text(text)) = machine.next().await {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_millis(200), Box::pin(drain)).await;
                return ending(close::GOING_AWAY, "Server shutting down: reconnect");
            }
        }
    }
}

/// An mpsc receiver as a stream.
fn tokio_stream_from(mut rx: mpsc::Receiver<Vec<u8>>) -> impl futures_util::Stream<Item = Vec<u8>> + Unpin {
    Box::pin(async_stream::stream! {
        while let Some(item) = rx.recv().await {
            yield item;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pings_with_a_token_renew() {
        assert_eq!(reauth_token(br#"{"type":"ping","payload":{"token":"t"}}"#).as_deref(), Some("t"));
        assert_eq!(reauth_token(br#"{"type":"ping"}"#), None);
        assert_eq!(reauth_token(br#"{"type":"subscribe","id":"1","payload":{"token":"ping"}}"#), None);
    }
}
