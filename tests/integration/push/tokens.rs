//! Push tokens on device records: validation, replace, remove, idempotency, several devices,
//! one token on one device only, sign-out stops pushes, and the log provider when no
//! credentials are configured.

use serde_json::json;

use mobile_bff::push::send;

use super::{REGISTER, alert, apns_token, device_push, fcm_token, register_token, sign_in};
use crate::common::{TestServer, code};

const PHONE: &str = "11111111-2222-4333-8444-555555555555";
const TABLET: &str = "66666666-7777-4888-9999-aaaaaaaaaaaa";

#[tokio::test]
async fn tokens_are_validated_replaced_removed_and_tied_to_one_device() {
    let server = TestServer::start_with(0, super::fast_jobs).await;
    let phone = sign_in(&server, "pia", PHONE, "IOS").await;
    let tablet = sign_in(&server, "pia", TABLET, "ANDROID").await;

    // Malformed tokens and options are refused with a code, not stored.
    for (provider, token, env) in [
        ("APNS", "not-hex".to_owned(), None),
        ("APNS", "ab".repeat(20), None),
        ("FCM", "short".to_owned(), None),
        ("FCM", format!("{}<script>", "a".repeat(40)), None),
        ("FCM", fcm_token("x"), Some("SANDBOX")),
    ] {
        let body = register_token(&server, &phone.access, provider, &token, env).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{provider} {token}: {body}");
    }
    // A token needs a device session (development tokens have none).
    let dev = server.token("pia").await;
    let body = register_token(&server, &dev, "APNS", &apns_token(1), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // Register, upper-case hex is normalised; the environment is recorded.
    let token = apns_token(1).to_uppercase();
    let body = register_token(&server, &phone.access, "APNS", &token, Some("SANDBOX")).await;
    let push = &body["data"]["registerPushToken"]["push"];
    assert_eq!(push["provider"], "APNS");
    assert_eq!(push["environment"], "SANDBOX");
    assert_eq!(push["deliverable"], true);
    assert_eq!(push["tokenSuffix"], apns_token(1)[56..].to_owned());
    // Replace (tokens change): the new one wins.
    register_token(&server, &phone.access, "APNS", &apns_token(2), None).await;
    let push = device_push(&server, &phone.access, &phone.device_id).await;
    assert_eq!(push["tokenSuffix"], apns_token(2)[56..].to_owned());
    // Several devices per user.
    register_token(&server, &tablet.access, "FCM", &fcm_token("t1"), None).await;
    assert_eq!(device_push(&server, &phone.access, &tablet.device_id).await["provider"], "FCM");
    // One token, one device: registering the phone's token on the tablet takes it off the phone.
    register_token(&server, &tablet.access, "APNS", &apns_token(2), None).await;
    assert!(device_push(&server, &phone.access, &phone.device_id).await.is_null());
    assert_eq!(device_push(&server, &phone.access, &tablet.device_id).await["provider"], "APNS");

    // Idempotent: the same key and input answer the same; another input with it is a conflict.
    let input = json!({ "provider": "APNS", "token": apns_token(3), "idempotencyKey": "push-key-0001" });
    let first = server.data(REGISTER, json!({ "input": input }), Some(&phone.access)).await;
    let again = server.data(REGISTER, json!({ "input": input }), Some(&phone.access)).await;
    assert_eq!(first, again);
    let other = json!({ "provider": "APNS", "token": apns_token(4), "idempotencyKey": "push-key-0001" });
    let body = server.gql(REGISTER, json!({ "input": other }), Some(&phone.access)).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");

    // Remove.
    let removed =
        server.data("mutation { removePushToken { id push { provider } } }", json!({}), Some(&phone.access)).await;
    assert!(removed["removePushToken"]["push"].is_null(), "{removed}");
    server.stop().await;
}

/// Runs every due `push.send` job once, on this task (the server's workers are off).
async fn drain(server: &TestServer) {
    let app = server.app();
    let handler = mobile_bff::push::worker::SendHandler(app.clone());
    for job in app.jobs.claim("push.send", 100).await.expect("claim") {
        mobile_bff::kernel::jobs::worker::run_one(&app.jobs, &handler, job).await;
    }
}

async fn results(server: &TestServer, queued: &mobile_bff::push::send::Queued) -> Vec<serde_json::Value> {
    let ids: Vec<i64> = queued.deliveries.iter().map(|d| d.1).collect();
    let mut rows = server.app().jobs.jobs(&ids).await.expect("jobs");
    rows.sort_by_key(|r| r.id);
    rows.into_iter().map(|r| json!({ "status": r.status, "result": r.result })).collect()
}

#[tokio::test]
async fn without_credentials_the_log_provider_records_and_signed_out_devices_get_nothing() {
    let server = TestServer::start_with(0, |s| s.jobs.workers = false).await;
    assert!(!server.app().push.providers.configured(mobile_bff::push::tokens::Provider::Apns));
    let phone = sign_in(&server, "lou", PHONE, "IOS").await;
    let tablet = sign_in(&server, "lou", TABLET, "ANDROID").await;
    register_token(&server, &phone.access, "APNS", &apns_token(7), None).await;
    register_token(&server, &tablet.access, "FCM", &fcm_token("lou"), None).await;

    let queued = send::enqueue(server.app(), alert(&server, "lou", "Hello").await).await.expect("enqueue");
    drain(&server).await;
    let logged = json!({ "status": "done", "result": { "outcome": "delivered", "provider": "log", "id": null } });
    assert_eq!(results(&server, &queued).await, vec![logged.clone(), logged.clone()]);
    assert!(server.metrics().await.contains("bff_push_sends_total{provider=\"APNS\",outcome=\"logged\"} 1"));

    // Queued for a device that then signs out: nothing is sent to it.
    let queued = send::enqueue(server.app(), alert(&server, "lou", "Later").await).await.expect("enqueue");
    server.data("mutation { logout }", json!({}), Some(&tablet.access)).await;
    drain(&server).await;
    let skipped = json!({ "status": "done", "result": { "outcome": "skipped", "reason": "device signed out" } });
    assert_eq!(results(&server, &queued).await, vec![logged, skipped]);
    // Once signed out, new notifications are not even queued for it.
    let queued = send::enqueue(server.app(), alert(&server, "lou", "Again").await).await.expect("enqueue");
    assert_eq!(queued.deliveries.len(), 1);
    server.stop().await;
}
