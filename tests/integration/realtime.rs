//! Real-time over HTTP: long-poll, acknowledgements, retention and `RESYNC_REQUIRED`,
//! presence, SSE replay-then-live with `Last-Event-ID`, and two replica processes on one
//! PostgreSQL (events written through one wake subscribers on the other).
//! The WebSocket transport is tested with the npm `graphql-ws` client in tests/realtime.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestDatabase, TestServer, code};
use crate::replica::{Replica, cli_ok};

const SEND: &str = "mutation($c: ID!, $k: String!, $b: String!) {
  sendMessage(input: { conversationId: $c, clientMessageId: $k, body: $b }) { message { seq } } }";
const POLL: &str = "query($a: Int!, $w: Int) { pollEvents(afterSeq: $a, waitSeconds: $w) {
  nextAfterSeq hasMore events { seq kind message { body } presence { status user { handle } } } } }";

/// The direct conversation of alice and bob (seeded).
async fn alice_and_bob(server: &TestServer, alice: &str) -> String {
    let inbox = server
        .data(
            "{ conversations(first: 20) { edges { node { id kind members { user { handle } } } } } }",
            json!({}),
            Some(alice),
        )
        .await;
    inbox["conversations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| {
            e["node"]["kind"] == "DIRECT"
                && e["node"]["members"].as_array().expect("members").iter().any(|m| m["user"]["handle"] == "bob")
        })
        .and_then(|e| e["node"]["id"].as_str())
        .expect("alice and bob share a conversation")
        .to_owned()
}

async fn send_many(server: &TestServer, token: &str, conversation: &str, label: &str, n: usize) {
    for i in 0..n {
        let vars = json!({ "c": conversation, "k": format!("{label}-{i:04}-key"), "b": format!("{label} {i}") });
        server.data(SEND, vars, Some(token)).await;
    }
}

fn seqs(events: &Value) -> Vec<i64> {
    events.as_array().expect("events").iter().map(|e| e["seq"].as_i64().expect("seq")).collect()
}

#[tokio::test]
async fn poll_returns_the_log_acks_and_resync_after_retention() {
    let server = TestServer::start_with(6, |s| s.realtime.event_retention_count = 5).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let conversation = alice_and_bob(&server, &alice).await;
    send_many(&server, &alice, &conversation, "poll", 4).await;
    let polled = server.data(POLL, json!({ "a": 0 }), Some(&bob)).await["pollEvents"].clone();
    assert_eq!(seqs(&polled["events"]), vec![1, 2, 3, 4]);
    assert_eq!(polled["events"][3]["message"]["body"], "poll 3");
    assert_eq!(polled["nextAfterSeq"], 4);
    assert_eq!(polled["hasMore"], false);
    // Nothing new: an immediate poll returns empty, the position unchanged.
    let empty = server.data(POLL, json!({ "a": 4, "w": 0 }), Some(&bob)).await["pollEvents"].clone();
    assert_eq!(seqs(&empty["events"]), Vec::<i64>::new());
    assert_eq!(empty["nextAfterSeq"], 4);
    // Acks never move backwards and are clamped to the head.
    let ack = "mutation($s: Int!) { ackEvents(upToSeq: $s) { ackedSeq } }";
    assert_eq!(server.data(ack, json!({ "s": 3 }), Some(&bob)).await["ackEvents"]["ackedSeq"], 3);
    assert_eq!(server.data(ack, json!({ "s": 1 }), Some(&bob)).await["ackEvents"]["ackedSeq"], 3);
    assert_eq!(server.data(ack, json!({ "s": 99 }), Some(&bob)).await["ackEvents"]["ackedSeq"], 4);
    // Retention keeps the newest 5: a client at 0 must resync, one at 3 still catches up.
    send_many(&server, &alice, &conversation, "more", 4).await;
    let app = server.app();
    mobile_bff::realtime::log::sweep(&app.db, &app.settings.realtime).await.expect("sweep");
    let stale = server.gql(POLL, json!({ "a": 0 }), Some(&bob)).await;
    assert_eq!(code(&stale), "RESYNC_REQUIRED");
    assert_eq!(stale["errors"][0]["extensions"]["latestSeq"], 8);
    let recent = server.data(POLL, json!({ "a": 3 }), Some(&bob)).await["pollEvents"].clone();
    assert_eq!(seqs(&recent["events"]), vec![4, 5, 6, 7, 8]);
    let future = server.gql(POLL, json!({ "a": 1000 }), Some(&bob)).await;
    assert_eq!(code(&future), "RESYNC_REQUIRED");
    // Age: everything older than now goes; a client that had it all is still in sync, one
    // that was behind must resync.
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    mobile_bff::realtime::store::prune(app.db.conn(), later, 1_000).await.expect("prune by age");
    let synced = server.data(POLL, json!({ "a": 8 }), Some(&bob)).await["pollEvents"].clone();
    assert_eq!(seqs(&synced["events"]), Vec::<i64>::new());
    assert_eq!(code(&server.gql(POLL, json!({ "a": 7 }), Some(&bob)).await), "RESYNC_REQUIRED");
    send_many(&server, &alice, &conversation, "after-prune", 1).await;
    let next = server.data(POLL, json!({ "a": 8 }), Some(&bob)).await["pollEvents"].clone();
    assert_eq!(seqs(&next["events"]), vec![9], "seqs continue after pruning");
    // Bounds and auth.
    assert_eq!(code(&server.gql(POLL, json!({ "a": 0, "w": 31 }), Some(&bob)).await), "BAD_USER_INPUT");
    assert_eq!(code(&server.gql(POLL, json!({ "a": -1 }), Some(&bob)).await), "BAD_USER_INPUT");
    assert_eq!(code(&server.gql(POLL, json!({ "a": 0 }), None).await), "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_poll_returns_when_an_event_arrives() {
    let server = TestServer::start(6).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let conversation = alice_and_bob(&server, &alice).await;
    let waiting = server.data(POLL, json!({ "a": 0, "w": 25 }), Some(&bob));
    let sending = async {
        server.wait_for_metric("bff_live_polls_waiting", |n| n >= 1.0).await;
        send_many(&server, &alice, &conversation, "wake", 1).await;
    };
    let (polled, ()) = tokio::join!(waiting, sending);
    assert_eq!(seqs(&polled["pollEvents"]["events"]), vec![1]);
    server.stop().await;
}

#[tokio::test]
async fn presence_changes_reach_contacts_and_silence_turns_offline() {
    let server = TestServer::start_with(6, |s| {
        s.realtime.presence_heartbeat_seconds = 1;
        s.realtime.presence_grace_seconds = 1;
    })
    .await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let beat = "mutation($s: PresenceStatus!) { heartbeat(status: $s) { status user { handle } } }";
    assert_eq!(server.data(beat, json!({ "s": "ONLINE" }), Some(&bob)).await["heartbeat"]["status"], "ONLINE");
    // The same status again is not news.
    server.data(beat, json!({ "s": "ONLINE" }), Some(&bob)).await;
    server.data(beat, json!({ "s": "AWAY" }), Some(&bob)).await;
    let polled = server.data(POLL, json!({ "a": 0 }), Some(&alice)).await["pollEvents"]["events"].clone();
    let statuses: Vec<&str> = polled
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "PRESENCE_CHANGED" && e["presence"]["user"]["handle"] == "bob")
        .map(|e| e["presence"]["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, vec!["ONLINE", "AWAY"]);
    let bob_id = server.data("{ user(handle: \"bob\") { id } }", json!({}), None).await["user"]["id"].clone();
    let presence = "query($ids: [ID!]!) { presence(userIds: $ids) { status } }";
    assert_eq!(server.data(presence, json!({ "ids": [bob_id] }), Some(&alice)).await["presence"][0]["status"], "AWAY");
    // After the grace period without a sign of life, the sweep turns bob offline — once,
    // however many sweeps run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        server.app().presence.tick().await.expect("tick");
        let now = server.data(presence, json!({ "ids": [bob_id] }), Some(&alice)).await;
        if now["presence"][0]["status"] == "OFFLINE" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "bob never went offline: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.app().presence.tick().await.expect("tick");
    server.app().presence.tick().await.expect("tick");
    let polled = server.data(POLL, json!({ "a": 0 }), Some(&alice)).await["pollEvents"]["events"].clone();
    let offline = polled.as_array().expect("events").iter().filter(|e| e["presence"]["status"] == "OFFLINE").count();
    assert_eq!(offline, 1);
    assert_eq!(
        server.data(presence, json!({ "ids": [bob_id] }), Some(&alice)).await["presence"][0]["status"],
        "OFFLINE"
    );
    server.stop().await;
}

/// One parsed SSE event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: Value,
}

/// An open `/graphql/sse` response, read event by event.
struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    async fn open(base: &str, token: &str, query: &str, last_event_id: Option<i64>) -> Self {
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("{base}/graphql/sse"))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query }));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("sse request");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().expect("type").starts_with("text/event-stream"));
        Self { response, buffer: String::new() }
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() {
                    continue; // keepalive comment
                }
                return Some(SseEvent { event, id, data: serde_json::from_str(&data).unwrap_or(Value::Null) });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk()).await.ok()?.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The seqs of the next `n` `next` events (their ids must be the seqs).
    async fn take(&mut self, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        while out.len() < n {
            let event = self.next().await.expect("an event before the timeout");
            assert_eq!(event.event, "next", "{event:?}");
            let seq = event.data["data"]["events"]["seq"].as_i64().expect("seq");
            assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()), "id: is the seq");
            out.push(seq);
        }
        out
    }
}

const EVENTS: &str = "subscription { events(afterSeq: 0) { seq kind } }";

#[tokio::test]
async fn sse_replays_then_goes_live_and_resumes_with_last_event_id() {
    let server = TestServer::start(6).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let conversation = alice_and_bob(&server, &alice).await;
    send_many(&server, &alice, &conversation, "before", 3).await;
    let mut stream = SseStream::open(&server.base, &bob, EVENTS, None).await;
    assert_eq!(stream.take(3).await, vec![1, 2, 3], "replay");
    send_many(&server, &alice, &conversation, "live", 2).await;
    assert_eq!(stream.take(2).await, vec![4, 5], "live, no duplicate of the replay");
    drop(stream);
    send_many(&server, &alice, &conversation, "away", 3).await;
    // Last-Event-ID overrides the query's afterSeq: 0.
    let mut resumed = SseStream::open(&server.base, &bob, EVENTS, Some(5)).await;
    assert_eq!(resumed.take(3).await, vec![6, 7, 8]);
    // Shutdown ends the stream without `complete`, so clients reconnect.
    let base = server.base.clone();
    server.stop().await;
    let mut rest = Vec::new();
    while let Some(event) = resumed.next().await {
        rest.push(event.event);
    }
    assert!(!rest.iter().any(|e| e == "complete"), "{rest:?} from {base}");
}

/// The last line `mobile-bff <args>` printed (a token, a count).
fn cli(database_url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    cli_ok(database_url, dir, args).lines().last().unwrap_or_default().trim().to_owned()
}

/// Needs PostgreSQL (`.ci/run` runs it with `BFF_TEST_DATABASE_URL`): LISTEN/NOTIFY between
/// two server processes.
#[tokio::test]
#[ignore = "needs PostgreSQL: run with BFF_TEST_DATABASE_URL=postgres://… -- --ignored"]
async fn an_event_written_on_one_replica_reaches_a_subscriber_on_another() {
    assert!(std::env::var("BFF_TEST_DATABASE_URL").is_ok(), "BFF_TEST_DATABASE_URL must be set for this test");
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    cli(&database.url, dir.path(), &["seed", "--users", "6"]);
    let (alice, bob) = (
        cli(&database.url, dir.path(), &["token", "--user", "alice"]),
        cli(&database.url, dir.path(), &["token", "--user", "bob"]),
    );
    let mut a = Replica::start(&database.url, dir.path()).await;
    let b = Replica::start(&database.url, dir.path()).await;
    let client = reqwest::Client::new();
    let post = |base: String, token: String, query: &'static str, variables: Value| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("request");
            let body: Value = response.json().await.expect("json");
            assert!(body.get("errors").is_none(), "{body}");
            body["data"].clone()
        }
    };
    let inbox =
        post(a.base.clone(), alice.clone(), "{ conversations(first: 10) { edges { node { id kind } } } }", json!({}))
            .await;
    let conversation = inbox["conversations"]["edges"][0]["node"]["id"].as_str().expect("id").to_owned();
    let members = post(
        a.base.clone(),
        bob.clone(),
        "query($id: ID!) { conversation(id: $id) { id } }",
        json!({ "id": conversation }),
    );
    members.await;
    let send = |base: String, label: &'static str, n: usize| {
        let post = &post;
        let (alice, conversation) = (alice.clone(), conversation.clone());
        async move {
            for i in 0..n {
                let vars =
                    json!({ "c": conversation, "k": format!("{label}-{i:04}-key"), "b": format!("{label} {i}") });
                post(base.clone(), alice.clone(), SEND, vars).await;
            }
        }
    };
    // Bob listens on A; alice writes through B.
    let mut on_a = SseStream::open(&a.base, &bob, EVENTS, None).await;
    send(b.base.clone(), "via-b", 5).await;
    assert_eq!(on_a.take(5).await, vec![1, 2, 3, 4, 5], "woken through LISTEN/NOTIFY");
    // A dies; alice keeps writing through B; bob reconnects to B from his last seq.
    a.kill();
    drop(on_a);
    send(b.base.clone(), "after-kill", 5).await;
    let mut on_b = SseStream::open(&b.base, &bob, EVENTS, Some(5)).await;
    assert_eq!(on_b.take(5).await, vec![6, 7, 8, 9, 10], "nothing lost, nothing duplicated");
    send(b.base.clone(), "live", 1).await;
    assert_eq!(on_b.take(1).await, vec![11]);
    drop(on_b);
    drop(b);
    database.destroy().await;
}

#[tokio::test]
async fn signing_out_ends_the_devices_event_stream() {
    let server = TestServer::start(6).await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = json!({ "email": "sse@example.com", "password": "correct horse battery", "handle": "sse_user",
        "displayName": "SSE", "device": { "clientDeviceId": "5b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "platform": "ANDROID" } });
    let token = server.data(register, json!({ "input": input }), None).await["register"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut stream = SseStream::open(&server.base, &token, EVENTS, None).await;
    server.data("mutation { logout }", json!({}), Some(&token)).await;
    let mut rest = Vec::new();
    while let Some(event) = stream.next().await {
        rest.push(event.event);
    }
    assert!(rest.is_empty(), "the stream ended without events or `complete`: {rest:?}");
    // Reconnecting with the revoked token is refused.
    let again = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": EVENTS }))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn a_message_to_a_big_group_reaches_every_members_log() {
    let server = TestServer::start_with(1500, |s| s.realtime.max_group_members = 2000).await;
    let alice = server.token("alice").await;
    let members: Vec<String> = (2..=1500)
        .map(|id| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("User:{id}"))
        })
        .collect();
    let group =
        "mutation($m: [ID!]!) { createGroup(input: { title: \"Everyone\", memberIds: $m }) { conversation { id } } }";
    let id =
        server.data(group, json!({ "m": members }), Some(&alice)).await["createGroup"]["conversation"]["id"].clone();
    let vars = json!({ "c": id, "k": "big-group-0001", "b": "hello, everyone" });
    server.data(SEND, vars, Some(&alice)).await;
    let last = mobile_bff::social::store::users::by_ids(server.app().db.conn(), &[1500]).await.expect("q").remove(0);
    let token = server.app().keys.mint(last.id, None).expect("mint");
    let polled = server.data(POLL, json!({ "a": 0 }), Some(&token)).await["pollEvents"]["events"].clone();
    assert_eq!(polled[1]["message"]["body"], "hello, everyone", "{polled}");
    server.stop().await;
}

#[tokio::test]
async fn comments_and_reactions_on_your_posts_are_events() {
    let server = TestServer::start(6).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let posts =
        server.data("{ user(handle: \"alice\") { posts(first: 1) { edges { node { id } } } } }", json!({}), None).await;
    let post = posts["user"]["posts"]["edges"][0]["node"]["id"].clone();
    let comment = "mutation($p: ID!, $k: String) { addComment(input: { postId: $p, body: \"nice\", idempotencyKey: $k }) { comment { id } } }";
    let first = server.data(comment, json!({ "p": post, "k": "comment-key-0001" }), Some(&bob)).await;
    server.data(comment, json!({ "p": post, "k": "comment-key-0001" }), Some(&bob)).await; // a retry: no second event
    server.data(comment, json!({ "p": post, "k": null }), Some(&alice)).await; // her own: no event
    let react = "mutation($p: ID!) { react(input: { postId: $p, kind: LOVE }) { post { id } } }";
    server.data(react, json!({ "p": post }), Some(&bob)).await;
    let poll = "{ pollEvents(afterSeq: 0) { events { seq kind postActivity { kind reaction actor { handle } post { id } comment { id } } } } }";
    let events = server.data(poll, json!({}), Some(&alice)).await["pollEvents"]["events"].clone();
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["kind"] == "POST_ACTIVITY" && e["postActivity"]["actor"]["handle"] == "bob"));
    assert_eq!(events[0]["postActivity"]["kind"], "COMMENT");
    assert_eq!(events[0]["postActivity"]["comment"]["id"], first["addComment"]["comment"]["id"]);
    assert_eq!(events[0]["postActivity"]["post"]["id"], post);
    assert_eq!(events[1]["postActivity"]["kind"], "REACTION");
    assert_eq!(events[1]["postActivity"]["reaction"], "LOVE");
    server.stop().await;
}

#[tokio::test]
async fn presence_is_shared_in_direct_conversations_and_small_groups_only() {
    let server = TestServer::start_with(10, |s| s.realtime.presence_max_group_members = 3).await;
    // Users 6.. share no seeded conversation.
    let handles: Vec<String> = (6..10).map(mobile_bff::dev::seed::handle_of).collect();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for handle in &handles {
        tokens.push(server.token(handle).await);
        let query = "query($h: String!) { user(handle: $h) { id } }";
        ids.push(server.data(query, json!({ "h": handle }), None).await["user"]["id"].clone());
    }
    let group = "mutation($t: String!, $m: [ID!]!) { createGroup(input: { title: $t, memberIds: $m }) { conversation { id } } }";
    let beat = "mutation($s: PresenceStatus!) { heartbeat(status: $s) { status } }";
    let seen_by = |token: String| {
        let server = &server;
        let watched = handles[0].clone();
        async move {
            let polled = server.data(POLL, json!({ "a": 0 }), Some(&token)).await["pollEvents"]["events"].clone();
            polled
                .as_array()
                .expect("events")
                .iter()
                .filter(|e| e["kind"] == "PRESENCE_CHANGED" && e["presence"]["user"]["handle"] == watched.as_str())
                .map(|e| e["presence"]["status"].as_str().expect("status").to_owned())
                .collect::<Vec<_>>()
        }
    };
    // A group of four is over the limit of three: nobody hears of user 6.
    server.data(group, json!({ "t": "big", "m": [ids[1], ids[2], ids[3]] }), Some(&tokens[0])).await;
    server.data(beat, json!({ "s": "ONLINE" }), Some(&tokens[0])).await;
    for token in &tokens[1..] {
        assert_eq!(seen_by(token.clone()).await, Vec::<String>::new());
    }
    // A group of three is small enough, a direct conversation always is.
    server.data(group, json!({ "t": "small", "m": [ids[2], ids[3]] }), Some(&tokens[0])).await;
    let start = "mutation($u: ID!) { startConversation(input: { userId: $u }) { conversation { id } } }";
    server.data(start, json!({ "u": ids[1] }), Some(&tokens[0])).await;
    server.data(beat, json!({ "s": "AWAY" }), Some(&tokens[0])).await;
    for token in &tokens[1..] {
        assert_eq!(seen_by(token.clone()).await, vec!["AWAY".to_owned()]);
    }
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with BFF_TEST_DATABASE_URL=postgres://… -- --ignored"]
async fn signing_out_on_one_replica_closes_the_devices_stream_on_another_at_once() {
    assert!(std::env::var("BFF_TEST_DATABASE_URL").is_ok(), "BFF_TEST_DATABASE_URL must be set for this test");
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    cli(&database.url, dir.path(), &["seed", "--users", "6"]);
    let a = Replica::start(&database.url, dir.path()).await;
    let b = Replica::start(&database.url, dir.path()).await;
    let client = reqwest::Client::new();
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = json!({ "email": "two@example.com", "password": "correct horse battery", "handle": "two_replicas",
        "displayName": "Two", "device": { "clientDeviceId": "6c1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "platform": "IOS" } });
    let body: Value = client
        .post(format!("{}/graphql", a.base))
        .json(&json!({ "query": register, "variables": { "input": input } }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let token = body["data"]["register"]["accessToken"].as_str().expect("token").to_owned();
    // The device listens on B and signs out through A: B closes the stream well within a
    // second (the socket's ping, 25 s away, is not what closes it).
    let mut on_b = SseStream::open(&b.base, &token, EVENTS, None).await;
    let logout: Value = client
        .post(format!("{}/graphql", a.base))
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { logout }" }))
        .send()
        .await
        .expect("logout")
        .json()
        .await
        .expect("json");
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    let ended = tokio::time::timeout(Duration::from_secs(1), async { while on_b.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream on the other replica is still open a second after signing out");
    drop((a, b));
    database.destroy().await;
}
