//! Profile and post-detail screens, follower lists, counts and global ids.

use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

async fn walk(server: &TestServer, token: &str, field: &str, handle: &str) -> Vec<String> {
    let query = format!(
        "query($handle: String!, $after: String) {{ user(handle: $handle) {{ {field}(first: 4, after: $after) {{ \
         edges {{ node {{ handle }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
    );
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let data = server.data(&query, json!({ "handle": handle, "after": after }), Some(token)).await;
        let conn = &data["user"][field];
        for edge in conn["edges"].as_array().expect("edges") {
            out.push(edge["node"]["handle"].as_str().expect("handle").to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn follow_lists_page_through_every_edge_once_and_match_counts() {
    let server = TestServer::start(30).await;
    let token = server.token("carol").await;
    let counts = server
        .data("{ user(handle: \"bob\") { followerCount followingCount postCount } }", json!({}), Some(&token))
        .await;
    for (field, count) in [("followers", "followerCount"), ("following", "followingCount")] {
        let handles = walk(&server, &token, field, "bob").await;
        let mut unique = handles.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), handles.len(), "{field}: no duplicates");
        assert_eq!(handles.len() as i64, counts["user"][count].as_i64().expect("count"), "{field} matches {count}");
    }
    server.stop().await;
}

#[tokio::test]
async fn profile_screen_shows_posts_and_follow_state() {
    let server = TestServer::start(30).await;
    let alice = server.token("alice").await;
    let data = server.data(&screen("Profile"), json!({ "handle": "@Bob" }), Some(&alice)).await;
    let user = &data["user"];
    assert_eq!(user["handle"], "bob");
    assert_eq!(user["viewerIsFollowing"], true);
    let posts = user["posts"]["edges"].as_array().expect("posts");
    assert!(!posts.is_empty());
    // Newest first.
    let times: Vec<&str> = posts.iter().map(|e| e["node"]["createdAt"].as_str().expect("time")).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    let anonymous = server.data(&screen("Profile"), json!({ "handle": "bob" }), None).await;
    assert_eq!(anonymous["user"]["viewerIsFollowing"], false);
    let missing = server.data(&screen("Profile"), json!({ "handle": "nobody_here" }), None).await;
    assert!(missing["user"].is_null());
    server.stop().await;
}

#[tokio::test]
async fn node_and_nodes_resolve_global_ids() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let feed = server.data(&screen("HomeFeed"), json!({ "first": 2 }), Some(&alice)).await;
    let post = &feed["feed"]["edges"][0]["node"];
    let author = &post["author"];
    let query =
        "query($ids: [ID!]!) { nodes(ids: $ids) { id __typename ... on Post { body } ... on User { handle } } }";
    let data = server.data(query, json!({ "ids": [post["id"], author["id"]] }), Some(&alice)).await;
    assert_eq!(data["nodes"][0]["__typename"], "Post");
    assert_eq!(data["nodes"][0]["body"], post["body"]);
    assert_eq!(data["nodes"][1]["__typename"], "User");
    assert_eq!(data["nodes"][1]["handle"], author["handle"]);

    let single = server.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": post["id"] }), None).await;
    assert_eq!(single["node"]["id"], post["id"]);

    // A well-formed id of a row that does not exist is null; a malformed one is an error.
    let missing = server.data("{ node(id: \"UG9zdDo5OTk5OTk5\") { id } }", json!({}), None).await;
    assert!(missing["node"].is_null());
    let body = server.gql("{ node(id: \"not-an-id\") { id } }", json!({}), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let body = server.gql("query($id: ID!) { post(id: $id) { id } }", json!({ "id": author["id"] }), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a User id is not a Post id");

    let too_many: Vec<Value> = (0..101).map(|_| post["id"].clone()).collect();
    let body = server.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": too_many }), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    server.stop().await;
}

#[tokio::test]
async fn nested_lists_under_every_user_are_batched() {
    let server = TestServer::start(40).await;
    let alice = server.token("alice").await;
    let query = "query($n: Int) { user(handle: \"bob\") { followers(first: $n) { edges { node { handle \
        followerCount posts(first: 2) { edges { node { body commentCount author { handle } } } pageInfo { hasNextPage } } \
        following(first: 2) { edges { node { handle } } } } } } } }";
    let mut counts = Vec::new();
    for n in [2, 10, 30] {
        let before = server.statements().await;
        let data = server.data(query, json!({ "n": n }), Some(&alice)).await;
        counts.push(server.statements().await - before);
        let edges = data["user"]["followers"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), n);
        for edge in edges {
            let node = &edge["node"];
            for post in node["posts"]["edges"].as_array().expect("posts") {
                assert_eq!(post["node"]["author"]["handle"], node["handle"], "posts belong to their user");
            }
            assert!(node["following"]["edges"].as_array().expect("following").len() <= 2);
        }
    }
    // One statement per level of the query (user, follower edges, users, user stats, posts,
    // following edges, users, post stats) whatever the list size; a level can cost nothing when
    // every user it needs was already loaded earlier in the same operation.
    assert!(counts.iter().all(|c| *c <= 8), "statements per list size 2/10/30: {counts:?}");

    // The batched first page equals the per-user query a profile screen would run.
    let data = server.data(query, json!({ "n": 3 }), Some(&alice)).await;
    let first = &data["user"]["followers"]["edges"][0]["node"];
    let handle = first["handle"].as_str().expect("handle");
    let profile = server
        .data(
            "query($h: String!) { user(handle: $h) { posts(first: 2) { edges { node { body } } } } }",
            json!({ "h": handle }),
            Some(&alice),
        )
        .await;
    let bodies = |v: &Value| -> Vec<Value> {
        v["posts"]["edges"].as_array().expect("edges").iter().map(|e| e["node"]["body"].clone()).collect()
    };
    assert_eq!(bodies(first), bodies(&profile["user"]));
    server.stop().await;
}
