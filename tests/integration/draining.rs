//! Backoff hints and draining: the `retry:` fields of EventSource streams, `retryAfterSeconds`
//! on refusals, and a shutdown that answers waiting long-polls and says `draining` on `/readyz`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestServer;

const POLL: &str = "query($a: Int!, $w: Int) { pollEvents(afterSeq: $a, waitSeconds: $w) {
  nextAfterSeq hasMore events { seq kind message { body } presence { status user { handle } } } } }";
const EVENTS: &str = "subscription { events(afterSeq: 0) { seq kind } }";

/// The body of an SSE response read until `until` appears in it or the stream ends (bounded).
async fn sse_text_until(response: &mut reqwest::Response, text: &mut String, until: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains(until) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => return,
            Err(_) => panic!("no {until:?} in time: {text}"),
        }
    }
}

#[tokio::test]
async fn sse_backoff_hints_are_machine_readable() {
    let server = TestServer::start_with(6, |s| s.realtime.max_connections_per_user = 1).await;
    let bob = server.token("bob").await;
    // EventSource opens GET streams: the first field is the reconnect delay.
    let url = format!("{}/graphql/sse", server.base);
    let mut open = server
        .client
        .get(&url)
        .query(&[("query", EVENTS)])
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(open.status(), 200);
    let mut text = String::new();
    sse_text_until(&mut open, &mut text, "\n\n").await;
    assert!(text.starts_with("retry: 1000\n"), "{text:?}");

    // Over the connection limit: 429 with the wait in the header and in the error.
    let refused = server
        .client
        .post(&url)
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sse");
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "30");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], 30);

    // Shutdown: the GET stream's last field is a fresh reconnect delay (0–2 s), no `complete`.
    let stopping = tokio::spawn(server.stop());
    let before = text.len();
    sse_text_until(&mut open, &mut text, "\u{0}never").await;
    stopping.await.expect("stopped");
    let tail = &text[before..];
    let retry = tail.lines().filter_map(|l| l.strip_prefix("retry: ")).next_back().expect("a retry field at shutdown");
    assert!(retry.parse::<u64>().is_ok_and(|ms| ms <= 2000), "{tail:?}");
    assert!(!tail.contains("event: complete"), "{tail:?}");
}

#[tokio::test]
async fn sse_post_streams_carry_no_retry_field_for_fetch_clients() {
    // graphql-sse (npm) refuses a `retry:` field: POST streams, which it opens, have none.
    let server = TestServer::start(6).await;
    let bob = server.token("bob").await;
    let mut response = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sse");
    let mut text = String::new();
    sse_text_until(&mut response, &mut text, "event: complete").await;
    assert!(text.contains("event: next") && !text.contains("retry:"), "{text:?}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_answers_waiting_polls_within_the_grace() {
    let server = TestServer::start(6).await;
    let bob = server.token("bob").await;
    let (client, base) = (server.client.clone(), server.base.clone());
    // A long-poll that would outlast the shutdown grace (2 s here) by far.
    let waiting = tokio::spawn(async move {
        let response = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&bob)
            .json(&json!({ "query": POLL, "variables": { "a": 0, "w": 30 } }))
            .send()
            .await
            .expect("the poll is answered, not cut");
        (response.status().as_u16(), response.json::<Value>().await.expect("json"))
    });
    server.wait_for_metric("bff_live_polls_waiting", |n| n >= 1.0).await;
    let stopping = tokio::spawn(server.stop());
    // The waiting poll answers with what it has (nothing new): the client polls again elsewhere.
    let (status, polled) = waiting.await.expect("poll task");
    assert_eq!(status, 200, "{polled}");
    assert!(polled.get("errors").is_none(), "{polled}");
    assert_eq!(polled["data"]["pollEvents"]["events"], json!([]));
    assert_eq!(polled["data"]["pollEvents"]["nextAfterSeq"], 0);
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn readiness_says_draining_once_the_server_is_closing() {
    let server = TestServer::start(0).await;
    let ready = server.client.get(format!("{}/readyz", server.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    // The first step of a shutdown: a balancer polling /readyz stops sending new work.
    server.app().closing.send_replace(true);
    let ready = server.client.get(format!("{}/readyz", server.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["retry-after"], "5");
    let body: Value = ready.json().await.expect("json");
    assert_eq!((body["status"].as_str(), body["retryAfterSeconds"].as_u64()), (Some("draining"), Some(5)));
    server.stop().await;
}
