//! Bad input gets a JSON error with a stable code, and the server keeps serving.

use std::io::Write;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mobile_bff::auth::keys::{AccessClaims, GENERATED_KEY_FILE};
use serde_json::{Value, json};

use crate::common::{TestServer, code};

async fn raw(server: &TestServer, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(format!("{}/graphql", server.base)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.contains("json"), "error responses are JSON, got {content_type:?}");
    (status, response.json().await.expect("JSON"))
}

async fn still_serving(server: &TestServer) {
    let data = server.data("{ __typename }", json!({}), None).await;
    assert_eq!(data["__typename"], "Query");
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = TestServer::start(3).await;
    let (status, body) = raw(&server, b"{\"query\": ".to_vec(), &[JSON]).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"));
    let (status, body) = raw(&server, b"[]".to_vec(), &[JSON]).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"));
    let (status, body) =
        raw(&server, b"{\"query\":\"{ __typename }\"}".to_vec(), &[("content-type", "text/plain")]).await;
    assert_eq!((status, code(&body)), (415, "UNSUPPORTED_MEDIA_TYPE"));
    let (status, body) =
        raw(&server, b"{\"query\":\"{ __typename }\"}".to_vec(), &[JSON, ("accept", "text/html")]).await;
    assert_eq!((status, code(&body)), (406, "NOT_ACCEPTABLE"));
    let (status, body) = raw(&server, b"{\"query\":\"{ viewer { \"}".to_vec(), &[JSON]).await;
    assert_eq!((status, code(&body)), (200, "GRAPHQL_PARSE_FAILED"));
    let (status, body) = raw(&server, b"{\"query\":\"{ nosuchfield }\"}".to_vec(), &[JSON]).await;
    assert_eq!((status, code(&body)), (200, "GRAPHQL_VALIDATION_FAILED"));
    assert!(body.get("data").is_none(), "a request error has no data entry");
    // With the GraphQL response media type, request errors are 400.
    let accept = ("accept", "application/graphql-response+json");
    let (status, body) = raw(&server, b"{\"query\":\"{ nosuchfield }\"}".to_vec(), &[JSON, accept]).await;
    assert_eq!((status, code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"));
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_decompression_bombs_are_refused() {
    let server = TestServer::start(3).await;
    let mut big = b"{\"query\":\"{ __typename }\",\"extensions\":{\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    big.extend(b"\"}}");
    let (status, body) = raw(&server, big, &[JSON]).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"));

    // A small gzip body that inflates to 50 MB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"{\"query\":\"{ __typename }\",\"x\":\"").expect("gzip");
    encoder.write_all(&vec![b'a'; 50 * 1024 * 1024]).expect("gzip");
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 200 * 1024);
    let (status, body) = raw(&server, bomb, &[JSON, ("content-encoding", "gzip")]).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"));

    // A compressed, honest body is accepted.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"{\"query\":\"{ __typename }\"}").expect("gzip");
    let (status, body) = raw(&server, encoder.finish().expect("gzip"), &[JSON, ("content-encoding", "gzip")]).await;
    assert_eq!((status, &body["data"]["__typename"]), (200, &json!("Query")));

    let (status, body) = raw(&server, b"xx".to_vec(), &[JSON, ("content-encoding", "snappy")]).await;
    assert_eq!((status, code(&body)), (415, "UNSUPPORTED_MEDIA_TYPE"));
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn query_limits_are_enforced() {
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;

    let mut deep = String::from("{ viewer { ");
    for _ in 0..10 {
        deep.push_str("following(first: 1) { edges { node { ");
    }
    deep.push_str("handle");
    deep.push_str(&" } } }".repeat(10));
    deep.push_str(" } }");
    let body = server.gql(&deep, json!({}), Some(&alice)).await;
    assert_eq!(code(&body), "QUERY_TOO_DEEP");

    let aliases: String = (0..1000).map(|i| format!("a{i}: __typename ")).collect();
    let body = server.gql(&format!("{{ {aliases} }}"), json!({}), None).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");

    let expensive = "{ feed(first: 100) { edges { node { comments(first: 100) { edges { node { author { \
        followers(first: 100) { edges { node { handle } } } } } } } } } } }";
    let body = server.gql(expensive, json!({}), Some(&alice)).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");

    let batch: Vec<Value> = (0..500).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, body) = server.post(&json!(batch), None).await;
    assert_eq!((status, code(&body)), (400, "BATCH_TOO_LARGE"));

    let body = server.gql("{ feed(first: 100000) { edges { cursor } } }", json!({}), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let body = server
        .gql("{ feed(first: 5, after: \"bm90LWEtY3Vyc29y\") { edges { cursor } } }", json!({}), Some(&alice))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let body = server.gql("{ feed(first: 5, after: \"%%%\") { edges { cursor } } }", json!({}), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    still_serving(&server).await;
    server.stop().await;
}

fn sign(pem: &str, kid: &str, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        sub: "1".into(),
        iss: "mobile-bff".into(),
        aud: "mobile-bff".into(),
        iat: now - 7200,
        exp: now + exp_offset,
        jti: "test".into(),
        did: None,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_pem(pem.as_bytes()).expect("key")).expect("sign")
}

#[tokio::test]
async fn forged_expired_and_malformed_tokens_are_refused() {
    let server = TestServer::start(3).await;
    let kid = server.app().keys.kid().to_owned();
    let pem = std::fs::read_to_string(server.app().settings.data_dir.join(GENERATED_KEY_FILE)).expect("key file");

    let expired = sign(&pem, &kid, -3600);
    let foreign_dir = tempfile::tempdir().expect("tempdir");
    let foreign_keys =
        mobile_bff::auth::keys::SigningKeys::load(&Default::default(), foreign_dir.path()).expect("keys");
    let forged_pem = std::fs::read_to_string(foreign_dir.path().join(GENERATED_KEY_FILE)).expect("pem");
    let forged = sign(&forged_pem, &kid, 3600); // claims our kid, signed with another key
    let other_kid = foreign_keys.mint(1, None).expect("mint");
    let valid = sign(&pem, &kid, 3600);

    for (label, header) in [
        ("expired", format!("Bearer {expired}")),
        ("forged", format!("Bearer {forged}")),
        ("unknown kid", format!("Bearer {other_kid}")),
        ("garbage", "Bearer not.a.jwt".to_owned()),
        ("basic", "Basic YWxpY2U6c2VjcmV0".to_owned()),
    ] {
        let response = server
            .client
            .post(format!("{}/graphql", server.base))
            .header("authorization", header)
            .json(&json!({ "query": "{ viewer { handle } }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 401, "{label}");
        assert!(response.headers().get("www-authenticate").is_some(), "{label}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{label}");
    }
    let data = server.data("{ viewer { handle } }", json!({}), Some(&valid)).await;
    assert_eq!(data["viewer"]["handle"], "alice");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_operation_in_a_batch_does_not_spoil_the_others() {
    let server = TestServer::start(3).await;
    let alice = server.token("alice").await;
    let batch = json!([
        { "query": "mutation { createPost(input: { body: \"kept\" }) { post { body } } }" },
        { "query": "{ nosuchfield }" },
        { "query": "{ viewer { handle } }" }
    ]);
    let (status, body) = server.post(&batch, Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["data"]["createPost"]["post"]["body"], "kept");
    assert_eq!(code(&body[1]), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(body[2]["data"]["viewer"]["handle"], "alice");
    server.stop().await;
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn token_attacks_are_refused_without_detail() {
    let server = TestServer::start(3).await;
    let keys = &server.app().keys;
    let kid = keys.kid().to_owned();
    let pem = std::fs::read_to_string(server.app().settings.data_dir.join(GENERATED_KEY_FILE)).expect("key file");
    let now = chrono::Utc::now().timestamp();
    let claims = |overrides: Value| {
        let mut c =
            json!({ "sub": "1", "iss": "mobile-bff", "aud": "mobile-bff", "iat": now, "exp": now + 600, "jti": "x" });
        if let (Some(c), Some(o)) = (c.as_object_mut(), overrides.as_object()) {
            c.extend(o.clone());
        }
        c
    };
    let signed = |c: Value| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &c, &EncodingKey::from_ed_pem(pem.as_bytes()).expect("key")).expect("sign")
    };
    let valid = signed(claims(json!({})));
    let parts: Vec<&str> = valid.split('.').collect();
    // alg none: header says none, no signature.
    let none = format!("{}.{}.", b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#).as_bytes()), parts[1]);
    // HS256 "signed" with the public key as the HMAC secret (algorithm confusion).
    let public_x = server.app().keys.jwks().keys[0].clone();
    let x = match &public_x.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
        _ => panic!("OKP key expected"),
    };
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let confused =
        jsonwebtoken::encode(&hs_header, &claims(json!({})), &EncodingKey::from_secret(x.as_bytes())).expect("hs");
    // Payload changed after signing (another user), signature kept.
    let tampered = format!("{}.{}.{}", parts[0], b64(claims(json!({ "sub": "2" })).to_string().as_bytes()), parts[2]);
    let cases = [
        ("alg none", none),
        ("hs256 with public key", confused),
        ("tampered payload", tampered),
        ("not yet valid", signed(claims(json!({ "nbf": now + 3600 })))),
        ("wrong audience", signed(claims(json!({ "aud": "someone-else" })))),
        ("wrong issuer", signed(claims(json!({ "iss": "evil" })))),
        ("oversized", format!("{}.{}.{}", parts[0], "A".repeat(5000), parts[2])),
        ("malformed base64", format!("{}.%%%.{}", parts[0], parts[2])),
        ("wrong kid", {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("not-our-key".into());
            jsonwebtoken::encode(&header, &claims(json!({})), &EncodingKey::from_ed_pem(pem.as_bytes()).expect("key"))
                .expect("sign")
        }),
    ];
    let mut messages = std::collections::HashSet::new();
    for (label, token) in cases {
        let response = server
            .client
            .post(format!("{}/graphql", server.base))
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({ "query": "{ viewer { handle } }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 401, "{label}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{label}");
        messages.insert(body["errors"][0]["message"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(messages.len(), 1, "one generic message for every failure: {messages:?}");
    let ok = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&valid)
        .json(&json!({ "query": "{ viewer { handle } }" }))
        .send()
        .await
        .expect("ok");
    assert_eq!(ok.status(), 200, "the untampered token works");
    server.stop().await;
}
