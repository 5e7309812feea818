//! Offline-first sync of notes over HTTP, WebSocket and SSE: pull pages and checkpoints,
//! tombstones and retention, per-row push results, idempotent re-push, permissions and
//! sharing, conflict strategies and records, the live stream, and concurrent writers
//! against a looping puller. The RxDB client suite is tests/sync.

mod basics;
mod concurrency;
mod conflicts;
mod live;

use serde_json::{Value, json};

use crate::common::TestServer;

pub const NOTE: &str = "id title body done position tags updatedAt deleted owner collaborators hlc serverRevision";

pub fn pull_query() -> String {
    format!(
        "query($cp: NoteCheckpointInput, $limit: Int!) {{ pullNotes(checkpoint: $cp, limit: $limit) {{ documents {{ {NOTE} }} checkpoint {{ id updatedAt seq floor }} }} }}"
    )
}

pub fn sync_query() -> String {
    format!(
        "mutation($rows: [NotePushRow!]!) {{ syncNotes(rows: $rows) {{ id status resolution note {{ {NOTE} }} \
         conflicts {{ id field strategy winner baseValue serverValue clientValue resolvedValue }} error {{ code message }} }} }}"
    )
}

/// A new note's document.
pub fn doc(id: &str, title: &str) -> Value {
    json!({ "id": id, "title": title, "body": "", "done": false, "position": 1.0, "tags": [], "deleted": false })
}

/// A fresh note id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `syncNotes` with `rows` as `token`; the per-row results.
pub async fn sync(server: &TestServer, token: &str, rows: Value) -> Vec<Value> {
    let data = server.data(&sync_query(), json!({ "rows": rows }), Some(token)).await;
    data["syncNotes"].as_array().expect("results").clone()
}

/// Creates a note; returns the server state.
pub async fn create(server: &TestServer, token: &str, id: &str, title: &str) -> Value {
    let results =
        sync(server, token, json!([{ "assumedMasterState": null, "newDocumentState": doc(id, title) }])).await;
    assert_eq!(results[0]["status"], "SYNCED", "{results:?}");
    results[0]["note"].clone()
}

/// Changes a note from the state `from` by `edit`; returns the row result.
pub async fn edit(server: &TestServer, token: &str, from: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut new = from.clone();
    edit(&mut new);
    let results = sync(server, token, json!([{ "assumedMasterState": from, "newDocumentState": new }])).await;
    results[0].clone()
}

/// One pull page.
pub async fn pull(server: &TestServer, token: &str, cp: &Value, limit: i64) -> Value {
    server.data(&pull_query(), json!({ "cp": cp, "limit": limit }), Some(token)).await["pullNotes"].clone()
}

/// Pulls until nothing is new; returns every document in order and the last checkpoint.
pub async fn pull_all(server: &TestServer, token: &str, mut cp: Value, limit: i64) -> (Vec<Value>, Value) {
    let mut docs = Vec::new();
    loop {
        let page = pull(server, token, &cp, limit).await;
        let got = page["documents"].as_array().expect("documents").clone();
        if !page["checkpoint"].is_null() {
            cp = page["checkpoint"].clone();
        }
        if got.is_empty() {
            return (docs, cp);
        }
        docs.extend(got);
    }
}

/// A user's node id.
pub async fn user_id(server: &TestServer, token: &str) -> String {
    server.data("{ viewer { id } }", json!({}), Some(token)).await["viewer"]["id"].as_str().expect("id").to_owned()
}
