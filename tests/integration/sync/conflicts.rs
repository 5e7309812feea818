//! Conflict strategies per field (three-way merge, last-writer-wins by HLC, keep-both,
//! server-wins), their records (`Note.conflicts`, `syncConflicts`, `SYNC_CONFLICT` events),
//! `resolveSyncConflict`, and RxDB's `pushNotes` adapter.

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;

/// A client clock stamp `offset_ms` from now (uhlc text form, clock id `id`).
fn stamp(offset_ms: i64, id: &str) -> String {
    let ms = (chrono::Utc::now().timestamp_millis() + offset_ms) as u128;
    let ntp = ((ms / 1000) << 32) + (((ms % 1000) << 32) / 1000);
    format!("{ntp}/{id}")
}

const CONFLICTS: &str = "query($all: Boolean) { syncConflicts(first: 10, includeDismissed: $all) { edges { node { id noteId field strategy winner serverValue clientValue resolvedValue dismissed user otherUser } } pageInfo { hasNextPage } } }";

#[tokio::test]
async fn edits_to_different_fields_both_survive_and_same_field_edits_follow_their_strategy() {
    let server = TestServer::start(2).await;
    let alice = server.token("alice").await;
    let base = create(&server, &alice, &new_id(), "groceries").await;
    // Device A: title and body; device B (offline, same base): done and body.
    let a = edit(&server, &alice, &base, |n| {
        n["title"] = json!("groceries (A)");
        n["body"] = json!("milk");
    })
    .await;
    assert_eq!(a["status"], "SYNCED");
    let b = edit(&server, &alice, &base, |n| {
        n["done"] = json!(true);
        n["body"] = json!("eggs");
    })
    .await;
    assert_eq!(b["status"], "CONFLICT", "{b}");
    assert_eq!(b["resolution"], "MERGED");
    let note = &b["note"];
    assert_eq!(note["title"], "groceries (A)", "A's title survives");
    assert_eq!(note["done"], true, "B's done survives");
    assert_eq!(note["body"], "milk\n\n=== other version ===\n\neggs", "body keeps both");
    let conflicts = b["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "only body was changed on both sides: {conflicts:?}");
    assert_eq!(conflicts[0]["field"], "BODY");
    assert_eq!(conflicts[0]["strategy"], "KEEP_BOTH");
    assert_eq!(conflicts[0]["winner"], "BOTH");
    assert_eq!(conflicts[0]["baseValue"], "");
    assert_eq!(conflicts[0]["serverValue"], "milk");
    assert_eq!(conflicts[0]["clientValue"], "eggs");

    // position is server-wins by default.
    let current = b["note"].clone();
    edit(&server, &alice, &current, |n| n["position"] = json!(5.0)).await;
    let c = edit(&server, &alice, &current, |n| n["position"] = json!(9.0)).await;
    assert_eq!(c["status"], "CONFLICT");
    assert_eq!(c["conflicts"][0]["strategy"], "SERVER_WINS");
    assert_eq!(c["note"]["position"], 5.0);
    server.stop().await;
}

#[tokio::test]
async fn last_writer_wins_by_the_edit_clock_not_the_arrival_order() {
    let server = TestServer::start(2).await;
    let alice = server.token("alice").await;
    let base = create(&server, &alice, &new_id(), "base").await;
    // Device A edited at t-10s, device B at t-5s; B reaches the server first.
    let b = edit(&server, &alice, &base, |n| {
        n["title"] = json!("B (later edit)");
        n["hlc"] = json!(stamp(-5_000, "b"));
    })
    .await;
    assert_eq!(b["status"], "SYNCED");
    let a = edit(&server, &alice, &base, |n| {
        n["title"] = json!("A (earlier edit)");
        n["hlc"] = json!(stamp(-10_000, "a"));
    })
    .await;
    assert_eq!(a["status"], "CONFLICT");
    assert_eq!(a["note"]["title"], "B (later edit)", "the later edit wins though it arrived first");
    assert_eq!(a["conflicts"][0]["strategy"], "LAST_WRITER_WINS");
    assert_eq!(a["conflicts"][0]["winner"], "SERVER");
    // A newer edit from A wins.
    let a2 = edit(&server, &alice, &base, |n| {
        n["title"] = json!("A (newest)");
        n["hlc"] = json!(stamp(0, "a"));
    })
    .await;
    assert_eq!(a2["note"]["title"], "A (newest)");
    assert_eq!(a2["conflicts"][0]["winner"], "CLIENT");
    server.stop().await;
}

#[tokio::test]
async fn conflicts_are_recorded_announced_and_can_be_dismissed_or_reversed() {
    let server = TestServer::start(3).await;
    let (alice, bob, carol) = (server.token("alice").await, server.token("bob").await, server.token("carol").await);
    let bob_id = user_id(&server, &bob).await;
    let base = create(&server, &alice, &new_id(), "plan").await;
    let id = base["id"].as_str().unwrap().to_owned();
    server
        .data(
            "mutation($id: String!, $u: ID!) { shareNote(id: $id, userId: $u) { id } }",
            json!({ "id": id, "u": bob_id }),
            Some(&alice),
        )
        .await;
    let shared = pull_all(&server, &bob, Value::Null, 10).await.0.pop().unwrap();
    edit(&server, &alice, &shared, |n| n["title"] = json!("alice's plan")).await;
    let bob_push = edit(&server, &bob, &shared, |n| n["title"] = json!("bob's plan")).await;
    assert_eq!(bob_push["status"], "CONFLICT");
    assert_eq!(bob_push["note"]["title"], "bob's plan", "arrived later, no client clock: bob wins");

    // Both users see it: the connection, Note.conflicts and a SYNC_CONFLICT event.
    for token in [&alice, &bob] {
        let list = server.data(CONFLICTS, json!({}), Some(token)).await;
        let edges = list["syncConflicts"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{list}");
        let c = &edges[0]["node"];
        assert_eq!(c["field"], "TITLE");
        assert_eq!(c["serverValue"], "alice's plan");
        assert_eq!(c["clientValue"], "bob's plan");
        assert_eq!(c["user"], bob_id.as_str());
        let note = server
            .data(
                "query($id: String!) { note(id: $id) { conflicts { field winner } } }",
                json!({ "id": id }),
                Some(token),
            )
            .await;
        assert_eq!(note["note"]["conflicts"], json!([{ "field": "TITLE", "winner": "CLIENT" }]));
        let events = server
            .data("{ pollEvents(afterSeq: 0) { events { kind noteIds syncConflictIds } } }", json!({}), Some(token))
            .await;
        let kinds: Vec<&str> =
            events["pollEvents"]["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"SYNC_CONFLICT"), "{kinds:?}");
        assert!(kinds.contains(&"NOTES_CHANGED"), "{kinds:?}");
    }

    // Alice takes the other version back: a new change every device pulls.
    let conflict_id =
        server.data(CONFLICTS, json!({}), Some(&alice)).await["syncConflicts"]["edges"][0]["node"]["id"].clone();
    let (_, cp) = pull_all(&server, &alice, Value::Null, 10).await;
    let resolved = server
        .data(
            "mutation($id: ID!) { resolveSyncConflict(id: $id, action: TAKE_SERVER) { id dismissed } }",
            json!({ "id": conflict_id }),
            Some(&alice),
        )
        .await;
    assert_eq!(resolved["resolveSyncConflict"]["dismissed"], true);
    let (docs, _) = pull_all(&server, &alice, cp, 10).await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["title"], "alice's plan");
    assert_eq!(server.data(CONFLICTS, json!({}), Some(&bob)).await["syncConflicts"]["edges"], json!([]));
    // Someone without access neither sees nor touches it.
    assert_eq!(server.data(CONFLICTS, json!({ "all": true }), Some(&carol)).await["syncConflicts"]["edges"], json!([]));
    let body = server
        .gql(
            "mutation($id: ID!) { resolveSyncConflict(id: $id, action: DISMISS) { id } }",
            json!({ "id": conflict_id }),
            Some(&carol),
        )
        .await;
    assert_eq!(crate::common::code(&body), "NOT_FOUND");
    let all = server.data(CONFLICTS, json!({ "all": true }), Some(&bob)).await;
    assert_eq!(all["syncConflicts"]["edges"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn server_wins_mode_applies_nothing_and_push_notes_returns_the_server_state() {
    let server =
        TestServer::start_with(1, |s| s.sync.conflict_mode = mobile_bff::sync::settings::ConflictMode::ServerWins)
            .await;
    let alice = server.token("alice").await;
    let base = create(&server, &alice, &new_id(), "v1").await;
    let push = format!("mutation($rows: [NotePushRow!]!) {{ pushNotes(rows: $rows) {{ {NOTE} }} }}");
    let mut v2 = base.clone();
    v2["title"] = json!("v2");
    let clean = server
        .data(&push, json!({ "rows": [{ "assumedMasterState": base, "newDocumentState": v2 }] }), Some(&alice))
        .await;
    assert_eq!(clean["pushNotes"], json!([]), "applied as sent: no conflicts");
    let mut stale = base.clone();
    stale["title"] = json!("stale edit");
    let conflicts = server
        .data(&push, json!({ "rows": [{ "assumedMasterState": base, "newDocumentState": stale }] }), Some(&alice))
        .await;
    let docs = conflicts["pushNotes"].as_array().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["title"], "v2", "the server's state comes back; nothing applied");
    let (all, _) = pull_all(&server, &alice, Value::Null, 10).await;
    assert_eq!(all[0]["title"], "v2");
    let list = server.data(CONFLICTS, json!({}), Some(&alice)).await;
    assert_eq!(list["syncConflicts"]["edges"][0]["node"]["strategy"], "SERVER_WINS");
    // A refused row on a note the viewer cannot see comes back as an empty tombstone.
    let bad = server
        .data(&push, json!({ "rows": [{ "newDocumentState": doc(&new_id(), &"x".repeat(600)) }] }), Some(&alice))
        .await;
    assert_eq!(bad["pushNotes"][0]["deleted"], true);
    server.stop().await;
}

#[tokio::test]
async fn keeping_both_versions_never_stores_a_text_past_its_bound() {
    let server = TestServer::start_with(1, |s| s.sync.max_body_chars = 20).await;
    let alice = server.token("alice").await;
    let base = create(&server, &alice, &new_id(), "t").await;
    assert_eq!(edit(&server, &alice, &base, |n| n["body"] = json!("first device")).await["status"], "SYNCED");
    let second = edit(&server, &alice, &base, |n| n["body"] = json!("second device")).await;
    assert_eq!(second["status"], "REJECTED", "{second}");
    assert_eq!(second["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(second["note"]["body"], "first device", "the server state comes back unchanged");
    server.stop().await;
}
