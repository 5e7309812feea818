//! Attacks on access tokens and sign-in, one row each, against a running server whose signing
//! key the test knows (so it can forge exactly one property at a time): every forged, stale
//! or misdirected token is `401 UNAUTHENTICATED`; sign-in answers do not tell an unknown
//! email from a wrong password (the same status and error; the same work is done because an
//! unknown email is verified against a dummy hash of the same cost, `auth::accounts`). The refresh, device, PKCE,
//! redirect and budget attacks are in `auth.rs`, `rate_limits.rs` and `tests/oauth/`
//! (docs/reliability.md lists every row).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::TestServer;

/// The server's key (fixed bytes: the test signs with it too).
fn server_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

async fn server() -> TestServer {
    let pem = server_key().to_pkcs8_pem(Default::default()).expect("pem").to_string();
    TestServer::start_with(2, move |settings| {
        settings.auth.signing_key_pem = mobile_bff::kernel::settings::Secret::new(pem);
    })
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for user `sub` (as the server mints them), to alter one at a time.
fn claims(sub: i64) -> Value {
    json!({ "sub": sub.to_string(), "iss": "mobile-bff", "aud": "mobile-bff", "iat": now(), "exp": now() + 600,
            "jti": uuid::Uuid::new_v4().to_string() })
}

fn sign_ed(key: &SigningKey, kid: Option<&str>, claims: &Value) -> String {
    let der = key.to_pkcs8_der().expect("der");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).expect("sign")
}

fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(header), part(claims))
}

async fn answer(server: &TestServer, token: &str) -> (u16, Value) {
    server.post(&json!({ "query": "{ viewer { handle } }" }), Some(token)).await
}

async fn refused(server: &TestServer, attack: &str, token: &str) {
    let (status, body) = answer(server, token).await;
    assert_eq!(status, 401, "{attack}: {body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{attack}: {body}");
}

#[tokio::test]
async fn forged_stale_and_misdirected_access_tokens_are_refused() {
    let server = server().await;
    let settings = &server.app().settings.auth;
    assert_eq!((settings.issuer.as_str(), settings.audience.as_str()), ("mobile-bff", "mobile-bff"));
    let jwks: Value = server
        .client
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();
    let public_x = jwks["keys"][0]["x"].as_str().expect("x").to_owned();
    let alice =
        mobile_bff::social::user_by_handle(server.app().db.conn(), "alice").await.expect("q").expect("alice").id;
    let key = server_key();

    // The control: the same forging code with nothing altered is accepted.
    let (status, body) = answer(&server, &sign_ed(&key, Some(&kid), &claims(alice))).await;
    assert_eq!((status, body["data"]["viewer"]["handle"].clone()), (200, json!("alice")), "{body}");

    refused(&server, "alg none", &unsigned(&json!({ "alg": "none", "typ": "JWT", "kid": kid }), &claims(alice))).await;
    refused(&server, "alg none, no kid", &unsigned(&json!({ "alg": "none" }), &claims(alice))).await;
    // HS256 with the public key as the HMAC secret (raw bytes and the JWKS text).
    let raw = URL_SAFE_NO_PAD.decode(&public_x).expect("x");
    for secret in [raw.as_slice(), public_x.as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims(alice), &EncodingKey::from_secret(secret)).expect("sign");
        refused(&server, "HS256 keyed with the public key", &token).await;
    }
    refused(&server, "unknown kid", &sign_ed(&key, Some("not-our-kid"), &claims(alice))).await;
    refused(
        &server,
        "another key under our kid",
        &sign_ed(&SigningKey::from_bytes(&[9u8; 32]), Some(&kid), &claims(alice)),
    )
    .await;
    let tampered = {
        let token = sign_ed(&key, Some(&kid), &claims(alice));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut payload = claims(alice);
        payload["sub"] = json!("2");
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        parts.join(".")
    };
    refused(&server, "payload changed after signing", &tampered).await;
    let mut expired = claims(alice);
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    refused(&server, "expired", &sign_ed(&key, Some(&kid), &expired)).await;
    let mut early = claims(alice);
    early["nbf"] = json!(now() + 3600);
    refused(&server, "not yet valid (nbf)", &sign_ed(&key, Some(&kid), &early)).await;
    for (claim, value) in [("aud", "someone-else"), ("iss", "https://evil.example")] {
        let mut wrong = claims(alice);
        wrong[claim] = json!(value);
        refused(&server, &format!("wrong {claim}"), &sign_ed(&key, Some(&kid), &wrong)).await;
    }
    for missing in ["exp", "sub", "aud", "iss"] {
        let mut partial = claims(alice);
        partial.as_object_mut().expect("object").remove(missing);
        refused(&server, &format!("no {missing}"), &sign_ed(&key, Some(&kid), &partial)).await;
    }
    let mut ghost = claims(alice);
    ghost["sub"] = json!("not-a-number");
    refused(&server, "sub that is not a user id", &sign_ed(&key, Some(&kid), &ghost)).await;
    for garbage in ["", "a.b", "a.b.c", "Bearer", &"x".repeat(10_000)] {
        refused(&server, "garbage", garbage).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn sign_in_does_not_tell_an_unknown_email_from_a_wrong_password() {
    let server = server().await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = json!({ "email": "erin@example.com", "password": "correct horse battery", "handle": "erin",
        "displayName": "Erin", "device": { "clientDeviceId": "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e", "platform": "IOS" } });
    server.data(register, json!({ "input": input }), None).await;
    let login = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    let body = |email: &str| {
        let input = json!({ "email": email, "password": "wrong password!!", "device": {
            "clientDeviceId": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "platform": "ANDROID" } });
        json!({ "query": login, "variables": { "input": input } })
    };
    let (status_known, known) = server.post(&body("erin@example.com"), None).await;
    let (status_unknown, unknown) = server.post(&body("nobody@example.com"), None).await;
    assert_eq!(status_known, status_unknown);
    assert_eq!(known["errors"], unknown["errors"], "the same answer for both");
    assert_eq!(known["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    server.stop().await;
}
