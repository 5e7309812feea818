//! The HTTP surface: GET, compression, request ids, health, metrics, JWKS, schema, CORS.

use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;
    let url = format!("{}/graphql", server.base);
    let response = server
        .client
        .get(&url)
        .query(&[("query", screen("HomeFeed")), ("variables", json!({ "first": 2 }).to_string())])
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["feed"]["edges"].as_array().map(Vec::len), Some(2));

    let response = server
        .client
        .get(&url)
        .query(&[("query", "mutation { createPost(input: { body: \"no\" }) { post { id } } }")])
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");

    let response = server.client.get(&url).send().await.expect("GET");
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_as_negotiated() {
    let server = TestServer::start(20).await;
    let alice = server.token("alice").await;
    // A client that does not decompress, to see the wire.
    let raw = reqwest::Client::builder().no_gzip().no_brotli().no_zstd().build().expect("client");
    let body = json!({ "query": screen("HomeFeed"), "variables": { "first": 20 } });
    let mut sizes = Vec::new();
    for encoding in ["br", "zstd", "gzip", "identity"] {
        let response = raw
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&alice)
            .header("accept-encoding", encoding)
            .json(&body)
            .send()
            .await
            .expect("request");
        let header = response.headers().get("content-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.expect("body").len();
        if encoding == "identity" {
            assert_eq!(header, None);
        } else {
            assert_eq!(header.as_deref(), Some(encoding));
        }
        sizes.push(bytes);
    }
    let identity = sizes[3];
    // Quality values are honoured: gzip preferred over br here.
    let response = raw
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&alice)
        .header("accept-encoding", "br;q=0.1, gzip;q=0.9, zstd;q=0")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert!(sizes[..3].iter().all(|s| *s * 2 < identity), "compressed sizes {sizes:?}");
    server.stop().await;
}

#[tokio::test]
async fn request_ids_health_metrics_and_client_info() {
    let server = TestServer::start(3).await;
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-request-id", "app-req-42")
        .header("x-platform", "iOS")
        .header("x-app-version", "3.2.1")
        .header("x-device-id", "8d3f8a8e-4a55-4c89-9d53-0a8b1e6c9f11")
        .header("x-timezone", "Europe/Paris")
        .json(&json!({ "query": "query Ping { __typename }", "operationName": "Ping" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "app-req-42");
    // A hostile request id is replaced, not echoed.
    let response = server
        .client
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "evil\" injected=1")
        .send()
        .await
        .expect("request");
    let id = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "generated id: {id}");
    assert_eq!(response.json::<Value>().await.expect("JSON")["status"], "ok");

    let ready = server.client.get(format!("{}/readyz", server.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    let alice = server.token("alice").await;
    server.data("{ viewer { handle } }", json!({}), Some(&alice)).await;
    let metrics = server.metrics().await;
    assert!(metrics.contains("bff_db_statements_total"));
    assert!(metrics.contains("bff_request_duration_seconds_bucket"));
    assert!(metrics.contains("bff_dataloader_batch_size_count{loader=\"users\"} 1"), "{metrics}");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("bff_requests_total") && l.contains("operation=\"Ping\""))
        .expect("request counted by operation");
    assert!(
        line.contains("platform=\"ios\"") && line.contains("app_version=\"3.2\"") && line.contains("status=\"200\""),
        "{line}"
    );

    let missing = server.client.get(format!("{}/no/such/route", server.base)).send().await.expect("404");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("JSON 404");
    assert_eq!(code(&body), "ROUTE_NOT_FOUND");
    let wrong_method = server.client.delete(format!("{}/graphql", server.base)).send().await.expect("405");
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.expect("JSON 405");
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    server.stop().await;
}

#[tokio::test]
async fn operation_labels_are_bounded() {
    let server = TestServer::start(1).await;
    for i in 0..260 {
        let query = format!("query Op{i} {{ __typename }}");
        server.data(&query, json!({}), None).await;
    }
    let metrics = server.metrics().await;
    let distinct =
        metrics.lines().filter(|l| l.starts_with("bff_requests_total") && l.contains("operation=\"Op")).count();
    assert!(distinct <= 200, "{distinct} operation labels");
    assert!(metrics.contains("operation=\"other\""));
    server.stop().await;
}

#[tokio::test]
async fn jwks_verifies_minted_tokens_and_schema_is_served() {
    let server = TestServer::start(1).await;
    let jwks: Value = server
        .client
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    let token = server.token("alice").await;
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).expect("jwk");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["mobile-bff"]);
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key"),
        &validation,
    )
    .expect("token verifies with the published key");
    assert_eq!(decoded.claims["iss"], "mobile-bff");

    let sdl = server
        .client
        .get(format!("{}/schema.graphql", server.base))
        .send()
        .await
        .expect("sdl")
        .text()
        .await
        .expect("text");
    assert_eq!(sdl, mobile_bff::schema::sdl());
    server.stop().await;
}

#[test]
fn checked_in_schema_matches_the_code() {
    let path = format!("{}/schema.graphql", env!("CARGO_MANIFEST_DIR"));
    let checked_in = std::fs::read_to_string(path).expect("schema.graphql");
    assert!(
        checked_in == mobile_bff::schema::sdl(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn cors_is_configurable() {
    let server = TestServer::start_with(1, |s| s.cors.allowed_origins = vec!["https://app.example.com".into()]).await;
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,x-app-version")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example.com");
    let other = server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

#[tokio::test]
async fn certificate_pins_are_published_from_the_configured_files() {
    use mobile_bff::kernel::infra::pins::{PinRole, PinSource};
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pins");
    let server = TestServer::start_with(0, move |s| {
        s.pins = vec![
            PinSource { file: fixtures.join("current.crt"), role: PinRole::Current, rotate_after: None },
            PinSource {
                file: fixtures.join("backup.pub.pem"),
                role: PinRole::Backup,
                rotate_after: "2027-06-01T00:00:00Z".parse().ok(),
            },
        ];
    })
    .await;
    let body: Value = server
        .client
        .get(format!("{}/.well-known/pins.json", server.base))
        .send()
        .await
        .expect("pins")
        .json()
        .await
        .expect("JSON");
    // Expected values computed by openssl (tests/fixtures/pins/README.md).
    assert_eq!(body["pins"][0]["sha256"], "8UtriOU3vOrmE8ox9a7PXre/uQqZOBUDYm/aG2RDOj0=");
    assert_eq!(body["pins"][0]["role"], "current");
    assert!(body["pins"][0]["notAfter"].as_str().is_some_and(|t| t.starts_with("2027-11-25T10:47:14")));
    assert_eq!(body["pins"][1]["sha256"], "0OulgNJb4LVQI4q/bhAGtZmHL+IandAE+brJyAxAvVM=");
    assert_eq!(body["pins"][1]["role"], "backup");
    let data = server.data("{ pins { sha256 role rotateAfter } }", json!({}), None).await;
    assert_eq!(data["pins"][1]["sha256"], body["pins"][1]["sha256"]);
    assert!(data["pins"][1]["rotateAfter"].as_str().is_some_and(|t| t.starts_with("2027-06-01")));
    server.stop().await;
}
