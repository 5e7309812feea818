//! `mobile-bff push send` against the emulators: an alert, a silent push, per-device outcomes,
//! and no request for a token APNs answered 410.

use super::{Providers, apns_emulator::Script, apns_token, fcm_token, register_token, sign_in};
use crate::common::TestServer;

/// Runs the binary without blocking the runtime the emulators run on.
async fn mobile_bff(server: &TestServer, providers: &Providers, args: &[&str]) -> String {
    let data = tempfile::tempdir().expect("tempdir");
    let url = &server.database.as_ref().expect("database").url;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"))
        .env_remove("BFF_TEST_DATABASE_URL")
        .env("BFF_LOG", "warn")
        .env("BFF_DATA_DIR", data.path())
        .env("BFF_DATABASE_URL", url)
        .envs(providers.env())
        .args(args)
        .output()
        .await
        .expect("run mobile-bff");
    assert!(output.status.success(), "push send failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test]
async fn push_send_delivers_alerts_and_silent_pushes_and_reports_each_device() {
    let providers = Providers::start(3600).await;
    let server = TestServer::start_with(0, |s| providers.configure(s)).await;
    let phone = sign_in(&server, "dee", "aaaaaaaa-0000-4000-8000-000000000001", "IOS").await;
    let tablet = sign_in(&server, "dee", "aaaaaaaa-0000-4000-8000-000000000002", "ANDROID").await;
    register_token(&server, &phone.access, "APNS", &apns_token(9), None).await;
    register_token(&server, &tablet.access, "FCM", &fcm_token("dee"), None).await;

    let out = mobile_bff(
        &server,
        &providers,
        &["push", "send", "--user", "dee", "--title", "Hello", "--body", "From the CLI"],
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("notification "), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].contains("APNS") && lines[1].contains("delivered via apns"), "{out}");
    assert!(lines[2].contains("FCM") && lines[2].contains("delivered via fcm"), "{out}");
    let apns = providers.apns.received().pop().expect("APNs request");
    assert_eq!(apns.body["aps"]["alert"], serde_json::json!({ "title": "Hello", "body": "From the CLI" }));
    assert_eq!(apns.headers["apns-push-type"], "alert");
    assert_eq!(apns.headers["apns-priority"], "10");
    let fcm = providers.fcm.received().pop().expect("FCM request");
    assert_eq!(fcm.message["notification"]["title"], "Hello");

    let out = mobile_bff(
        &server,
        &providers,
        &["push", "send", "--user", "dee", "--silent", "--data", r#"{"sync":"inbox"}"#],
    )
    .await;
    assert!(out.contains("delivered via apns"), "{out}");
    let apns = providers.apns.received().pop().expect("APNs request");
    assert_eq!(apns.body["aps"], serde_json::json!({ "content-available": 1 }));
    assert_eq!(apns.body["sync"], "inbox");
    assert_eq!(apns.headers["apns-push-type"], "background");
    assert_eq!(apns.headers["apns-priority"], "5");
    assert!(providers.fcm.received().pop().expect("FCM").message.get("notification").is_none());

    // APNs answers 410 for the phone: reported, and the next send makes no request for it.
    providers.apns.script(&apns_token(9), Script::Gone(chrono::Utc::now().timestamp_millis() + 60_000));
    let out = mobile_bff(&server, &providers, &["push", "send", "--user", "dee", "--title", "Gone?"]).await;
    assert!(out.contains("failed: APNs 410 Unregistered: token marked dead"), "{out}");
    let before = providers.apns.received().len();
    let out =
        mobile_bff(&server, &providers, &["push", "send", "--user", "dee", "--title", "Again", "--priority", "normal"])
            .await;
    assert_eq!(out.lines().count(), 2, "only the FCM device is left: {out}");
    assert_eq!(providers.apns.received().len(), before, "no request for a token answered 410");

    // The dead letter lists the 410.
    let dead = mobile_bff(&server, &providers, &["jobs", "list", "--kind", "push.send"]).await;
    assert!(dead.contains("push.send attempts=1 APNs 410 Unregistered: token marked dead"), "{dead}");

    // `devices seed` signs a test device in with a token; the next send reaches it.
    let seeded =
        mobile_bff(&server, &providers, &["devices", "seed", "--user", "dee", "--apns", &apns_token(10)]).await;
    assert!(seeded.starts_with("device ") && seeded.contains(&format!("APNS {}", apns_token(10))), "{seeded}");
    let out = mobile_bff(&server, &providers, &["push", "send", "--user", "dee", "--title", "Seeded"]).await;
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(providers.apns.received().pop().expect("request").token, apns_token(10));
    server.stop().await;
}
