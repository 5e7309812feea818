//! Messaging: the inbox through loaders (constant statement count), conversation paging,
//! idempotent sends, read markers, and what non-members and bad input get.

use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

const INBOX: &str = "query Inbox($first: Int, $after: String) { conversations(first: $first, after: $after) {
  edges { cursor node { id kind title lastSeq unreadCount viewerLastReadSeq
    lastMessage { id seq body sender { handle } }
    members { user { handle } lastReadSeq } } }
  pageInfo { hasNextPage endCursor } } }";

const SEND: &str = "mutation Send($c: ID!, $k: String!, $b: String!) {
  sendMessage(input: { conversationId: $c, clientMessageId: $k, body: $b }) {
    message { id seq body clientMessageId sender { handle } } conversation { lastSeq unreadCount } } }";

async fn inbox(server: &TestServer, token: &str, first: i64) -> Value {
    server.data(INBOX, json!({ "first": first }), Some(token)).await["conversations"].clone()
}

async fn conversation_ids(server: &TestServer, token: &str) -> Vec<String> {
    let inbox = inbox(server, token, 20).await;
    inbox["edges"].as_array().expect("edges").iter().map(|e| e["node"]["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn inbox_lists_conversations_with_constant_statements() {
    let server = TestServer::start(8).await;
    let alice = server.token("alice").await;
    let before = server.statements().await;
    let small = inbox(&server, &alice, 2).await;
    let small_cost = server.statements().await - before;
    let before = server.statements().await;
    let all = inbox(&server, &alice, 20).await;
    let all_cost = server.statements().await - before;
    assert_eq!(small_cost, all_cost, "statements must not grow with the page size");
    let edges = all["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 5, "4 direct conversations and a group: {all}");
    assert_eq!(small["pageInfo"]["hasNextPage"], true);
    for edge in edges {
        let node = &edge["node"];
        assert_eq!(node["lastMessage"]["seq"], node["lastSeq"]);
        assert!(node["members"].as_array().expect("members").len() >= 2);
        assert!(node["unreadCount"].as_i64().expect("count") >= 0);
    }
    let group = edges.iter().find(|e| e["node"]["kind"] == "GROUP").expect("group");
    assert_eq!(group["node"]["title"], "Weekend plans");
    // The next page continues after the cursor.
    let next = server
        .data(INBOX, json!({ "first": 2, "after": small["pageInfo"]["endCursor"] }), Some(&alice))
        .await["conversations"]
        .clone();
    assert_eq!(next["edges"][0]["node"]["id"], edges[2]["node"]["id"]);
    server.stop().await;
}

#[tokio::test]
async fn screen_queries_cost_the_same_statements_whatever_the_page() {
    let server = TestServer::start(8).await;
    let alice = server.token("alice").await;
    let inbox = screen("Inbox");
    let cost = |first: i64| {
        let (server, inbox, alice) = (&server, &inbox, &alice);
        async move {
            let before = server.statements().await;
            let data = server.data(inbox, json!({ "first": first }), Some(alice)).await;
            (server.statements().await - before, data)
        }
    };
    let (one, _) = cost(1).await;
    let (five, data) = cost(5).await;
    assert_eq!(one, five, "Inbox: statements do not depend on the page size");
    let id = data["conversations"]["edges"][4]["node"]["id"].clone();
    let conversation = screen("Conversation");
    let before = server.statements().await;
    let page = server.data(&conversation, json!({ "id": id, "last": 5 }), Some(&alice)).await;
    let small = server.statements().await - before;
    let before = server.statements().await;
    server.data(&conversation, json!({ "id": id, "last": 30 }), Some(&alice)).await;
    assert_eq!(small, server.statements().await - before, "Conversation: same for 5 or 30 messages");
    assert!(!page["conversation"]["messages"]["edges"].as_array().expect("edges").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn send_is_idempotent_and_moves_the_inbox() {
    let server = TestServer::start(6).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let ids = conversation_ids(&server, &bob).await;
    let direct = ids.iter().find(|id| !id.is_empty()).expect("bob has a conversation").clone();
    let vars = json!({ "c": direct, "k": "client-msg-0001", "b": "hello over a tunnel" });
    let first = server.data(SEND, vars.clone(), Some(&bob)).await["sendMessage"].clone();
    let retry = server.data(SEND, vars, Some(&bob)).await["sendMessage"].clone();
    assert_eq!(first["message"]["id"], retry["message"]["id"]);
    assert_eq!(first["message"]["seq"], retry["message"]["seq"]);
    assert_eq!(first["conversation"]["lastSeq"], retry["conversation"]["lastSeq"], "no second message");
    assert_eq!(first["message"]["sender"]["handle"], "bob");
    // Same client id, other text: a client bug, refused.
    let other = json!({ "c": direct, "k": "client-msg-0001", "b": "something else" });
    assert_eq!(code(&server.gql(SEND, other, Some(&bob)).await), "CONFLICT");
    // Alice sees it first in her inbox, unread.
    let inbox = inbox(&server, &alice, 5).await;
    assert_eq!(inbox["edges"][0]["node"]["id"], direct.as_str());
    assert_eq!(inbox["edges"][0]["node"]["lastMessage"]["body"], "hello over a tunnel");
    assert!(inbox["edges"][0]["node"]["unreadCount"].as_i64().expect("unread") >= 1);
    // Marking read clears it; marking an older seq does not move the marker back.
    let seq = first["message"]["seq"].as_i64().expect("seq");
    let mark = "mutation($c: ID!, $s: Int!) { markRead(input: { conversationId: $c, seq: $s }) {
        lastReadSeq conversation { unreadCount viewerLastReadSeq } } }";
    let read = server.data(mark, json!({ "c": direct, "s": seq + 100 }), Some(&alice)).await;
    assert_eq!(read["markRead"]["lastReadSeq"], seq, "clamped to the newest message");
    assert_eq!(read["markRead"]["conversation"]["unreadCount"], 0);
    let back = server.data(mark, json!({ "c": direct, "s": 1 }), Some(&alice)).await;
    assert_eq!(back["markRead"]["lastReadSeq"], seq);
    // Bob's log: his message, then alice's read receipt (once: the second markRead moved nothing).
    let poll = "{ pollEvents(afterSeq: 0) { events { kind read { seq user { handle } } } } }";
    let events = server.data(poll, json!({}), Some(&bob)).await["pollEvents"]["events"].clone();
    let kinds: Vec<&str> =
        events.as_array().expect("events").iter().map(|e| e["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, vec!["MESSAGE_ADDED", "MESSAGE_READ"]);
    assert_eq!(events[1]["read"]["user"]["handle"], "alice");
    assert_eq!(events[1]["read"]["seq"], seq);
    server.stop().await;
}

#[tokio::test]
async fn messages_page_both_ways() {
    let server = TestServer::start(6).await;
    let alice = server.token("alice").await;
    let id = conversation_ids(&server, &alice).await[0].clone();
    for i in 0..7 {
        let vars = json!({ "c": id, "k": format!("page-test-{i:04}"), "b": format!("m{i}") });
        server.data(SEND, vars, Some(&alice)).await;
    }
    let query = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { conversation(id: $id) {
        lastSeq messages(first: $first, after: $after, last: $last, before: $before) {
          edges { cursor node { seq body } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
    let newest = server.data(query, json!({ "id": id, "last": 3 }), Some(&alice)).await["conversation"].clone();
    let last_seq = newest["lastSeq"].as_i64().expect("lastSeq");
    let seqs: Vec<i64> = newest["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![last_seq - 2, last_seq - 1, last_seq], "oldest first");
    assert_eq!(newest["messages"]["pageInfo"]["hasPreviousPage"], true);
    let older = server
        .data(
            query,
            json!({ "id": id, "last": 2, "before": newest["messages"]["pageInfo"]["startCursor"] }),
            Some(&alice),
        )
        .await["conversation"]["messages"]
        .clone();
    assert_eq!(older["edges"][1]["node"]["seq"], last_seq - 3);
    // Forwards from the older page's end returns what followed, in order.
    let forward = server
        .data(query, json!({ "id": id, "first": 10, "after": older["pageInfo"]["endCursor"] }), Some(&alice))
        .await["conversation"]["messages"]
        .clone();
    let seqs: Vec<i64> =
        forward["edges"].as_array().expect("edges").iter().map(|e| e["node"]["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, ((last_seq - 2)..=last_seq).collect::<Vec<_>>());
    assert_eq!(forward["pageInfo"]["hasNextPage"], false);
    let both = server.gql(query, json!({ "id": id, "first": 2, "last": 2 }), Some(&alice)).await;
    assert_eq!(code(&both), "BAD_USER_INPUT");
    server.stop().await;
}

#[tokio::test]
async fn non_members_and_bad_input_are_refused() {
    let server = TestServer::start(6).await;
    let alice = server.token("alice").await;
    let frank = server.token("frank").await;
    let id = conversation_ids(&server, &alice).await[0].clone();
    // frank is in no conversation: he cannot read, send to, mark, or discover alice's.
    let read = server.gql("query($id: ID!) { conversation(id: $id) { id } }", json!({ "id": id }), Some(&frank)).await;
    assert_eq!(code(&read), "NOT_FOUND");
    let send = server.gql(SEND, json!({ "c": id, "k": "intruder-0001", "b": "hi" }), Some(&frank)).await;
    assert_eq!(code(&send), "NOT_FOUND");
    let node = server.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": id }), Some(&frank)).await;
    assert_eq!(node["node"], Value::Null);
    assert_eq!(inbox(&server, &frank, 5).await["edges"].as_array().expect("edges").len(), 0);
    let anonymous = server.gql(INBOX, json!({}), None).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    // Bad input.
    for (key, body) in [("short", "hi"), ("valid-key-0001", "   "), ("bad key with spaces", "hi")] {
        let reply = server.gql(SEND, json!({ "c": id, "k": key, "b": body }), Some(&alice)).await;
        assert_eq!(code(&reply), "BAD_USER_INPUT", "{key:?}/{body:?}: {reply}");
    }
    let long = "x".repeat(4001);
    let reply = server.gql(SEND, json!({ "c": id, "k": "valid-key-0002", "b": long }), Some(&alice)).await;
    assert_eq!(code(&reply), "BAD_USER_INPUT");
    let wrong_type = server.gql(SEND, json!({ "c": "VXNlcjox", "k": "valid-key-0003", "b": "x" }), Some(&alice)).await;
    assert_eq!(code(&wrong_type), "BAD_USER_INPUT");
    server.stop().await;
}

#[tokio::test]
async fn conversations_are_started_once_and_groups_idempotently() {
    let server = TestServer::start(8).await;
    let frank = server.token("frank").await;
    let grace = server.data("{ user(handle: \"grace\") { id } }", json!({}), None).await["user"]["id"].clone();
    let start = "mutation($u: ID!) { startConversation(input: { userId: $u }) { conversation { id kind members { user { handle } } } } }";
    let a = server.data(start, json!({ "u": grace }), Some(&frank)).await;
    let b = server.data(start, json!({ "u": grace }), Some(&frank)).await;
    assert_eq!(a["startConversation"]["conversation"]["id"], b["startConversation"]["conversation"]["id"]);
    assert_eq!(a["startConversation"]["conversation"]["kind"], "DIRECT");
    let me = server.data("{ viewer { id } }", json!({}), Some(&frank)).await["viewer"]["id"].clone();
    let own = server.gql(start, json!({ "u": me }), Some(&frank)).await;
    assert_eq!(code(&own), "BAD_USER_INPUT");
    let group = "mutation($m: [ID!]!, $k: String) { createGroup(input: { title: \"Climbing\", memberIds: $m, idempotencyKey: $k }) {
        conversation { id kind title members { user { handle } } } } }";
    let g1 = server.data(group, json!({ "m": [grace], "k": "group-key-0001" }), Some(&frank)).await;
    let g2 = server.data(group, json!({ "m": [grace], "k": "group-key-0001" }), Some(&frank)).await;
    assert_eq!(g1["createGroup"]["conversation"]["id"], g2["createGroup"]["conversation"]["id"]);
    assert_eq!(g1["createGroup"]["conversation"]["members"].as_array().expect("members").len(), 2);
    let empty = server.gql(group, json!({ "m": [], "k": null }), Some(&frank)).await;
    assert_eq!(code(&empty), "BAD_USER_INPUT");
    let grace_token = server.token("grace").await;
    assert_eq!(conversation_ids(&server, &grace_token).await.len(), 2);
    // Both conversations reached grace's event log.
    let poll = "{ pollEvents(afterSeq: 0) { events { seq kind conversationId } } }";
    let events = server.data(poll, json!({}), Some(&grace_token)).await["pollEvents"]["events"].clone();
    let added: Vec<&Value> = events.as_array().expect("events").iter().map(|e| &e["conversationId"]).collect();
    assert_eq!(added, vec![&a["startConversation"]["conversation"]["id"], &g1["createGroup"]["conversation"]["id"]]);
    assert!(events.as_array().expect("events").iter().all(|e| e["kind"] == "CONVERSATION_ADDED"));
    server.stop().await;
}
