//! Mutations and their idempotency keys, including concurrent retries.

use serde_json::{Value, json};

use crate::common::{TestServer, code};

const CREATE: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id body links \
    media { url width height blurhash aspectRatio } author { handle postCount } } } }";

async fn post_count(server: &TestServer, token: &str) -> i64 {
    let data = server.data("{ viewer { postCount } }", json!({}), Some(token)).await;
    data["viewer"]["postCount"].as_i64().expect("count")
}

#[tokio::test]
async fn create_post_with_links_and_media_then_delete_it() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    // Media are the viewer's uploads (a 300 × 150 PNG here); the client's sizes are ignored.
    let upload = crate::media::upload(&server, &alice, &crate::media::fixtures::png(), "image/png").await;
    crate::media::settled(&server, &alice, &upload).await;
    let input = json!({
        "body": "  Hello from the tunnel  ",
        "links": ["https://example.com/a"],
        "media": [{ "uploadId": upload, "storageKey": "uploads/1/a.jpg", "mimeType": "image/jpeg", "width": 1080,
                    "height": 1350, "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj" }]
    });
    let data = server.data(CREATE, json!({ "input": input }), Some(&alice)).await;
    let post = &data["createPost"]["post"];
    assert_eq!(post["body"], "Hello from the tunnel");
    assert_eq!(post["links"], json!(["https://example.com/a"]));
    let url = post["media"][0]["url"].as_str().expect("url");
    assert!(url.starts_with("/media/") && url.ends_with("/300"), "the original's width, negotiated: {url}");
    assert_eq!(post["media"][0]["aspectRatio"], 2.0);
    let served = server.client.get(format!("{}{url}", server.base)).send().await.expect("variant");
    assert_eq!(served.status(), 200, "the URL exists");

    let bob = server.token("bob").await;
    let delete = "mutation($id: ID!) { deletePost(input: { id: $id }) { deletedPostId } }";
    let body = server.gql(delete, json!({ "id": post["id"] }), Some(&bob)).await;
    assert_eq!(code(&body), "FORBIDDEN", "only the author deletes");

    let data = server.data(delete, json!({ "id": post["id"] }), Some(&alice)).await;
    assert_eq!(data["deletePost"]["deletedPostId"], post["id"]);
    let gone = server.data("query($id: ID!) { post(id: $id) { id } }", json!({ "id": post["id"] }), None).await;
    assert!(gone["post"].is_null());
    let body = server.gql(delete, json!({ "id": post["id"] }), Some(&alice)).await;
    assert_eq!(code(&body), "NOT_FOUND");
    server.stop().await;
}

#[tokio::test]
async fn invalid_post_input_is_refused_with_bad_user_input() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let before = post_count(&server, &alice).await;
    for input in [
        json!({ "body": "   " }),
        json!({ "body": "x".repeat(5001) }),
        json!({ "body": "ok", "links": ["javascript:alert(1)"] }),
        json!({ "body": "ok", "media": [{ "storageKey": "../../etc/passwd", "mimeType": "image/jpeg",
                 "width": 1, "height": 1, "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj" }] }),
        json!({ "body": "ok", "idempotencyKey": "no" }),
    ] {
        let body = server.gql(CREATE, json!({ "input": input }), Some(&alice)).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = server.gql(CREATE, json!({ "input": { "body": "hi" } }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(post_count(&server, &alice).await, before, "nothing was written");
    server.stop().await;
}

#[tokio::test]
async fn comments_reactions_and_follows_update_counts_and_viewer_state() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let created = server.data(CREATE, json!({ "input": { "body": "react to me" } }), Some(&alice)).await;
    let post_id = created["createPost"]["post"]["id"].clone();

    let comment = "mutation($id: ID!, $body: String!) { addComment(input: { postId: $id, body: $body }) { \
        comment { body author { handle } post { id } } post { commentCount comments(first: 3) { edges { node { body } } } } } }";
    let data = server.data(comment, json!({ "id": post_id, "body": "first!" }), Some(&alice)).await;
    assert_eq!(data["addComment"]["comment"]["author"]["handle"], "alice");
    assert_eq!(data["addComment"]["comment"]["post"]["id"], post_id);
    assert_eq!(data["addComment"]["post"]["commentCount"], 1);
    assert_eq!(data["addComment"]["post"]["comments"]["edges"][0]["node"]["body"], "first!");

    let react = "mutation($id: ID!, $kind: ReactionKind!) { react(input: { postId: $id, kind: $kind }) { post { reactionCount viewerReaction } } }";
    let data = server.data(react, json!({ "id": post_id, "kind": "LOVE" }), Some(&alice)).await;
    assert_eq!(data["react"]["post"], json!({ "reactionCount": 1, "viewerReaction": "LOVE" }));
    let data = server.data(react, json!({ "id": post_id, "kind": "WOW" }), Some(&alice)).await;
    assert_eq!(data["react"]["post"], json!({ "reactionCount": 1, "viewerReaction": "WOW" }), "a reaction is replaced");
    let bob = server.token("bob").await;
    server.data(react, json!({ "id": post_id, "kind": "LIKE" }), Some(&bob)).await;
    let unreact = "mutation($id: ID!) { unreact(input: { postId: $id }) { post { reactionCount viewerReaction } } }";
    let data = server.data(unreact, json!({ "id": post_id }), Some(&alice)).await;
    assert_eq!(data["unreact"]["post"], json!({ "reactionCount": 1, "viewerReaction": null }));

    // With 10 demo users, alice follows everyone.
    let target =
        server.data("{ user(handle: \"judy\") { id followerCount viewerIsFollowing } }", json!({}), Some(&alice)).await;
    let judy = target["user"].clone();
    let followers = judy["followerCount"].as_i64().expect("n");
    assert_eq!(judy["viewerIsFollowing"], true);
    let unfollow =
        "mutation($id: ID!) { unfollow(input: { userId: $id }) { user { followerCount viewerIsFollowing } } }";
    let data = server.data(unfollow, json!({ "id": judy["id"] }), Some(&alice)).await;
    assert_eq!(data["unfollow"]["user"], json!({ "followerCount": followers - 1, "viewerIsFollowing": false }));
    let follow = "mutation($id: ID!) { follow(input: { userId: $id }) { user { followerCount viewerIsFollowing } viewer { followingCount } } }";
    let data = server.data(follow, json!({ "id": judy["id"] }), Some(&alice)).await;
    assert_eq!(data["follow"]["user"], json!({ "followerCount": followers, "viewerIsFollowing": true }));
    let again = server.data(follow, json!({ "id": judy["id"] }), Some(&alice)).await;
    assert_eq!(again["follow"]["user"]["followerCount"], followers, "following twice is one edge");

    let me = server.data("{ viewer { id } }", json!({}), Some(&alice)).await;
    let body = server.gql(follow, json!({ "id": me["viewer"]["id"] }), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "no self-follow");
    server.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_result_without_a_second_effect() {
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;
    let before = post_count(&server, &alice).await;
    let input = json!({ "body": "only once", "idempotencyKey": "6c0e2f4a-1b7d-4c1e-9a55-0f6b1e2d3c4b" });
    let first = server.data(CREATE, json!({ "input": input }), Some(&alice)).await;
    let retry = server.data(CREATE, json!({ "input": input }), Some(&alice)).await;
    assert_eq!(first["createPost"]["post"]["id"], retry["createPost"]["post"]["id"]);
    assert_eq!(post_count(&server, &alice).await, before + 1);

    // The same key with a different input is a conflict, not a silent replay.
    let other = json!({ "body": "something else", "idempotencyKey": "6c0e2f4a-1b7d-4c1e-9a55-0f6b1e2d3c4b" });
    let body = server.gql(CREATE, json!({ "input": other }), Some(&alice)).await;
    assert_eq!(code(&body), "CONFLICT");

    // Keys are per user: bob may use the same key.
    let bob = server.token("bob").await;
    let bobs = server.data(CREATE, json!({ "input": input }), Some(&bob)).await;
    assert_ne!(bobs["createPost"]["post"]["id"], first["createPost"]["post"]["id"]);

    // A comment retried with its key is not duplicated.
    let comment = "mutation($id: ID!, $key: String) { addComment(input: { postId: $id, body: \"hi\", idempotencyKey: $key }) { \
        comment { id } post { commentCount } } }";
    let vars = json!({ "id": first["createPost"]["post"]["id"], "key": "comment-key-0001" });
    let a = server.data(comment, vars.clone(), Some(&alice)).await;
    let b = server.data(comment, vars, Some(&alice)).await;
    assert_eq!(a["addComment"]["comment"]["id"], b["addComment"]["comment"]["id"]);
    assert_eq!(b["addComment"]["post"]["commentCount"], 1);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_post() {
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;
    let before = post_count(&server, &alice).await;
    let input = json!({ "body": "flaky network", "idempotencyKey": "retry-storm-000000001" });
    let body = json!({ "query": CREATE, "variables": { "input": input } });
    let attempts = (0..12).map(|_| server.post(&body, Some(&alice)));
    let results: Vec<(u16, Value)> = futures_util::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        ids.push(body["data"]["createPost"]["post"]["id"].clone());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "every retry got the first result: {ids:?}");
    assert_eq!(post_count(&server, &alice).await, before + 1, "exactly one post was created");
    server.stop().await;
}

#[tokio::test]
async fn expired_idempotency_keys_are_forgotten() {
    // Retention 0: a key expires as soon as it is written, so a retry is a new request.
    let server = TestServer::start_with(3, |s| s.idempotency.retention_seconds = 0).await;
    let alice = server.token("alice").await;
    let input = json!({ "body": "again", "idempotencyKey": "expiring-key-0001" });
    let first = server.data(CREATE, json!({ "input": input }), Some(&alice)).await;
    let second = server.data(CREATE, json!({ "input": input }), Some(&alice)).await;
    assert_ne!(first["createPost"]["post"]["id"], second["createPost"]["post"]["id"]);
    server.stop().await;
}
