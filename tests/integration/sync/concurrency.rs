//! Many concurrent writers against one owner (directly and through collaborators) while a
//! reader pulls in a loop: the reader's final state equals the database — no change skipped
//! by a transaction that committed after a later one. Meaningful on PostgreSQL
//! (`BFF_TEST_DATABASE_URL`), where writers really run concurrently; on SQLite it checks the
//! same property under the single writer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{FromQueryResult, Statement};
use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;

const WRITERS: usize = 8;
const PUSHES: usize = 30;
const NOTES: usize = 12;

#[derive(Debug, PartialEq, FromQueryResult)]
struct Stored {
    id: String,
    title: String,
    updated_at_ms: i64,
    revision: i64,
}

#[tokio::test]
async fn concurrent_writers_never_make_a_looping_puller_skip_a_change() {
    let server = Arc::new(TestServer::start(2).await);
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    let bob_id = user_id(&server, &bob).await;
    let mut ids = Vec::new();
    for i in 0..NOTES {
        let note = create(&server, &alice, &new_id(), &format!("note {i}")).await;
        let id = note["id"].as_str().unwrap().to_owned();
        if i % 2 == 0 {
            server
                .data(
                    "mutation($id: String!, $u: ID!) { shareNote(id: $id, userId: $u) { id } }",
                    json!({ "id": id, "u": bob_id }),
                    Some(&alice),
                )
                .await;
        }
        ids.push(id);
    }
    let ids = Arc::new(ids);
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (server, alice, done) = (server.clone(), alice.clone(), done.clone());
        tokio::spawn(async move {
            let mut state: BTreeMap<String, Value> = BTreeMap::new();
            let mut cp = Value::Null;
            let mut pulls = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = pull(&server, &alice, &cp, 7).await;
                pulls += 1;
                let docs = page["documents"].as_array().unwrap().clone();
                if !page["checkpoint"].is_null() {
                    cp = page["checkpoint"].clone();
                }
                for doc in &docs {
                    state.insert(doc["id"].as_str().unwrap().to_owned(), doc.clone());
                }
                // Only a pull that started after every writer finished and found nothing ends it.
                if finished && docs.is_empty() {
                    return (state, pulls);
                }
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (server, ids) = (server.clone(), ids.clone());
        let token = if w % 2 == 0 { alice.clone() } else { bob.clone() };
        writers.push(tokio::spawn(async move {
            let mut applied = 0;
            for i in 0..PUSHES {
                // Bob only edits the notes shared with him (even indexes).
                let pick = (w * 7 + i * 5) % NOTES;
                let pick = if w % 2 == 1 { pick - pick % 2 } else { pick };
                let mut document = doc(&ids[pick], &format!("w{w} #{i}"));
                document["body"] = json!(format!("by {w}"));
                let rows = json!([{ "assumedMasterState": null, "newDocumentState": document }]);
                let results = sync(&server, &token, rows).await;
                assert_ne!(results[0]["status"], "REJECTED", "{results:?}");
                applied += 1;
            }
            applied
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    assert_eq!(total, WRITERS * PUSHES);
    done.store(true, Ordering::SeqCst);
    let (state, pulls) = reader.await.unwrap();
    assert!(pulls > 2, "the reader pulled while writers wrote ({pulls} pulls)");

    // The database, read directly.
    let db = &server.app().db;
    let stmt = Statement::from_sql_and_values(
        db.backend(),
        "SELECT id, title, updated_at_ms, revision FROM notes ORDER BY id",
        [],
    );
    let stored = Stored::find_by_statement(stmt).all(db.conn()).await.unwrap();
    assert_eq!(stored.len(), NOTES);
    let seen: Vec<Stored> = state
        .values()
        .map(|d| Stored {
            id: d["id"].as_str().unwrap().to_owned(),
            title: d["title"].as_str().unwrap().to_owned(),
            updated_at_ms: d["updatedAt"].as_f64().unwrap() as i64,
            revision: d["serverRevision"].as_i64().unwrap(),
        })
        .collect();
    assert_eq!(seen, stored, "the reader's final state is the database's");
    let revisions: i64 = stored.iter().map(|s| s.revision).sum();
    assert!(revisions > NOTES as i64 * 2, "the writers' pushes were applied ({revisions})");
    // Bob's view of the shared notes converged too.
    let (bob_docs, _) = pull_all(&server, &bob, Value::Null, 100).await;
    for doc in bob_docs {
        let row = stored.iter().find(|s| s.id == doc["id"].as_str().unwrap()).unwrap();
        assert_eq!(doc["title"], row.title.as_str());
    }
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}
