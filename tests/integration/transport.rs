//! Mobile transport: persisted documents, trusted mode, HTTP caching (ETag/304), metrics.

use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

fn sha256(text: &str) -> String {
    mobile_bff::kernel::documents::sha256_hex(text)
}

fn apq(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn automatic_persisted_queries_round_trip_over_post_and_get() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let query = screen("HomeFeed");
    let hash = sha256(&query);

    // Hash only, unknown: the client must send the text.
    let (status, body) =
        server.post(&json!({ "extensions": apq(&hash), "variables": { "first": 2 } }), Some(&alice)).await;
    assert_eq!((status, code(&body)), (200, "PERSISTED_QUERY_NOT_FOUND"));
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    // Wrong hash with text: refused, nothing stored.
    let wrong = json!({ "query": query, "extensions": apq(&"0".repeat(64)) });
    let (_, body) = server.post(&wrong, Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");

    // Hash + text: verified, stored, executed.
    let register = json!({ "query": query, "extensions": apq(&hash), "variables": { "first": 2 } });
    let (status, body) = server.post(&register, Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["feed"]["edges"].as_array().map(Vec::len), Some(2));

    // Later: the hash alone, over POST and over GET, also as documentId.
    let (_, by_hash) =
        server.post(&json!({ "extensions": apq(&hash), "variables": { "first": 2 } }), Some(&alice)).await;
    assert_eq!(by_hash["data"], body["data"]);
    let url = format!("{}/graphql", server.base);
    let get = server
        .client
        .get(&url)
        .query(&[("extensions", apq(&hash).to_string()), ("variables", json!({ "first": 2 }).to_string())])
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 200);
    assert_eq!(get.json::<Value>().await.expect("JSON")["data"], body["data"]);
    let (_, by_id) = server
        .post(&json!({ "documentId": format!("sha256:{hash}"), "variables": { "first": 2 } }), Some(&alice))
        .await;
    assert_eq!(by_id["data"], body["data"]);

    // Persisted ids inside a batch.
    let batch =
        json!([{ "extensions": apq(&hash), "variables": { "first": 1 } }, { "query": "{ viewer { handle } }" }]);
    let (_, answers) = server.post(&batch, Some(&alice)).await;
    assert_eq!(answers[0]["data"]["feed"]["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(answers[1]["data"]["viewer"]["handle"], "alice");

    // Survives a restart: a new store over the same database finds it.
    let fresh = mobile_bff::kernel::documents::DocumentStore::new(
        server.app().db.clone(),
        None,
        server.app().settings.persisted.clone(),
    );
    assert!(fresh.lookup(&hash).await.expect("lookup").is_some());

    let metrics = server.metrics().await;
    assert!(metrics.contains("bff_persisted_documents_total{outcome=\"hit\"}"), "{metrics}");
    assert!(metrics.contains("bff_persisted_documents_total{outcome=\"miss\"} 1"));
    server.stop().await;
}

#[tokio::test]
async fn get_queries_get_etags_and_304_when_nothing_changed() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let url = format!("{}/graphql", server.base);
    let params = [("query", screen("HomeFeed")), ("variables", json!({ "first": 5 }).to_string())];
    let first = server.client.get(&url).query(&params).bearer_auth(&alice).send().await.expect("GET");
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "strong ETag: {etag}");
    let cache_control = first.headers()["cache-control"].to_str().expect("cc").to_owned();
    assert!(cache_control.starts_with("private"), "viewer data is private: {cache_control}");
    let vary: Vec<String> =
        first.headers().get_all("vary").iter().map(|v| v.to_str().unwrap_or("").to_ascii_lowercase()).collect();
    assert!(vary.iter().any(|v| v.contains("authorization")), "{vary:?}");

    // Warm open: same request with If-None-Match → 304, no body.
    let again = server
        .client
        .get(&url)
        .query(&params)
        .bearer_auth(&alice)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let vary_304: Vec<String> =
        again.headers().get_all("vary").iter().map(|v| v.to_str().unwrap_or("").to_ascii_lowercase()).collect();
    assert!(vary_304.iter().any(|v| v.contains("accept-encoding")), "304 repeats Vary: {vary_304:?}");
    assert!(again.bytes().await.expect("body").is_empty());

    // The same ETag whatever the negotiated encoding (computed before compression).
    let gz = reqwest::Client::builder().no_gzip().build().expect("client");
    let compressed =
        gz.get(&url).query(&params).bearer_auth(&alice).header("accept-encoding", "gzip").send().await.expect("GET");
    assert_eq!(compressed.headers()["etag"], etag.as_str());

    // Data changes → new ETag, full body.
    let create = "mutation { createPost(input: { body: \"news\" }) { post { id } } }";
    server.data(create, json!({}), Some(&alice)).await;
    let changed = server
        .client
        .get(&url)
        .query(&params)
        .bearer_auth(&alice)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());

    // Public data anonymously: public with the smallest max-age of its types (Post 30 s).
    let public = server
        .client
        .get(&url)
        .query(&[("query", "{ user(handle: \"bob\") { handle posts(first: 2) { edges { node { body } } } } }")])
        .send()
        .await
        .expect("GET");
    assert_eq!(public.headers()["cache-control"], "public, max-age=30");

    // Never for POST, errors or mutations.
    let post = server
        .client
        .post(&url)
        .json(&json!({ "query": "{ user(handle: \"bob\") { handle } }" }))
        .send()
        .await
        .expect("POST");
    assert!(post.headers().get("etag").is_none());
    assert_eq!(post.headers()["cache-control"], "no-store");
    let failing = server
        .client
        .get(&url)
        .query(&[("query", "{ feed(first: 100000) { edges { cursor } } }")])
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert!(failing.headers().get("etag").is_none());
    assert_eq!(failing.headers()["cache-control"], "no-store");

    let metrics = server.metrics().await;
    assert!(metrics.contains("status=\"304\""), "304s are counted");
    assert!(metrics.contains("bff_response_bytes_total{operation=\"HomeFeed\",stage=\"raw\"}"));
    assert!(metrics.contains("bff_response_bytes_total{operation=\"HomeFeed\",stage=\"wire\"}"));
    assert!(metrics.contains("bff_request_bytes_total{operation=\"anonymous\",stage=\"raw\"}"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn small_responses_are_not_compressed() {
    let server = TestServer::start(3).await;
    let raw = reqwest::Client::builder().no_gzip().no_brotli().no_zstd().build().expect("client");
    let response = raw
        .post(format!("{}/graphql", server.base))
        .header("accept-encoding", "br;q=1.0, gzip;q=0.5")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST");
    assert!(response.headers().get("content-encoding").is_none(), "below the threshold");
    server.stop().await;
}

#[tokio::test]
async fn trusted_mode_runs_only_manifest_operations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = screen("HomeFeed");
    let feed_hash = sha256(&feed);
    let apollo = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        { "id": feed_hash, "name": "HomeFeed", "type": "query", "body": feed } ] });
    std::fs::write(dir.path().join("apollo.json"), apollo.to_string()).expect("write");
    let relay = json!({ "a1b2c3d4e5": "query Me { viewer { handle } }" });
    std::fs::write(dir.path().join("relay.json"), relay.to_string()).expect("write");
    let manifests = dir.path().to_path_buf();
    let server = TestServer::start_with(10, move |s| {
        s.persisted.mode = mobile_bff::config::PersistedMode::Trusted;
        s.persisted.manifest_dir = Some(manifests);
    })
    .await;
    let alice = server.token("alice").await;

    let (_, body) =
        server.post(&json!({ "extensions": apq(&feed_hash), "variables": { "first": 1 } }), Some(&alice)).await;
    assert_eq!(body["data"]["feed"]["edges"].as_array().map(Vec::len), Some(1));
    let (_, body) = server.post(&json!({ "doc_id": "a1b2c3d4e5" }), Some(&alice)).await;
    assert_eq!(body["data"]["viewer"]["handle"], "alice", "Relay doc_id");
    // The manifest's text sent in full is recognised by its hash.
    let (_, body) = server.post(&json!({ "query": feed, "variables": { "first": 1 } }), Some(&alice)).await;
    assert!(body.get("errors").is_none(), "{body}");

    // Anything else is refused, including APQ registration and introspection.
    let other = "{ viewer { id } }";
    let (_, body) = server.post(&json!({ "query": other }), Some(&alice)).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_REQUIRED");
    let (_, body) = server.post(&json!({ "query": other, "extensions": apq(&sha256(other)) }), Some(&alice)).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_REQUIRED");
    let introspection = "{ __schema { types { name } } }";
    let (_, body) = server.post(&json!({ "query": introspection }), Some(&alice)).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_REQUIRED");
    assert!(!server.app().documents.introspection_allowed());
    server.stop().await;
}

#[tokio::test]
async fn documents_import_records_app_versions() {
    let server = TestServer::start(3).await;
    let query = "query Ping { __typename }";
    let manifest = json!({ sha256(query): query });
    let report = server.app().documents.import(manifest.to_string().as_bytes(), Some("3.1.0")).await.expect("import");
    assert_eq!(report.imported, 1);
    // A request from another app version is recorded too (in the background).
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-app-version", "3.2.0")
        .json(&json!({ "extensions": apq(&sha256(query)) }))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.json::<Value>().await.expect("JSON")["data"]["__typename"], "Query");
    let mut versions = Vec::new();
    for _ in 0..50 {
        versions = mobile_bff::kernel::documents::store::usage(server.app().db.conn(), &sha256(query))
            .await
            .expect("usage")
            .into_iter()
            .map(|u| u.app_version)
            .collect::<Vec<_>>();
        if versions.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(versions, vec!["3.1.0".to_owned(), "3.2.0".to_owned()]);
    server.stop().await;
}

/// Needs a Redis server: `.ci/run` runs it with `BFF_TEST_REDIS_URL=redis://127.0.0.1:6379`.
#[tokio::test]
#[ignore = "needs Redis: run with BFF_TEST_REDIS_URL=redis://127.0.0.1:6379 -- --ignored"]
async fn persisted_documents_are_shared_through_redis() {
    let url = std::env::var("BFF_TEST_REDIS_URL").expect("BFF_TEST_REDIS_URL must be set for this test");
    let redis_url = url.clone();
    let server =
        TestServer::start_with(1, move |s| s.redis_url = Some(mobile_bff::config::Secret::new(redis_url))).await;
    let query = format!("query Unique{} {{ __typename }}", uuid::Uuid::new_v4().simple());
    let hash = sha256(&query);
    let (_, body) = server.post(&json!({ "query": query, "extensions": apq(&hash) }), None).await;
    assert_eq!(body["data"]["__typename"], "Query");

    // Another replica (fresh memory cache) finds it in Redis even without the database row.
    use sea_orm::EntityTrait;
    mobile_bff::kernel::documents::persisted_document::Entity::delete_by_id(hash.clone())
        .exec(server.app().db.conn())
        .await
        .expect("delete row");
    let redis = mobile_bff::kernel::infra::redis::Redis::connect(&url).await.expect("redis");
    let replica = mobile_bff::kernel::documents::DocumentStore::new(
        server.app().db.clone(),
        Some(redis),
        server.app().settings.persisted.clone(),
    );
    let found = replica.lookup(&hash).await.expect("lookup").expect("found in redis");
    assert_eq!(&*found.query, query.as_str());
    let without_redis = mobile_bff::kernel::documents::DocumentStore::new(
        server.app().db.clone(),
        None,
        server.app().settings.persisted.clone(),
    );
    assert!(without_redis.lookup(&hash).await.expect("lookup").is_none(), "the row is really gone");
    server.stop().await;
}
