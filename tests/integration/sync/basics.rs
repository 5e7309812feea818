//! Pull pages and checkpoints, tombstones, retention, per-row results, idempotent re-push,
//! permissions and sharing.

use serde_json::{Value, json};

use super::*;
use crate::common::{TestServer, code};

#[tokio::test]
async fn pull_pages_in_change_order_with_tombstones_and_echoes_the_checkpoint() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let ids: Vec<String> = (0..5).map(|_| new_id()).collect();
    let rows: Vec<Value> =
        ids.iter().enumerate().map(|(i, id)| json!({ "newDocumentState": doc(id, &format!("n{i}")) })).collect();
    let results = sync(&server, &alice, json!(rows)).await;
    assert!(results.iter().all(|r| r["status"] == "SYNCED"), "{results:?}");

    // Initial sync in pages of 2: 2 + 2 + 1, then the same checkpoint back.
    let first = pull(&server, &alice, &Value::Null, 2).await;
    let got: Vec<&str> = first["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(first["checkpoint"]["id"], ids[1].as_str());
    let (rest, cp) = pull_all(&server, &alice, first["checkpoint"].clone(), 2).await;
    assert_eq!(rest.len(), 3);
    let again = pull(&server, &alice, &cp, 10).await;
    assert_eq!(again["documents"], json!([]));
    assert_eq!(again["checkpoint"], cp, "nothing new: the same checkpoint back");
    assert!(pull(&server, &alice, &Value::Null, 10).await["documents"].as_array().unwrap().len() == 5);

    // A delete is a tombstone after the checkpoint; updatedAt is server time and moves on.
    let note = rest[2].clone();
    let result = edit(&server, &alice, &note, |n| n["deleted"] = json!(true)).await;
    assert_eq!(result["status"], "SYNCED");
    let page = pull(&server, &alice, &cp, 10).await;
    let docs = page["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["id"], note["id"]);
    assert_eq!(docs[0]["deleted"], true);
    assert!(docs[0]["updatedAt"].as_f64().unwrap() > note["updatedAt"].as_f64().unwrap());
    assert!(page["checkpoint"]["seq"].as_i64().unwrap() > cp["seq"].as_i64().unwrap());

    // Bad limits and checkpoints from nowhere are refused with codes.
    let body = server.gql(&pull_query(), json!({ "cp": null, "limit": 0 }), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let future = json!({ "id": "x", "updatedAt": 0.0, "seq": 1_000_000 });
    let body = server.gql(&pull_query(), json!({ "cp": future, "limit": 10 }), Some(&alice)).await;
    assert_eq!(code(&body), "RESYNC_REQUIRED");
    let body = server.gql(&pull_query(), json!({ "cp": null, "limit": 10 }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn a_checkpoint_without_seq_re_reads_from_its_time() {
    let server = TestServer::start(1).await;
    let alice = server.token("alice").await;
    let note = create(&server, &alice, &new_id(), "one").await;
    // RxDB's documented checkpoint shape is {id, updatedAt}: still never skips.
    let cp = json!({ "id": note["id"], "updatedAt": note["updatedAt"] });
    let page = pull(&server, &alice, &cp, 10).await;
    assert_eq!(page["documents"][0]["id"], note["id"], "re-sent, not skipped");
    assert!(page["checkpoint"]["seq"].as_i64().unwrap() >= 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_rows_are_rejected_with_codes_while_the_rest_apply() {
    let server = TestServer::start(3).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let bobs = create(&server, &bob, &new_id(), "bob's").await;
    let (a, b) = (new_id(), new_id());
    let long = "x".repeat(501);
    let mut stolen = bobs.clone();
    stolen["title"] = json!("mine now");
    let ahead = format!("{}/1", (chrono::Utc::now().timestamp() as u64 + 3600) << 32);
    let mut other = bobs.clone();
    other["id"] = json!(new_id());
    let mut skewed = doc(&new_id(), "from the future");
    skewed["hlc"] = json!(ahead);
    let rows = json!([
        { "newDocumentState": doc(&a, "first") },
        { "newDocumentState": doc("not-a-uuid", "bad id") },
        { "newDocumentState": doc(&new_id(), &long) },
        { "assumedMasterState": bobs, "newDocumentState": stolen },
        { "newDocumentState": skewed },
        { "assumedMasterState": other, "newDocumentState": doc(&new_id(), "ids differ") },
        { "newDocumentState": doc(&b, "last") },
    ]);
    let results = sync(&server, &alice, rows).await;
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["SYNCED", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "SYNCED"]);
    let codes: Vec<&str> = results.iter().map(|r| r["error"]["code"].as_str().unwrap_or("-")).collect();
    assert_eq!(
        codes,
        vec!["-", "BAD_USER_INPUT", "PAYLOAD_TOO_LARGE", "FORBIDDEN", "BAD_USER_INPUT", "BAD_USER_INPUT", "-"]
    );
    assert!(results[4]["error"]["message"].as_str().unwrap().contains("ahead"), "{}", results[4]);
    assert!(results[3]["note"].is_null(), "nothing of bob's note is shown to alice");

    let (docs, _) = pull_all(&server, &alice, Value::Null, 50).await;
    let titles: Vec<&str> = docs.iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, vec!["first", "last"]);
    let (bob_docs, _) = pull_all(&server, &bob, Value::Null, 50).await;
    assert_eq!(bob_docs[0]["title"], "bob's", "the refused row changed nothing");

    // Too many rows in one call: the whole call is refused before anything is applied.
    let many: Vec<Value> = (0..101).map(|_| json!({ "newDocumentState": doc(&new_id(), "x") })).collect();
    let body = server.gql(&sync_query(), json!({ "rows": many }), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(pull_all(&server, &alice, Value::Null, 200).await.0.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_repeated_push_is_synced_and_applied_once() {
    let server = TestServer::start(1).await;
    let alice = server.token("alice").await;
    let note = create(&server, &alice, &new_id(), "v1").await;
    let mut next = note.clone();
    next["title"] = json!("v2");
    let row = json!([{ "assumedMasterState": note, "newDocumentState": next }]);
    let first = sync(&server, &alice, row.clone()).await;
    assert_eq!(first[0]["status"], "SYNCED");
    let revision = first[0]["note"]["serverRevision"].as_i64().unwrap();
    let (_, cp) = pull_all(&server, &alice, Value::Null, 10).await;
    // The client lost the answer and pushes the same row again (several times).
    for _ in 0..3 {
        let again = sync(&server, &alice, row.clone()).await;
        assert_eq!(again[0]["status"], "SYNCED", "{again:?}");
        assert_eq!(again[0]["conflicts"], json!([]));
        assert_eq!(again[0]["note"]["serverRevision"].as_i64().unwrap(), revision, "not applied twice");
    }
    assert_eq!(pull(&server, &alice, &cp, 10).await["documents"], json!([]), "no new change");
    // Creations too.
    let id = new_id();
    let create_row = json!([{ "newDocumentState": doc(&id, "once") }]);
    assert_eq!(sync(&server, &alice, create_row.clone()).await[0]["status"], "SYNCED");
    assert_eq!(sync(&server, &alice, create_row).await[0]["status"], "SYNCED");
    let (docs, _) = pull_all(&server, &alice, Value::Null, 10).await;
    assert_eq!(docs.iter().filter(|d| d["id"] == id.as_str()).count(), 1);
    assert_eq!(docs.iter().find(|d| d["id"] == id.as_str()).unwrap()["serverRevision"], 1);
    server.stop().await;
}

const SHARE: &str =
    "mutation($id: String!, $u: ID!) { shareNote(id: $id, userId: $u) { id collaborators serverRevision } }";
const UNSHARE: &str = "mutation($id: String!, $u: ID!) { unshareNote(id: $id, userId: $u) { id collaborators } }";

#[tokio::test]
async fn sharing_gives_access_and_unsharing_reads_as_a_deletion() {
    let server = TestServer::start(3).await;
    let (alice, bob, carol) = (server.token("alice").await, server.token("bob").await, server.token("carol").await);
    let (bob_id, carol_id) = (user_id(&server, &bob).await, user_id(&server, &carol).await);
    let note = create(&server, &alice, &new_id(), "shared list").await;
    let id = note["id"].as_str().unwrap().to_owned();
    assert!(pull_all(&server, &bob, Value::Null, 10).await.0.is_empty(), "not shared yet");
    let body = server.gql("query($id: String!) { note(id: $id) { id } }", json!({ "id": id }), Some(&bob)).await;
    assert!(body["data"]["note"].is_null());

    // Only the owner shares.
    let body = server.gql(SHARE, json!({ "id": id, "u": carol_id }), Some(&bob)).await;
    assert_eq!(code(&body), "NOT_FOUND");
    let shared = server.data(SHARE, json!({ "id": id, "u": bob_id }), Some(&alice)).await;
    assert_eq!(shared["shareNote"]["collaborators"], json!([bob_id]));
    let body = server.gql(UNSHARE, json!({ "id": id, "u": bob_id }), Some(&bob)).await;
    assert_eq!(code(&body), "FORBIDDEN");

    // Bob pulls it and edits it; Alice gets Bob's edit.
    let (docs, bob_cp) = pull_all(&server, &bob, Value::Null, 10).await;
    assert_eq!(docs.len(), 1);
    let result = edit(&server, &bob, &docs[0], |n| n["done"] = json!(true)).await;
    assert_eq!(result["status"], "SYNCED", "{result}");
    let (alice_docs, _) = pull_all(&server, &alice, Value::Null, 10).await;
    assert_eq!(alice_docs.last().unwrap()["done"], true);
    let (_, bob_cp) = pull_all(&server, &bob, bob_cp, 10).await;

    // Unshared: Bob's next pull has it as an empty tombstone, and later edits never reach him.
    server.data(UNSHARE, json!({ "id": id, "u": bob_id }), Some(&alice)).await;
    let latest = pull_all(&server, &alice, Value::Null, 10).await.0.last().unwrap().clone();
    edit(&server, &alice, &latest, |n| n["title"] = json!("secret after unsharing")).await;
    let (docs, _) = pull_all(&server, &bob, bob_cp, 10).await;
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["id"], id.as_str());
    assert_eq!(docs[0]["deleted"], true);
    assert_eq!(docs[0]["title"], "", "no content after access ends");
    let result = edit(&server, &bob, &latest, |n| n["title"] = json!("bob again")).await;
    assert_eq!(result["status"], "REJECTED");
    assert_eq!(result["error"]["code"], "FORBIDDEN");
    server.stop().await;
}

#[tokio::test]
async fn a_checkpoint_older_than_tombstone_retention_must_resync() {
    let server = TestServer::start(1).await;
    let alice = server.token("alice").await;
    let keep = create(&server, &alice, &new_id(), "keep").await;
    let gone = create(&server, &alice, &new_id(), "gone").await;
    let (_, old_cp) = pull_all(&server, &alice, Value::Null, 1).await;
    let early_cp = pull(&server, &alice, &Value::Null, 1).await["checkpoint"].clone();
    edit(&server, &alice, &gone, |n| n["deleted"] = json!(true)).await;
    // Age the tombstone past retention, then sweep.
    let db = &server.app().db;
    let old = chrono::Utc::now().timestamp_millis() - 31 * 86_400_000;
    let backend = db.backend();
    use sea_orm::ConnectionTrait;
    for sql in [
        "UPDATE notes SET updated_at_ms = $1 WHERE deleted = $2",
        "UPDATE note_feed SET updated_at_ms = $1 WHERE note_id IN (SELECT id FROM notes WHERE deleted = $2)",
    ] {
        db.conn()
            .execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [old.into(), true.into()]))
            .await
            .unwrap();
    }
    let forgotten = mobile_bff::sync::retention::sweep(db, &server.app().settings.sync).await.unwrap();
    assert!(forgotten >= 2, "the feed row and the note: {forgotten}");
    // A client that had seen everything before the delete missed the tombstone: resync.
    let body = server.gql(&pull_query(), json!({ "cp": early_cp, "limit": 10 }), Some(&alice)).await;
    assert_eq!(code(&body), "RESYNC_REQUIRED", "{body}");
    let body = server.gql(&pull_query(), json!({ "cp": old_cp, "limit": 10 }), Some(&alice)).await;
    assert_eq!(code(&body), "RESYNC_REQUIRED");
    // From scratch works and holds only the live note.
    let (docs, _) = pull_all(&server, &alice, Value::Null, 10).await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["id"], keep["id"]);
    server.stop().await;
}
