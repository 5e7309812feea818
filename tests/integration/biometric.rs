//! Biometric challenge-response login with real P-256 keys generated in the test.

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    pkcs8::EncodePublicKey,
};
use serde_json::{Value, json};

use crate::common::{TestServer, code};

fn new_key() -> SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("random");
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn spki(key: &SigningKey) -> String {
    STANDARD.encode(key.verifying_key().to_public_key_der().expect("spki").as_bytes())
}

fn sign(key: &SigningKey, nonce: &str, der: bool) -> String {
    let signature: Signature = key.sign(&URL_SAFE_NO_PAD.decode(nonce).expect("nonce"));
    if der { STANDARD.encode(signature.to_der().as_bytes()) } else { STANDARD.encode(signature.to_bytes()) }
}

async fn sign_up(server: &TestServer, email: &str, handle: &str, client: &str) -> Value {
    let query = "mutation($input: RegisterInput!) { register(input: $input) { accessToken deviceId } }";
    let input = json!({ "email": email, "password": "correct horse battery", "handle": handle, "displayName": handle,
                        "device": { "clientDeviceId": client, "platform": "IOS" } });
    server.data(query, json!({ "input": input }), None).await["register"].clone()
}

async fn challenge(server: &TestServer, device: &Value) -> Value {
    let query = "mutation($d: ID!) { biometricChallenge(deviceId: $d) { challengeId nonce expiresAt } }";
    server.data(query, json!({ "d": device }), None).await["biometricChallenge"].clone()
}

async fn biometric_login(server: &TestServer, device: &Value, challenge_id: &Value, signature: &str) -> Value {
    let query =
        "mutation($input: BiometricLoginInput!) { biometricLogin(input: $input) { accessToken user { handle } } }";
    let input = json!({ "deviceId": device, "challengeId": challenge_id, "signature": signature });
    server.gql(query, json!({ "input": input }), None).await
}

#[tokio::test]
async fn biometric_login_with_an_enrolled_key_and_its_attacks() {
    let server = TestServer::start(0).await;
    let phone = sign_up(&server, "eve@example.com", "eve", "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e").await;
    let access = phone["accessToken"].as_str().expect("access");
    let device = phone["deviceId"].clone();
    let key = new_key();
    let enroll = "mutation($k: String!) { enrollBiometricKey(publicKey: $k) }";
    assert_eq!(server.data(enroll, json!({ "k": spki(&key) }), Some(access)).await["enrollBiometricKey"], true);
    let body = server.gql(enroll, json!({ "k": "bm90IGEga2V5" }), Some(access)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "garbage keys are refused");

    // Signed out, the user unlocks with Face ID: DER signature (Secure Enclave style).
    server.data("mutation { logout }", json!({}), Some(access)).await;
    let c = challenge(&server, &device).await;
    let ok =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), true)).await;
    assert_eq!(ok["data"]["biometricLogin"]["user"]["handle"], "eve", "{ok}");
    // Replay of the same challenge and signature.
    let replay =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), true)).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED");

    // Raw r‖s signatures (Android Keystore converted) work too.
    let c = challenge(&server, &device).await;
    let raw =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), false)).await;
    assert!(raw.get("errors").is_none(), "{raw}");

    // A different key signing the right nonce.
    let c = challenge(&server, &device).await;
    let wrong =
        biometric_login(&server, &device, &c["challengeId"], &sign(&new_key(), c["nonce"].as_str().expect("n"), true))
            .await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED");
    // The failed attempt spent the challenge.
    let again =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), true)).await;
    assert_eq!(code(&again), "UNAUTHENTICATED");

    // Another device's challenge answered with this device's key.
    let other = sign_up(&server, "mal@example.com", "mal", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f").await;
    let other_key = new_key();
    let other_access = other["accessToken"].as_str().expect("access");
    server.data(enroll, json!({ "k": spki(&other_key) }), Some(other_access)).await;
    let c = challenge(&server, &other["deviceId"]).await;
    let crossed =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), true)).await;
    assert_eq!(code(&crossed), "UNAUTHENTICATED", "a challenge belongs to its device");
    let crossed = biometric_login(
        &server,
        &other["deviceId"],
        &c["challengeId"],
        &sign(&key, c["nonce"].as_str().expect("n"), true),
    )
    .await;
    assert_eq!(code(&crossed), "UNAUTHENTICATED", "signed with another device's key");

    // A revoked device's key no longer signs it in.
    let fresh = ok["data"]["biometricLogin"]["accessToken"].as_str().expect("access");
    server.data("mutation { signOutEverywhere }", json!({}), Some(fresh)).await;
    let c = challenge(&server, &device).await;
    let revoked =
        biometric_login(&server, &device, &c["challengeId"], &sign(&key, c["nonce"].as_str().expect("n"), true)).await;
    assert_eq!(code(&revoked), "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn expired_challenges_are_refused() {
    let server = TestServer::start_with(0, |s| s.auth.biometric_challenge_seconds = 0).await;
    let phone = sign_up(&server, "eve@example.com", "eve", "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e").await;
    let key = new_key();
    let enroll = "mutation($k: String!) { enrollBiometricKey(publicKey: $k) }";
    server.data(enroll, json!({ "k": spki(&key) }), phone["accessToken"].as_str()).await;
    let c = challenge(&server, &phone["deviceId"]).await;
    // Expired once the clock has passed its `expiresAt` (0 s after it was issued).
    let expires_at: chrono::DateTime<chrono::Utc> =
        c["expiresAt"].as_str().expect("expiresAt").parse().expect("an RFC 3339 time");
    while chrono::Utc::now() <= expires_at + chrono::Duration::milliseconds(1) {
        tokio::task::yield_now().await;
    }
    let late = biometric_login(
        &server,
        &phone["deviceId"],
        &c["challengeId"],
        &sign(&key, c["nonce"].as_str().expect("n"), true),
    )
    .await;
    assert_eq!(code(&late), "UNAUTHENTICATED");
    server.stop().await;
}
