//! The home-feed screen: constant SQL statements per page size, stable keyset cursors.

use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

#[tokio::test]
async fn feed_screen_costs_the_same_statements_at_every_page_size() {
    let server = TestServer::start(120).await;
    let token = server.token("alice").await;
    let query = screen("HomeFeed");
    let mut counts = Vec::new();
    for first in [1, 20, 100] {
        let before = server.statements().await;
        let data = server.data(&query, json!({ "first": first }), Some(&token)).await;
        let after = server.statements().await;
        let edges = data["feed"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), first, "page of {first}");
        // Every part of the screen is really there.
        let node = &edges[0]["node"];
        assert!(node["author"]["handle"].is_string());
        assert!(node["reactionCount"].is_i64() && node["commentCount"].is_i64());
        assert!(data["viewer"]["handle"] == "alice");
        counts.push(after - before);
    }
    assert_eq!(counts[0], counts[1], "statements at first=1 vs 20: {counts:?}");
    assert_eq!(counts[1], counts[2], "statements at first=20 vs 100: {counts:?}");
    assert!(counts[0] <= 5, "the feed screen takes at most 5 statements, took {}", counts[0]);
    server.stop().await;
}

#[tokio::test]
async fn feed_has_top_comments_and_viewer_reaction_consistent_with_detail() {
    let server = TestServer::start(40).await;
    let token = server.token("alice").await;
    let data = server.data(&screen("HomeFeed"), json!({ "first": 20 }), Some(&token)).await;
    for edge in data["feed"]["edges"].as_array().expect("edges") {
        let node = &edge["node"];
        let preview = node["comments"]["edges"].as_array().expect("comments");
        assert!(preview.len() <= 3);
        let total = node["commentCount"].as_i64().expect("count");
        assert_eq!(preview.len() as i64, total.min(3), "preview size follows the count");
        // The detail screen shows the same newest comments first.
        let detail = server.data(&screen("PostDetail"), json!({ "id": node["id"], "first": 3 }), Some(&token)).await;
        let detail_ids: Vec<&Value> =
            detail["post"]["comments"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]["id"]).collect();
        let preview_ids: Vec<&Value> = preview.iter().map(|e| &e["node"]["id"]).collect();
        assert_eq!(detail_ids, preview_ids);
        assert_eq!(detail["post"]["viewerReaction"], node["viewerReaction"]);
    }
    server.stop().await;
}

fn ids(page: &Value) -> Vec<String> {
    page["feed"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

const FEED_PAGE: &str = "query($first: Int, $after: String) { feed(first: $first, after: $after) { \
    edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor hasPreviousPage } } }";

#[tokio::test]
async fn feed_cursors_stay_stable_when_new_posts_arrive_mid_scroll() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await; // alice follows everyone in a 10-user demo

    let all = server.data(FEED_PAGE, json!({ "first": 100 }), Some(&alice)).await;
    let everything = ids(&all);
    assert!(everything.len() > 15 && everything.len() < 100, "a feed to scroll: {}", everything.len());

    let page1 = server.data(FEED_PAGE, json!({ "first": 5 }), Some(&alice)).await;
    assert_eq!(ids(&page1), everything[..5]);
    let cursor = page1["feed"]["pageInfo"]["endCursor"].as_str().expect("cursor").to_owned();
    assert_eq!(page1["feed"]["pageInfo"]["hasNextPage"], true);

    // Two new posts arrive while the user is looking at page 1.
    let create = "mutation($body: String!) { createPost(input: { body: $body }) { post { id } } }";
    let new_bob = server.data(create, json!({ "body": "fresh from bob" }), Some(&bob)).await;
    let new_alice = server.data(create, json!({ "body": "fresh from alice" }), Some(&alice)).await;

    let page2 = server.data(FEED_PAGE, json!({ "first": 5, "after": cursor }), Some(&alice)).await;
    assert_eq!(ids(&page2), everything[5..10], "page 2 continues exactly where page 1 ended");
    assert_eq!(page2["feed"]["pageInfo"]["hasPreviousPage"], true);

    // Pull-to-refresh shows the new posts on top.
    let refreshed = ids(&server.data(FEED_PAGE, json!({ "first": 3 }), Some(&alice)).await);
    assert_eq!(refreshed[0], new_alice["createPost"]["post"]["id"].as_str().expect("id"));
    assert_eq!(refreshed[1], new_bob["createPost"]["post"]["id"].as_str().expect("id"));
    assert_eq!(refreshed[2], everything[0]);

    // Walking the whole feed with cursors visits every post exactly once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = server.data(FEED_PAGE, json!({ "first": 7, "after": after }), Some(&alice)).await;
        seen.extend(ids(&page));
        if page["feed"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["feed"]["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), everything.len() + 2);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    server.stop().await;
}

#[tokio::test]
async fn feed_requires_a_viewer_and_rejects_foreign_cursors() {
    let server = TestServer::start(10).await;
    let body = server.gql(FEED_PAGE, json!({ "first": 2 }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body["data"].is_null());

    let alice = server.token("alice").await;
    let followers = server
        .data("{ user(handle: \"alice\") { followers(first: 1) { pageInfo { endCursor } } } }", json!({}), Some(&alice))
        .await;
    let foreign = followers["user"]["followers"]["pageInfo"]["endCursor"].as_str().expect("cursor");
    let body = server.gql(FEED_PAGE, json!({ "first": 2, "after": foreign }), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    server.stop().await;
}

#[tokio::test]
async fn responses_follow_selection_order_and_are_byte_stable() {
    let server = TestServer::start(30).await;
    let alice = server.token("alice").await;
    let body = json!({ "query": screen("HomeFeed"), "variables": { "first": 20 } });
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let text = server
            .client
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&alice)
            .json(&body)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text");
        bodies.push(text);
    }
    assert!(bodies[0].starts_with(r#"{"data":{"viewer":{"id":"#), "{}", &bodies[0][..80]);
    assert!(bodies[0].contains(r#""feed":{"edges":[{"cursor":"#));
    assert!(bodies[0].contains(r#""node":{"id":"#) && bodies[0].contains(r#"}],"pageInfo":{"hasNextPage":"#));
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    server.stop().await;
}
