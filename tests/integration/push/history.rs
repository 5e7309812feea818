//! The in-app notification history: newest first with cursors, unread count, mark read.

use serde_json::json;

use super::{alert, sign_in};
use crate::common::{TestServer, code};

const HISTORY: &str = "query($after: String) { unreadNotificationCount notifications(first: 2, after: $after) {
    edges { node { id title category priority readAt } } pageInfo { hasNextPage endCursor } } }";

#[tokio::test]
async fn history_pages_newest_first_and_counts_unread() {
    let server = TestServer::start_with(0, |s| s.jobs.workers = false).await;
    let me = sign_in(&server, "hal", "bbbbbbbb-0000-4000-8000-000000000001", "IOS").await;
    // Recorded even with no push token; silent pushes are not part of the history.
    for title in ["one", "two", "three"] {
        mobile_bff::push::send::enqueue(server.app(), alert(&server, "hal", title).await).await.expect("send");
    }
    let mut silent = alert(&server, "hal", "").await;
    silent.silent = true;
    mobile_bff::push::send::enqueue(server.app(), silent).await.expect("send");

    let first = server.data(HISTORY, json!({}), Some(&me.access)).await;
    assert_eq!(first["unreadNotificationCount"], 3);
    let titles: Vec<&str> = first["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["title"].as_str().expect("t"))
        .collect();
    assert_eq!(titles, vec!["three", "two"]);
    assert_eq!(first["notifications"]["edges"][0]["node"]["category"], "SYSTEM");
    assert_eq!(first["notifications"]["pageInfo"]["hasNextPage"], true);
    let after = first["notifications"]["pageInfo"]["endCursor"].clone();
    let second = server.data(HISTORY, json!({ "after": after }), Some(&me.access)).await;
    assert_eq!(second["notifications"]["edges"][0]["node"]["title"], "one");
    assert_eq!(second["notifications"]["pageInfo"]["hasNextPage"], false);

    let id = first["notifications"]["edges"][0]["node"]["id"].clone();
    let mark = "mutation($id: ID!, $key: String) { markNotificationRead(id: $id, idempotencyKey: $key) }";
    let left = server.data(mark, json!({ "id": id, "key": "mark-read-0001" }), Some(&me.access)).await;
    assert_eq!(left["markNotificationRead"], 2);
    let again = server.data(mark, json!({ "id": id, "key": "mark-read-0001" }), Some(&me.access)).await;
    assert_eq!(again["markNotificationRead"], 2);
    let wrong = server.gql(mark, json!({ "id": me.device_id }), Some(&me.access)).await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let all = server.data("mutation { markAllNotificationsRead }", json!({}), Some(&me.access)).await;
    assert_eq!(all["markAllNotificationsRead"], 0);
    // Another user sees none of it.
    let other = sign_in(&server, "ivy", "bbbbbbbb-0000-4000-8000-000000000002", "IOS").await;
    let theirs = server.data(HISTORY, json!({}), Some(&other.access)).await;
    assert_eq!(theirs["unreadNotificationCount"], 0);
    assert_eq!(theirs["notifications"]["edges"], json!([]));
    server.stop().await;
}
