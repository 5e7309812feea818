//! `/graphql/ws` with a raw WebSocket client (tokio-tungstenite): both subprotocols, re-auth
//! by `ping`, token expiry, limits, init timeout, idle drop, shutdown with 1001, metrics.
//! Replay and reconnect behaviour is tested with the npm `graphql-ws` client (tests/realtime).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};

use crate::common::TestServer;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, protocol: &str) -> Ws {
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let (ws, response) = connect_async(request).await.expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into())).await.expect("send");
}

/// The next JSON message (pings skipped), or the close frame as `{"close": code, "reason": …}`.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("json"),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) =
                    frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                return json!({ "close": code, "reason": reason });
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return json!({ "close": 1006 }),
        }
    }
}

async fn init(ws: &mut Ws, token: &str) {
    send(ws, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(ws).await["type"], "connection_ack");
}

const EVENTS: &str = "subscription { events(afterSeq: 0) { seq kind message { body sender { handle } } } }";

async fn send_message(server: &TestServer, token: &str, body: &str) {
    let inbox = server
        .data(
            "{ conversations(first: 10) { edges { node { id kind members { user { handle } } } } } }",
            json!({}),
            Some(token),
        )
        .await;
    let id = inbox["conversations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["kind"] == "DIRECT" && e["node"]["members"].to_string().contains("\"bob\""))
        .and_then(|e| e["node"]["id"].as_str())
        .expect("alice-bob")
        .to_owned();
    let key = format!("ws-{}", uuid::Uuid::new_v4().simple());
    let send = "mutation($c: ID!, $k: String!, $b: String!) { sendMessage(input: { conversationId: $c, clientMessageId: $k, body: $b }) { message { seq } } }";
    server.data(send, json!({ "c": id, "k": key, "b": body }), Some(token)).await;
}

#[tokio::test]
async fn both_subprotocols_deliver_events() {
    let server = TestServer::start(6).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let mut modern = connect(&server, "graphql-transport-ws").await;
    init(&mut modern, &bob).await;
    send(&mut modern, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    let mut legacy = connect(&server, "graphql-ws").await;
    init(&mut legacy, &bob).await;
    send(&mut legacy, json!({ "id": "7", "type": "start", "payload": { "query": EVENTS } })).await;
    // No wait needed: both subscriptions replay from seq 0, whenever they join.
    send_message(&server, &alice, "to both").await;
    let got = next(&mut modern).await;
    assert_eq!(got["type"], "next");
    assert_eq!(got["payload"]["data"]["events"]["message"]["body"], "to both");
    let got = next(&mut legacy).await;
    assert_eq!(got["type"], "data");
    assert_eq!(got["id"], "7");
    assert_eq!(got["payload"]["data"]["events"]["message"]["sender"]["handle"], "alice");
    let metrics = server.metrics().await;
    assert!(metrics.contains("bff_live_connections{transport=\"ws\"} 2"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn refusals_have_close_codes() {
    let server = TestServer::start_with(6, |s| {
        s.realtime.ws_init_timeout_seconds = 1;
        s.realtime.max_connections_per_user = 1;
        s.realtime.max_subscriptions_per_connection = 1;
    })
    .await;
    let bob = server.token("bob").await;
    // No subprotocol: a JSON 400, no upgrade.
    let plain = server.client.get(format!("{}/graphql/ws", server.base)).send().await.expect("get");
    assert_eq!(plain.status(), 400);
    // No token, a bad token, a subscribe before init: 4401.
    let mut ws = connect(&server, "graphql-transport-ws").await;
    send(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(next(&mut ws).await["close"], 4401);
    let mut ws = connect(&server, "graphql-transport-ws").await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "authorization": "Bearer nope" } })).await;
    assert_eq!(next(&mut ws).await["close"], 4401);
    let mut ws = connect(&server, "graphql-transport-ws").await;
    send(&mut ws, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    assert_eq!(next(&mut ws).await["close"], 4401);
    // Silence after the upgrade: 4408.
    let mut ws = connect(&server, "graphql-transport-ws").await;
    assert_eq!(next(&mut ws).await["close"], 4408);
    // One connection per user here: the second gets 4429.
    let mut first = connect(&server, "graphql-transport-ws").await;
    init(&mut first, &bob).await;
    let mut second = connect(&server, "graphql-transport-ws").await;
    send(&mut second, json!({ "type": "connection_init", "payload": { "token": bob } })).await;
    let refused = next(&mut second).await;
    assert_eq!(refused["close"], 4429);
    // The close reason is JSON with the backoff (docs/realtime.md).
    let reason: Value = serde_json::from_str(refused["reason"].as_str().expect("reason")).expect("JSON reason");
    assert_eq!((reason["code"].as_str(), reason["retryAfterSeconds"].as_u64()), (Some("RATE_LIMITED"), Some(30)));
    // One subscription per connection here: the second gets an error and completes.
    send(&mut first, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    send(&mut first, json!({ "id": "2", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    let refused = next(&mut first).await;
    assert_eq!(refused["id"], "2");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(next(&mut first).await["type"], "complete");
    server.stop().await;
}

#[tokio::test]
async fn tokens_expire_on_the_socket_unless_renewed_by_ping() {
    let server = TestServer::start_with(6, |s| s.auth.leeway_seconds = 0).await;
    let keys = &server.app().keys;
    let bob_id =
        mobile_bff::social::store::users::by_handle(server.app().db.conn(), "bob").await.expect("q").expect("bob").id;
    let short = keys.mint(bob_id, Some(2)).expect("mint");
    let fresh = keys.mint(bob_id, Some(600)).expect("mint");
    let alice = server.token("alice").await;
    // Renewed: still open after the first token expired.
    let mut renewed = connect(&server, "graphql-transport-ws").await;
    init(&mut renewed, &short).await;
    send(&mut renewed, json!({ "type": "ping", "payload": { "authorization": format!("Bearer {fresh}") } })).await;
    assert_eq!(next(&mut renewed).await["type"], "pong");
    // Not renewed: closed with 4401 when the token expires.
    let mut stale = connect(&server, "graphql-transport-ws").await;
    init(&mut stale, &short).await;
    let closed = next(&mut stale).await;
    assert_eq!(closed["close"], 4401, "{closed}");
    send(&mut renewed, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut renewed).await["type"], "pong", "the renewed socket outlived the first token");
    // A token of someone else is not a renewal.
    send(&mut renewed, json!({ "type": "ping", "payload": { "token": alice } })).await;
    assert_eq!(next(&mut renewed).await["close"], 4403);
    server.stop().await;
}

#[tokio::test]
async fn silent_peers_are_dropped_and_shutdown_says_going_away() {
    let server = TestServer::start_with(6, |s| {
        s.realtime.ws_ping_interval_seconds = 1;
        s.realtime.ws_idle_timeout_seconds = 2;
    })
    .await;
    let bob = server.token("bob").await;
    let mut silent = connect(&server, "graphql-transport-ws").await;
    init(&mut silent, &bob).await;
    // Not reading means not answering pings: the server gives up on this connection.
    server.wait_for_metric("bff_live_connections{transport=\"ws\"}", |open| open == 0.0).await;
    let end = next(&mut silent).await;
    assert_eq!(end["close"], u16::from(CloseCode::Away), "a clean close with 1001, not a dropped socket: {end}");
    let joins = server.metric("bff_live_feed_joins_total").await;
    let mut active = connect(&server, "graphql-transport-ws").await;
    init(&mut active, &bob).await;
    send(&mut active, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    server.wait_for_metric("bff_live_feed_joins_total", |n| n > joins).await;
    let stopping = tokio::spawn(async move { server.stop().await });
    let end = next(&mut active).await;
    assert_eq!(end["close"], u16::from(CloseCode::Away), "{end}");
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn operations_over_the_socket_spend_the_http_rate_limits() {
    let server = TestServer::start_with(6, |s| {
        s.rate_limits.enabled = true;
        s.rate_limits.query_client = mobile_bff::kernel::infra::rate_limit::Budget { per_minute: 1, burst: 2 };
    })
    .await;
    let bob = server.token("bob").await;
    let mut ws = connect(&server, "graphql-transport-ws").await;
    init(&mut ws, &bob).await;
    for id in ["1", "2", "3"] {
        send(&mut ws, json!({ "id": id, "type": "subscribe", "payload": { "query": "{ viewer { handle } }" } })).await;
    }
    let mut codes = Vec::new();
    while codes.len() < 3 {
        let message = next(&mut ws).await;
        if message["type"] == "next" {
            codes.push(message["payload"]["errors"][0]["extensions"]["code"].as_str().unwrap_or("ok").to_owned());
        }
    }
    // The three run concurrently: which one is refused is not ordered.
    codes.sort();
    assert_eq!(codes, vec!["RATE_LIMITED", "ok", "ok"]);
    server.stop().await;
}

/// The seqs of the next `n` `next` messages of subscription `id` (other messages skipped).
async fn seqs_of(ws: &mut Ws, id: &str, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let message = next(ws).await;
        assert!(message.get("close").is_none(), "socket closed: {message}");
        if message["type"] == "next" && message["id"] == id {
            seqs.push(message["payload"]["data"]["events"]["seq"].as_i64().expect("seq"));
        }
    }
    seqs
}

#[tokio::test]
async fn subscriptions_of_one_user_share_a_feed_without_gaps_or_duplicates() {
    let server = TestServer::start(6).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    // 150 events in bob's log before anyone listens: more than a subscription's queue, so
    // a replay from 0 is sent in chunks, each after the socket drained the previous one.
    for i in 0..150 {
        send_message(&server, &alice, &format!("before {i}")).await;
    }
    let joins = server.metric("bff_live_feed_joins_total").await;
    let mut replaying = connect(&server, "graphql-transport-ws").await;
    init(&mut replaying, &bob).await;
    let from_zero = "subscription { events(afterSeq: 0) { seq } }";
    send(&mut replaying, json!({ "id": "r", "type": "subscribe", "payload": { "query": from_zero } })).await;
    // Two sockets with the same live-only operation: one resolution, both get every event.
    let live = "subscription Live { events { seq kind } }";
    let mut one = connect(&server, "graphql-transport-ws").await;
    init(&mut one, &bob).await;
    send(&mut one, json!({ "id": "a", "type": "subscribe", "payload": { "query": live } })).await;
    let mut two = connect(&server, "graphql-transport-ws").await;
    init(&mut two, &bob).await;
    send(&mut two, json!({ "id": "b", "type": "subscribe", "payload": { "query": live } })).await;
    // A resume from the middle, as a reconnecting client does.
    send(
        &mut two,
        json!({ "id": "m", "type": "subscribe", "payload": {
            "query": "subscription($s: Int) { events(afterSeq: $s) { seq } }", "variables": { "s": 140 } } }),
    )
    .await;
    // The live-only subscriptions see what is sent once they have joined their feed.
    server.wait_for_metric("bff_live_feed_joins_total", |n| n >= joins + 4.0).await;
    for i in 0..5 {
        send_message(&server, &alice, &format!("live {i}")).await;
    }
    let head = 155;
    assert_eq!(seqs_of(&mut replaying, "r", head).await, (1..=head as i64).collect::<Vec<_>>());
    assert_eq!(seqs_of(&mut one, "a", 5).await, (151..=155).collect::<Vec<_>>());
    let mut on_two = Vec::new();
    let mut middle = Vec::new();
    while on_two.len() < 5 || middle.len() < 15 {
        let message = next(&mut two).await;
        assert!(message.get("close").is_none(), "socket closed: {message}");
        let seq = message["payload"]["data"]["events"]["seq"].as_i64();
        match (message["id"].as_str(), seq) {
            (Some("b"), Some(seq)) => on_two.push(seq),
            (Some("m"), Some(seq)) => middle.push(seq),
            _ => {}
        }
    }
    assert_eq!(on_two, (151..=155).collect::<Vec<_>>());
    assert_eq!(middle, (141..=155).collect::<Vec<_>>());
    // Four subscriptions of bob on three sockets: one feed.
    let metrics = server.metrics().await;
    assert!(metrics.contains("bff_live_feeds 1\n"), "{metrics}");
    // Nothing more arrives: no duplicates.
    let extra = tokio::time::timeout(Duration::from_millis(300), one.next()).await;
    assert!(!matches!(&extra, Ok(Some(Ok(Message::Text(text)))) if text.contains("\"next\"")), "duplicate: {extra:?}");
    // A position the log never reached is refused like before: RESYNC_REQUIRED, then complete.
    let ahead = "subscription { events(afterSeq: 9999) { seq } }";
    send(&mut one, json!({ "id": "x", "type": "subscribe", "payload": { "query": ahead } })).await;
    let refused = next(&mut one).await;
    assert_eq!(refused["id"], "x");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "RESYNC_REQUIRED", "{refused}");
    assert_eq!(next(&mut one).await["type"], "complete");
    server.stop().await;
}

#[tokio::test]
async fn the_versioned_paths_serve_the_same_api() {
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;
    let body = json!({ "query": crate::common::screen("HomeFeed"), "variables": { "first": 3 } });
    let mut answers = Vec::new();
    for path in ["/graphql", "/v1/graphql"] {
        let response = server
            .client
            .post(format!("{}{path}", server.base))
            .bearer_auth(&alice)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200, "{path}");
        answers.push(response.json::<Value>().await.expect("json"));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1]["data"]["feed"]["edges"].as_array().map(Vec::len), Some(3));
    let schema = |path: &'static str| {
        let url = format!("{}{path}", server.base);
        let client = server.client.clone();
        async move { client.get(url).send().await.expect("get").text().await.expect("text") }
    };
    assert_eq!(schema("/schema.graphql").await, schema("/v1/schema.graphql").await);

    // WebSocket and SSE under /v1 too.
    let url = format!("{}/v1/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut ws, _) = connect_async(request).await.expect("upgrade");
    send(&mut ws, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {alice}") } }))
        .await;
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    let response = server
        .client
        .post(format!("{}/v1/graphql/sse", server.base))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sse");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/event-stream"));
    let text = response.text().await.expect("body");
    assert!(text.contains("\"__typename\":\"Query\""), "{text}");
    server.stop().await;
}
