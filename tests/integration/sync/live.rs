//! `streamNotes` over graphql-transport-ws and SSE: live pages after a push, catch-up from a
//! checkpoint, and only the viewer's own notes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest},
};

use super::*;
use crate::common::TestServer;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(server: &TestServer, token: &str) -> Ws {
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut ws, _) = connect_async(request).await.expect("upgrade");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await.expect("send");
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    ws
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if value["type"] == "ping" || value["type"] == "pong" {
                    continue;
                }
                return value;
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

fn stream_query() -> String {
    format!(
        "subscription($cp: NoteCheckpointInput) {{ streamNotes(checkpoint: $cp) {{ documents {{ {NOTE} }} checkpoint {{ id updatedAt seq floor }} }} }}"
    )
}

async fn subscribe(ws: &mut Ws, cp: Value) {
    let message =
        json!({ "id": "s", "type": "subscribe", "payload": { "query": stream_query(), "variables": { "cp": cp } } });
    ws.send(Message::Text(message.to_string().into())).await.expect("send");
}

/// Waits until the stream has joined the viewer's bus (the subscription reads its start
/// position when it begins).
async fn joined(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.app().bus.subscribed_users() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the stream never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_stream_pushes_changes_live_and_catches_up_from_a_checkpoint() {
    let server = TestServer::start(2).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let first = create(&server, &alice, &new_id(), "before").await;
    let (_, cp) = pull_all(&server, &alice, Value::Null, 10).await;

    let mut ws = socket(&server, &alice).await;
    subscribe(&mut ws, Value::Null).await;
    joined(&server).await;
    // Bob's notes never show up in Alice's stream.
    create(&server, &bob, &new_id(), "bob's").await;
    let live = create(&server, &alice, &new_id(), "live").await;
    let got = next(&mut ws).await;
    assert_eq!(got["type"], "next", "{got}");
    let bulk = &got["payload"]["data"]["streamNotes"];
    assert_eq!(bulk["documents"].as_array().unwrap().len(), 1, "{bulk}");
    assert_eq!(bulk["documents"][0]["id"], live["id"]);
    assert!(bulk["checkpoint"]["seq"].as_i64().unwrap() > cp["seq"].as_i64().unwrap());
    drop(ws);

    // Offline: a change happens; reconnecting with the checkpoint catches up first.
    let result = edit(&server, &alice, &first, |n| n["deleted"] = json!(true)).await;
    assert_eq!(result["status"], "SYNCED");
    let mut ws = socket(&server, &alice).await;
    subscribe(&mut ws, cp.clone()).await;
    let got = next(&mut ws).await;
    let ids: Vec<&str> = got["payload"]["data"]["streamNotes"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![live["id"].as_str().unwrap(), first["id"].as_str().unwrap()], "catch-up in change order");
    assert_eq!(got["payload"]["data"]["streamNotes"]["documents"][1]["deleted"], true);
    server.stop().await;
}

#[tokio::test]
async fn the_stream_works_over_sse_and_refuses_anonymous_clients() {
    let server = TestServer::start(1).await;
    let alice = server.token("alice").await;
    let mut response = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": stream_query(), "variables": { "cp": null } }))
        .send()
        .await
        .expect("sse");
    assert_eq!(response.status(), 200);
    joined(&server).await;
    let note = create(&server, &alice, &new_id(), "over sse").await;
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !buffer.contains(note["id"].as_str().unwrap()) {
        let chunk =
            tokio::time::timeout_at(deadline, response.chunk()).await.expect("in time").expect("chunk").expect("open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(buffer.contains("event: next"), "{buffer}");
    drop(response);

    // Anonymous: refused with a code, over SSE too.
    let anonymous = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": stream_query(), "variables": { "cp": null } }))
        .send()
        .await
        .expect("sse");
    let status = anonymous.status().as_u16();
    let text = tokio::time::timeout(Duration::from_secs(10), anonymous.text()).await.expect("ends").unwrap_or_default();
    assert!(text.contains("UNAUTHENTICATED"), "{status}: {text}");
    server.stop().await;
}
