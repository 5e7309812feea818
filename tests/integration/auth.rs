//! Accounts, device sessions, refresh-token rotation, reuse detection and revocation.

use serde_json::{Value, json};

use crate::common::{TestServer, code};

const PAYLOAD: &str = "accessToken refreshToken accessTokenExpiresAt refreshTokenExpiresAt deviceId user { handle }";

fn device(id: &str, model: &str) -> Value {
    json!({ "clientDeviceId": id, "platform": "IOS", "model": model, "osVersion": "18.1", "appVersion": "3.2.0",
            "locale": "en-GB", "timezone": "Europe/London" })
}

const PHONE: &str = "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e";
const TABLET: &str = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";

async fn register(server: &TestServer) -> Value {
    let query = format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}");
    let input = json!({ "email": "Dana@Example.com", "password": "correct horse battery", "handle": "dana",
                        "displayName": "Dana", "device": device(PHONE, "iPhone15,2") });
    server.data(&query, json!({ "input": input }), None).await["register"].clone()
}

async fn login(server: &TestServer, email: &str, password: &str, client: &str) -> Value {
    let query = format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}");
    let input = json!({ "email": email, "password": password, "device": device(client, "iPad14,1") });
    server.gql(&query, json!({ "input": input }), None).await
}

async fn refresh(server: &TestServer, token: &str, client: Option<&str>) -> Value {
    let query = format!("mutation($input: RefreshInput!) {{ refreshTokens(input: $input) {{ {PAYLOAD} }} }}");
    server.gql(&query, json!({ "input": { "refreshToken": token, "clientDeviceId": client } }), None).await
}

async fn status_with(server: &TestServer, access: &str) -> u16 {
    let (status, _) = server.post(&json!({ "query": "{ viewer { handle } }" }), Some(access)).await;
    status
}

#[tokio::test]
async fn register_login_and_device_list() {
    let server = TestServer::start(0).await;
    let phone = register(&server).await;
    assert_eq!(phone["user"]["handle"], "dana");
    let access = phone["accessToken"].as_str().expect("access");
    assert!(phone["refreshToken"].as_str().expect("refresh").len() >= 43, "≥ 256 bits");

    // Same answer for an unknown email and a wrong password.
    let unknown = login(&server, "nobody@example.com", "correct horse battery", TABLET).await;
    let wrong = login(&server, "dana@example.com", "wrong password!!", TABLET).await;
    assert_eq!(code(&unknown), "UNAUTHENTICATED");
    assert_eq!(unknown["errors"][0]["message"], wrong["errors"][0]["message"]);

    let tablet = login(&server, "dana@example.com", "correct horse battery", TABLET).await;
    assert!(tablet.get("errors").is_none(), "{tablet}");
    let devices =
        server.data("{ me { handle } devices { id name model isCurrent revoked } }", json!({}), Some(access)).await;
    assert_eq!(devices["me"]["handle"], "dana");
    let names: Vec<&str> =
        devices["devices"].as_array().expect("devices").iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(names.contains(&"iPhone15,2 · iOS 18.1"), "{names:?}");
    let list = devices["devices"].as_array().expect("devices");
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|d| d["isCurrent"] == true).count(), 1);
    // The failed login is recorded in the background (so it costs the answer no time): poll.
    let mut kinds: Vec<String> = Vec::new();
    for _ in 0..50 {
        let events =
            server.data("{ securityEvents(first: 10) { edges { node { kind } } } }", json!({}), Some(access)).await;
        kinds = events["securityEvents"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter_map(|e| e["node"]["kind"].as_str().map(str::to_owned))
            .collect();
        if kinds.iter().any(|k| k == "login_failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(kinds.iter().any(|k| k == "new_device_login") && kinds.iter().any(|k| k == "login_failed"), "{kinds:?}");

    let duplicate = format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}");
    let input = json!({ "email": "dana@example.com", "password": "another password", "handle": "dana2",
                        "displayName": "D", "device": device(TABLET, "x") });
    assert_eq!(code(&server.gql(&duplicate, json!({ "input": input }), None).await), "CONFLICT");
    server.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start_with(0, |s| s.auth.refresh_grace_seconds = 0).await;
    let first = register(&server).await;
    let old = first["refreshToken"].as_str().expect("refresh").to_owned();
    let rotated = refresh(&server, &old, Some(PHONE)).await;
    let new = rotated["data"]["refreshTokens"]["refreshToken"].as_str().expect("new").to_owned();
    assert_ne!(new, old);
    assert_eq!(status_with(&server, rotated["data"]["refreshTokens"]["accessToken"].as_str().expect("a")).await, 200);

    // The old token again (no grace): theft. The family dies, including the new token.
    // (Once the clock has moved past the rotation: with no grace, "later" is any later instant.)
    let rotated_at = chrono::Utc::now();
    while chrono::Utc::now() <= rotated_at + chrono::Duration::milliseconds(1) {
        tokio::task::yield_now().await;
    }
    assert_eq!(code(&refresh(&server, &old, Some(PHONE)).await), "UNAUTHENTICATED");
    assert_eq!(code(&refresh(&server, &new, Some(PHONE)).await), "UNAUTHENTICATED", "family revoked");
    let access = rotated["data"]["refreshTokens"]["accessToken"].as_str().expect("a");
    let events =
        server.data("{ securityEvents(first: 10) { edges { node { kind } } } }", json!({}), Some(access)).await;
    assert_eq!(events["securityEvents"]["edges"][0]["node"]["kind"], "refresh_token_reuse");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_within_the_grace_window_get_the_same_pair() {
    let server = TestServer::start(0).await;
    let first = register(&server).await;
    let old = first["refreshToken"].as_str().expect("refresh").to_owned();
    let (a, b) = tokio::join!(refresh(&server, &old, Some(PHONE)), refresh(&server, &old, Some(PHONE)));
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_eq!(a["data"]["refreshTokens"]["refreshToken"], b["data"]["refreshTokens"]["refreshToken"]);
    assert_eq!(
        a["data"]["refreshTokens"]["accessToken"], b["data"]["refreshTokens"]["accessToken"],
        "the very same pair"
    );
    // The shared successor keeps working.
    let next = a["data"]["refreshTokens"]["refreshToken"].as_str().expect("next");
    assert!(refresh(&server, next, Some(PHONE)).await.get("errors").is_none());
    // Another device may not use this device's token.
    let stolen = refresh(&server, next, Some(TABLET)).await;
    assert_eq!(code(&stolen), "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn revoking_a_device_cuts_off_its_tokens_at_once() {
    let server = TestServer::start(0).await;
    let phone = register(&server).await;
    let tablet = login(&server, "dana@example.com", "correct horse battery", TABLET).await["data"]["login"].clone();
    let tablet_access = tablet["accessToken"].as_str().expect("access");
    let phone_access = phone["accessToken"].as_str().expect("access");
    assert_eq!(status_with(&server, tablet_access).await, 200);

    let revoke = "mutation($id: ID!) { revokeDevice(id: $id) { revoked isCurrent } }";
    let done = server.data(revoke, json!({ "id": tablet["deviceId"] }), Some(phone_access)).await;
    assert_eq!(done["revokeDevice"], json!({ "revoked": true, "isCurrent": false }));
    assert_eq!(status_with(&server, tablet_access).await, 401, "revoked device's access token is refused");
    assert_eq!(
        code(&refresh(&server, tablet["refreshToken"].as_str().expect("r"), Some(TABLET)).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(status_with(&server, phone_access).await, 200, "the other device is untouched");

    // An unknown (or someone else's) device cannot be revoked.
    let body = server.gql(revoke, json!({ "id": "RGV2aWNlOjk5OQ" }), Some(phone_access)).await;
    assert_eq!(code(&body), "NOT_FOUND");

    let everywhere = server.data("mutation { signOutEverywhere }", json!({}), Some(phone_access)).await;
    assert_eq!(everywhere["signOutEverywhere"], 1);
    assert_eq!(status_with(&server, phone_access).await, 401);
    server.stop().await;
}

#[tokio::test]
async fn logout_ends_the_current_session() {
    let server = TestServer::start(0).await;
    let phone = register(&server).await;
    let access = phone["accessToken"].as_str().expect("access");
    assert_eq!(server.data("mutation { logout }", json!({}), Some(access)).await["logout"], true);
    assert_eq!(status_with(&server, access).await, 401);
    assert_eq!(
        code(&refresh(&server, phone["refreshToken"].as_str().expect("r"), Some(PHONE)).await),
        "UNAUTHENTICATED"
    );
    // Logging in again on the same device starts a new session.
    let again = login(&server, "dana@example.com", "correct horse battery", PHONE).await;
    let access = again["data"]["login"]["accessToken"].as_str().expect("access");
    assert_eq!(status_with(&server, access).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_token_presented_without_its_device_is_refused() {
    let server = TestServer::start(0).await;
    let first = register(&server).await;
    let token = first["refreshToken"].as_str().expect("refresh").to_owned();
    // A stolen token sent on its own: no `clientDeviceId`, no `X-Device-Id`.
    assert_eq!(code(&refresh(&server, &token, None).await), "UNAUTHENTICATED", "no device: refused");
    assert_eq!(code(&refresh(&server, &token, Some("")).await), "UNAUTHENTICATED", "an empty device: refused");
    assert_eq!(code(&refresh(&server, &token, Some(TABLET)).await), "UNAUTHENTICATED", "another device: refused");
    // The refusals did not spend the token: its own device, by header this time, still refreshes.
    let query = format!("mutation($input: RefreshInput!) {{ refreshTokens(input: $input) {{ {PAYLOAD} }} }}");
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-device-id", PHONE)
        .json(&json!({ "query": query, "variables": { "input": { "refreshToken": token } } }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("json");
    assert!(body.get("errors").is_none(), "the device's X-Device-Id binds the refresh: {body}");
    server.stop().await;
}

/// Starts a server on `database` with its keys in `dir` (`previous`: retired keys).
async fn server_on(dir: &std::path::Path, database: &str, previous: Vec<String>) -> mobile_bff::server::RunningServer {
    let mut settings = crate::common::settings(dir, database);
    settings.auth.refresh_grace_seconds = 120;
    settings.auth.previous_keys_pem = previous.into_iter().map(mobile_bff::config::Secret::new).collect();
    mobile_bff::server::start(settings).await.expect("server starts")
}

#[tokio::test]
async fn a_refresh_in_the_grace_window_keeps_the_session_across_a_key_rotation() {
    let (old_dir, new_dir) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let database = crate::common::TestDatabase::create(old_dir.path()).await;
    let client = reqwest::Client::new();
    let refresh_on = |base: String, token: String| {
        let client = client.clone();
        async move {
            let query = format!("mutation($input: RefreshInput!) {{ refreshTokens(input: $input) {{ {PAYLOAD} }} }}");
            let variables = json!({ "input": { "refreshToken": token, "clientDeviceId": PHONE } });
            let response = client
                .post(format!("{base}/graphql"))
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("request");
            response.json::<Value>().await.expect("json")
        }
    };

    // Signed in and refreshed on a server with the old key...
    let old = server_on(old_dir.path(), &database.url, Vec::new()).await;
    let base = format!("http://{}", old.addr);
    let register = format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}");
    let input = json!({ "email": "rot@example.com", "password": "correct horse battery", "handle": "rot",
                        "displayName": "Rot", "device": device(PHONE, "iPhone15,2") });
    let registered = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": register, "variables": { "input": input } }))
        .send()
        .await
        .expect("register")
        .json::<Value>()
        .await
        .expect("json");
    let first = registered["data"]["register"]["refreshToken"].as_str().expect("refresh").to_owned();
    let rotated = refresh_on(base.clone(), first.clone()).await;
    let successor = rotated["data"]["refreshTokens"]["refreshToken"].as_str().expect("successor").to_owned();
    old.shutdown().await;

    // ...then the key rotates (the old one retired to `previous_keys_pem`), and the app's
    // second, concurrent refresh of the same token lands inside the grace window.
    let old_pem = std::fs::read_to_string(old_dir.path().join("jwt-signing-key.pem")).expect("old key");
    let new = server_on(new_dir.path(), &database.url, vec![old_pem]).await;
    let base = format!("http://{}", new.addr);
    let again = refresh_on(base.clone(), first).await;
    assert!(again.get("errors").is_none(), "the grace path answers across the rotation: {again}");
    assert_eq!(again["data"]["refreshTokens"]["refreshToken"], successor.as_str(), "the same successor");
    let access = again["data"]["refreshTokens"]["accessToken"].as_str().expect("access");
    let viewer = client
        .post(format!("{base}/graphql"))
        .bearer_auth(access)
        .json(&json!({ "query": "{ viewer { handle } }" }))
        .send()
        .await
        .expect("viewer")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(viewer["data"]["viewer"]["handle"], "rot");
    // The family is alive: the successor rotates on the new key's server, no reuse recorded.
    let next = refresh_on(base, successor).await;
    assert!(next.get("errors").is_none(), "family not revoked: {next}");
    let events = client
        .post(format!("http://{}/graphql", new.addr))
        .bearer_auth(access)
        .json(&json!({ "query": "{ securityEvents(first: 10) { edges { node { kind } } } }" }))
        .send()
        .await
        .expect("events")
        .json::<Value>()
        .await
        .expect("json");
    assert!(!events.to_string().contains("refresh_token_reuse"), "{events}");
    new.shutdown().await;
    database.destroy().await;
}

/// Refreshes with `headers` (the app's own: `X-Platform`, `X-OS-Version`).
async fn refresh_with(server: &TestServer, token: &str, headers: &[(&str, &str)]) -> Value {
    let query = format!("mutation($input: RefreshInput!) {{ refreshTokens(input: $input) {{ {PAYLOAD} }} }}");
    let mut request = server
        .client
        .post(format!("{}/graphql", server.base))
        .json(&json!({ "query": query, "variables": { "input": { "refreshToken": token, "clientDeviceId": PHONE } } }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request").json().await.expect("json")
}

async fn event_kinds(server: &TestServer, access: &str) -> Vec<String> {
    let events =
        server.data("{ securityEvents(first: 20) { edges { node { kind } } } }", json!({}), Some(access)).await;
    events["securityEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["kind"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn contradicting_device_signals_are_recorded_and_step_up_refuses_the_refresh() {
    // Default policy: recorded (and told), the refresh goes through; an OS upgrade is not a
    // contradiction and moves the record forward, so stepping back after it is one.
    let server = TestServer::start(0).await;
    let first = register(&server).await;
    let refreshed = refresh_with(
        &server,
        first["refreshToken"].as_str().expect("rt"),
        &[("x-platform", "ios"), ("x-os-version", "18.2")],
    )
    .await;
    let access = refreshed["data"]["refreshTokens"]["accessToken"].as_str().expect("an upgrade refreshes").to_owned();
    assert!(!event_kinds(&server, &access).await.contains(&"device_signals_contradict".to_owned()));
    let token = refreshed["data"]["refreshTokens"]["refreshToken"].as_str().expect("rt").to_owned();
    let back = refresh_with(&server, &token, &[("x-platform", "ios"), ("x-os-version", "18.1")]).await;
    let access = back["data"]["refreshTokens"]["accessToken"].as_str().expect("recorded, not refused").to_owned();
    assert!(event_kinds(&server, &access).await.contains(&"device_signals_contradict".to_owned()));
    // The user is told: a SECURITY notification in their history.
    let history = server
        .data("{ notifications(first: 5) { edges { node { category title } } } }", json!({}), Some(&access))
        .await;
    assert_eq!(history["notifications"]["edges"][0]["node"]["category"], "SECURITY", "{history}");
    server.stop().await;

    // step_up: another platform under the same client device id is refused and signs the
    // device out; a model change alone would not be.
    let server =
        TestServer::start_with(0, |s| s.auth.device_signals = mobile_bff::auth::signals::SignalPolicy::StepUp).await;
    let first = register(&server).await;
    let old_access = first["accessToken"].as_str().expect("at").to_owned();
    let refused =
        refresh_with(&server, first["refreshToken"].as_str().expect("rt"), &[("x-platform", "android")]).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["reason"], "STEP_UP_REQUIRED", "{refused}");
    assert_eq!(status_with(&server, &old_access).await, 401, "the device is signed out at once");
    let again = refresh_with(&server, first["refreshToken"].as_str().expect("rt"), &[("x-platform", "ios")]).await;
    assert_eq!(code(&again), "UNAUTHENTICATED", "its refresh tokens are gone too: {again}");
    let relogin = login(&server, "dana@example.com", "correct horse battery", PHONE).await;
    let access = relogin["data"]["login"]["accessToken"].as_str().expect("signing in again works").to_owned();
    assert!(event_kinds(&server, &access).await.contains(&"device_signals_contradict".to_owned()));
    server.stop().await;
}
