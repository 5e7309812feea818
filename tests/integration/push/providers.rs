//! APNs and FCM against their emulators: signed HTTP/2 requests with the right headers and
//! payloads, provider-token caching and the once-only refresh on `ExpiredProviderToken`,
//! dead-token feedback (410 honouring its timestamp, 400 BadDeviceToken, FCM UNREGISTERED and
//! INVALID_ARGUMENT), permanent errors dead-lettered, 429/500 retried, FCM access-token refresh.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::{
    Providers, TOPIC, alert, apns_emulator::Script, apns_token, device_push, fcm_emulator, fcm_token, register_token,
    send_and_wait, sign_in,
};
use crate::common::TestServer;

fn uuid(n: u8) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

fn jwt_iat(jwt: &str) -> i64 {
    let claims = jwt.split('.').nth(1).expect("claims");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).expect("base64url");
    serde_json::from_slice::<Value>(&bytes).expect("json")["iat"].as_i64().expect("iat")
}

#[tokio::test]
async fn apns_alert_and_silent_pushes_are_signed_http2_requests_with_apples_headers() {
    let providers = Providers::start(3600).await;
    let server = TestServer::start_with(0, |s| providers.configure(s)).await;
    assert!(server.app().push.providers.configured(mobile_bff::push::tokens::Provider::Apns));
    let phone = sign_in(&server, "ana", &uuid(1), "IOS").await;
    register_token(&server, &phone.access, "APNS", &apns_token(1), Some("SANDBOX")).await;

    let mut outgoing = alert(&server, "ana", "Hi Ana").await;
    outgoing.collapse_key = Some("thread-42".into());
    outgoing.data.insert("screen".into(), json!("inbox"));
    let (notification, jobs) = send_and_wait(&server, outgoing).await;
    assert_eq!(jobs[0].status, "done", "{jobs:?}");
    assert_eq!(jobs[0].result.as_ref().expect("result")["provider"], "apns");
    let received = providers.apns.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.status, 200);
    assert_eq!(request.token, apns_token(1));
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("apns-topic"), TOPIC);
    assert_eq!(header("apns-push-type"), "alert");
    assert_eq!(header("apns-priority"), "10");
    assert_eq!(header("apns-collapse-id"), "thread-42");
    assert!(header("apns-expiration").parse::<i64>().expect("expiration") > chrono::Utc::now().timestamp());
    assert_eq!(jobs[0].result.as_ref().expect("result")["id"], json!(header("apns-id")));
    assert_eq!(request.body["aps"]["alert"], json!({ "title": "Hi Ana", "body": "body text" }));
    assert_eq!(request.body["screen"], "inbox");
    assert_eq!(request.body["nid"], json!(notification.to_string()));

    // Silent: content-available, background, priority 5, no alert.
    let mut silent = alert(&server, "ana", "").await;
    silent.silent = true;
    silent.data.insert("sync".into(), json!("messages"));
    let (_, jobs) = send_and_wait(&server, silent).await;
    assert_eq!(jobs[0].status, "done");
    let request = providers.apns.received().pop().expect("request");
    assert_eq!(request.body["aps"], json!({ "content-available": 1 }));
    assert_eq!(request.body["sync"], "messages");
    assert_eq!(request.headers["apns-push-type"], "background");
    assert_eq!(request.headers["apns-priority"], "5");
    // One provider token for both (cached), and one connection's worth of HTTP/2 requests.
    assert_eq!(providers.apns.distinct_jwts(), 1);

    // ExpiredProviderToken: re-signed and retried once, in the same attempt.
    let iat = jwt_iat(&request.jwt);
    providers.apns.expire_tokens_issued_before(iat + 1);
    let (_, jobs) = send_and_wait(&server, alert(&server, "ana", "After expiry").await).await;
    assert_eq!((jobs[0].status.as_str(), jobs[0].attempts), ("done", 1), "{jobs:?}");
    let received = providers.apns.received();
    let last_two: Vec<u16> = received[received.len() - 2..].iter().map(|r| r.status).collect();
    assert_eq!(last_two, vec![403, 200]);
    assert!(jwt_iat(&received[received.len() - 1].jwt) > iat);
    assert_eq!(providers.apns.distinct_jwts(), 2);
    server.stop().await;
}

#[tokio::test]
async fn apns_feedback_marks_dead_tokens_and_retries_only_what_can_succeed() {
    let providers = Providers::start(3600).await;
    let server = TestServer::start_with(0, |s| providers.configure(s)).await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Device 1 ok; 2 BadDeviceToken; 3 410 after its registration; 4 410 from before it was
    // registered again; 5 413; 6 429 once; 7 500 twice.
    let scripts = [
        None,
        Some(Script::BadDeviceToken),
        Some(Script::Gone(now_ms + 3_600_000)),
        Some(Script::Gone(now_ms - 3_600_000)),
        Some(Script::PayloadTooLarge),
        Some(Script::TooMany { retry_after: 1, times: 1 }),
        Some(Script::Failing { times: 2 }),
    ];
    let mut devices = Vec::new();
    for (n, script) in scripts.into_iter().enumerate() {
        let tag = n as u8 + 1;
        let device = sign_in(&server, "bob", &uuid(tag), "IOS").await;
        register_token(&server, &device.access, "APNS", &apns_token(tag), None).await;
        if let Some(script) = script {
            providers.apns.script(&apns_token(tag), script);
        }
        devices.push(device);
    }
    let (_, jobs) = send_and_wait(&server, alert(&server, "bob", "Hello").await).await;
    let summary: Vec<(String, i32)> = jobs.iter().map(|j| (j.status.clone(), j.attempts)).collect();
    assert_eq!(
        summary,
        [("done", 1), ("dead", 1), ("dead", 1), ("dead", 1), ("dead", 1), ("done", 2), ("done", 3)]
            .map(|(s, n)| (s.to_owned(), n))
            .to_vec()
    );
    assert_eq!(jobs[1].last_error.as_deref(), Some("APNs 400 BadDeviceToken: token marked dead"));
    assert_eq!(jobs[2].last_error.as_deref(), Some("APNs 410 Unregistered: token marked dead"));
    assert_eq!(jobs[3].last_error.as_deref(), Some("APNs 410 Unregistered: token re-registered since: kept"));
    assert_eq!(jobs[4].last_error.as_deref(), Some("APNs 413 PayloadTooLarge"));
    let access = &devices[0].access;
    let deliverable: Vec<Value> = {
        let mut out = Vec::new();
        for device in &devices {
            out.push(device_push(&server, access, &device.device_id).await["deliverable"].clone());
        }
        out
    };
    assert_eq!(deliverable, [true, false, false, true, true, true, true].map(Value::Bool).to_vec());
    assert_eq!(device_push(&server, access, &devices[1].device_id).await["deadReason"], "APNs 400 BadDeviceToken");
    // Dead tokens get no further pushes (nothing queued for them); re-registering revives one.
    let before = providers.apns.received().len();
    let (_, jobs) = send_and_wait(&server, alert(&server, "bob", "Again").await).await;
    assert_eq!(jobs.len(), 5);
    let sent_to: Vec<String> = providers.apns.received()[before..].iter().map(|r| r.token.clone()).collect();
    assert!(!sent_to.contains(&apns_token(2)) && !sent_to.contains(&apns_token(3)), "{sent_to:?}");
    register_token(&server, &devices[1].access, "APNS", &apns_token(2), None).await;
    assert_eq!(device_push(&server, access, &devices[1].device_id).await["deliverable"], true);
    server.stop().await;
}

#[tokio::test]
async fn fcm_v1_sends_with_a_refreshed_access_token_and_maps_error_details() {
    // Access tokens live 1 s: the client refreshes them shortly before they expire.
    let providers = Providers::start(1).await;
    let server = TestServer::start_with(0, |s| providers.configure(s)).await;
    let mut devices = Vec::new();
    for (n, script) in [
        None,
        Some(fcm_emulator::Script::Unregistered),
        Some(fcm_emulator::Script::InvalidToken),
        Some(fcm_emulator::Script::Quota { retry_after: 1 }),
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("d{n}");
        let device = sign_in(&server, "cyd", &uuid(n as u8 + 20), "ANDROID").await;
        register_token(&server, &device.access, "FCM", &fcm_token(&tag), None).await;
        if let Some(script) = script {
            providers.fcm.script(&fcm_token(&tag), script);
        }
        devices.push(device);
    }
    let mut outgoing = alert(&server, "cyd", "Hi Cy").await;
    outgoing.collapse_key = Some("inbox".into());
    outgoing.data.insert("count".into(), json!(3));
    let (_, jobs) = send_and_wait(&server, outgoing).await;
    let summary: Vec<(&str, i32)> = jobs.iter().map(|j| (j.status.as_str(), j.attempts)).collect();
    assert_eq!(summary, vec![("done", 1), ("dead", 1), ("dead", 1), ("done", 2)], "{jobs:?}");
    assert_eq!(jobs[1].last_error.as_deref(), Some("FCM 404 UNREGISTERED: token marked dead"));
    assert_eq!(jobs[2].last_error.as_deref(), Some("FCM 400 INVALID_ARGUMENT: token marked dead"));
    let received = providers.fcm.received();
    let message = &received.iter().find(|r| r.message["token"] == fcm_token("d0")).expect("request for d0").message;
    assert_eq!(message["notification"], json!({ "title": "Hi Cy", "body": "body text" }));
    assert_eq!(message["data"]["count"], "3");
    assert_eq!(message["android"]["priority"], "HIGH");
    assert_eq!(message["android"]["collapse_key"], "inbox");
    assert_eq!(message["android"]["ttl"], "86400s");
    let access = &devices[0].access;
    assert_eq!(device_push(&server, access, &devices[1].device_id).await["deliverable"], false);
    assert_eq!(device_push(&server, access, &devices[2].device_id).await["deliverable"], false);

    // Silent: data only, normal priority.
    let mut silent = alert(&server, "cyd", "").await;
    silent.silent = true;
    send_and_wait(&server, silent).await;
    let message = providers.fcm.received().pop().expect("request").message;
    assert!(message.get("notification").is_none(), "{message}");
    assert_eq!(message["android"]["priority"], "NORMAL");

    // The access token is fetched again once it is due (poll: send until a second one is used).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while providers.fcm.token_requests() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the access token was never refreshed");
        let (_, jobs) = send_and_wait(&server, alert(&server, "cyd", "Ping").await).await;
        assert!(jobs.iter().all(|j| j.status == "done"), "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used: std::collections::HashSet<String> =
        providers.fcm.received().iter().filter(|r| r.status == 200).map(|r| r.access_token.clone()).collect();
    assert!(used.len() >= 2, "{used:?}");
    assert!(providers.fcm.received().iter().all(|r| r.status != 401), "an expired access token was sent");
    server.stop().await;
}

#[tokio::test]
async fn a_410_timestamp_in_seconds_is_read_as_seconds() {
    let providers = Providers::start(3600).await;
    let server = TestServer::start_with(0, |s| providers.configure(s)).await;
    let phone = sign_in(&server, "eve", &uuid(40), "IOS").await;
    register_token(&server, &phone.access, "APNS", &apns_token(40), None).await;
    let (_, jobs) = send_and_wait(&server, alert(&server, "eve", "Hi").await).await;
    assert_eq!(jobs[0].status, "done", "{jobs:?}");
    // Some relays send the 410 timestamp in seconds: still after the registration, so dead.
    providers.apns.script(&apns_token(40), Script::Gone(chrono::Utc::now().timestamp() + 60));
    let (_, jobs) = send_and_wait(&server, alert(&server, "eve", "Gone").await).await;
    assert_eq!(jobs[0].last_error.as_deref(), Some("APNs 410 Unregistered: token marked dead"));
    server.stop().await;
}
