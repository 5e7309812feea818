//! Push notifications end to end: tokens on device records, the send path through the job
//! queue, and the real provider protocols against emulators on loopback (APNs over HTTP/2 +
//! TLS, FCM HTTP v1 with its OAuth token endpoint).

mod apns_emulator;
mod cli;
mod fcm_emulator;
mod history;
mod providers;
mod tokens;

use std::time::Duration;

use mobile_bff::{
    config::Settings,
    kernel::jobs::entity::Model as JobRow,
    push::{
        payload::{Category, Priority},
        send::{self, Outgoing},
    },
};
use serde_json::{Map, Value, json};

use self::{apns_emulator::ApnsEmulator, fcm_emulator::FcmEmulator};
use crate::common::TestServer;

pub const KEY_ID: &str = "KEY1234567";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "com.example.bff";
pub const CLIENT_EMAIL: &str = "push@test-project.iam.gserviceaccount.com";

/// Provider credentials written to a temp dir, and the emulators they point at.
pub struct Providers {
    pub apns: ApnsEmulator,
    pub fcm: FcmEmulator,
    pub dir: tempfile::TempDir,
}

impl Providers {
    /// Starts both emulators; FCM access tokens live `fcm_expires_in` seconds.
    pub async fn start(fcm_expires_in: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("P-256 key");
        std::fs::write(dir.path().join("AuthKey.p8"), key.serialize_pem()).expect("write key");
        let apns = ApnsEmulator::start(&key.public_key_pem(), KEY_ID, TEAM_ID, TOPIC).await;
        std::fs::write(dir.path().join("apns-ca.pem"), &apns.ca_pem).expect("write CA");
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let private = std::fs::read_to_string(format!("{fixtures}/fcm-test-service-account.key.pem")).expect("key");
        let public = std::fs::read_to_string(format!("{fixtures}/fcm-test-service-account.pub.pem")).expect("key");
        let fcm = FcmEmulator::start(&public, CLIENT_EMAIL, fcm_expires_in).await;
        let account = json!({
            "type": "service_account", "project_id": "test-project", "private_key_id": "fcmkey1",
            "private_key": private, "client_email": CLIENT_EMAIL, "token_uri": format!("{}/token", fcm.url),
        });
        std::fs::write(dir.path().join("service-account.json"), account.to_string()).expect("write account");
        Self { apns, fcm, dir }
    }

    /// Points `settings` at the emulators, with fast retries.
    pub fn configure(&self, settings: &mut Settings) {
        let apns = &mut settings.push.apns;
        apns.key_file = Some(self.dir.path().join("AuthKey.p8"));
        apns.key_id = KEY_ID.into();
        apns.team_id = TEAM_ID.into();
        apns.topic = TOPIC.into();
        apns.endpoint = Some(self.apns.url.clone());
        apns.ca_file = Some(self.dir.path().join("apns-ca.pem"));
        settings.push.fcm.service_account_file = Some(self.dir.path().join("service-account.json"));
        settings.push.fcm.endpoint = self.fcm.url.clone();
        fast_jobs(settings);
    }

    /// The environment variables that configure the same, for the command line.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            ("BFF_PUSH__APNS__KEY_FILE".into(), path("AuthKey.p8")),
            ("BFF_PUSH__APNS__KEY_ID".into(), KEY_ID.into()),
            ("BFF_PUSH__APNS__TEAM_ID".into(), TEAM_ID.into()),
            ("BFF_PUSH__APNS__TOPIC".into(), TOPIC.into()),
            ("BFF_PUSH__APNS__ENDPOINT".into(), self.apns.url.clone()),
            ("BFF_PUSH__APNS__CA_FILE".into(), path("apns-ca.pem")),
            ("BFF_PUSH__FCM__SERVICE_ACCOUNT_FILE".into(), path("service-account.json")),
            ("BFF_PUSH__FCM__ENDPOINT".into(), self.fcm.url.clone()),
        ]
    }
}

/// Quick polling and short backoff, so retries in tests take milliseconds.
pub fn fast_jobs(settings: &mut Settings) {
    settings.jobs.poll_interval_ms = 25;
    settings.jobs.backoff_base_ms = 20;
    settings.jobs.backoff_max_ms = 100;
}

/// A signed-in device: its access token and device id.
pub struct SignedIn {
    pub access: String,
    pub device_id: String,
}

/// Registers `handle` (first device) or logs in (next devices) from `client_device_id`.
pub async fn sign_in(server: &TestServer, handle: &str, client_device_id: &str, platform: &str) -> SignedIn {
    let device = json!({ "clientDeviceId": client_device_id, "platform": platform, "model": "Test", "osVersion": "1" });
    let email = format!("{handle}@example.com");
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken deviceId } }";
    let input = json!({ "email": email, "password": "correct horse battery", "handle": handle,
                        "displayName": handle, "device": device });
    let body = server.gql(register, json!({ "input": input }), None).await;
    let payload = if body.get("errors").is_none() {
        body["data"]["register"].clone()
    } else {
        let login = "mutation($input: LoginInput!) { login(input: $input) { accessToken deviceId } }";
        let input = json!({ "email": email, "password": "correct horse battery", "device": device });
        server.data(login, json!({ "input": input }), None).await["login"].clone()
    };
    SignedIn {
        access: payload["accessToken"].as_str().expect("access token").to_owned(),
        device_id: payload["deviceId"].as_str().expect("device id").to_owned(),
    }
}

pub const REGISTER: &str = "mutation($input: RegisterPushTokenInput!) { registerPushToken(input: $input) {
    id push { provider environment tokenSuffix registeredAt deliverable deadAt deadReason } } }";

/// Registers a push token on the device of `access`; returns the body.
pub async fn register_token(
    server: &TestServer,
    access: &str,
    provider: &str,
    token: &str,
    env: Option<&str>,
) -> Value {
    let input = json!({ "provider": provider, "token": token, "environment": env });
    server.gql(REGISTER, json!({ "input": input }), Some(access)).await
}

/// The push state of the device `device_id` as its owner sees it.
pub async fn device_push(server: &TestServer, access: &str, device_id: &str) -> Value {
    let devices = server
        .data("{ devices { id push { provider deliverable deadReason tokenSuffix } } }", json!({}), Some(access))
        .await;
    devices["devices"].as_array().expect("list").iter().find(|d| d["id"] == device_id).expect("device")["push"].clone()
}

/// An alert for the user `handle`.
pub async fn alert(server: &TestServer, handle: &str, title: &str) -> Outgoing {
    let user =
        mobile_bff::social::store::users::by_handle(server.app().db.conn(), handle).await.expect("q").expect("user");
    Outgoing {
        user_id: user.id,
        category: Category::System,
        priority: Priority::High,
        title: title.into(),
        body: "body text".into(),
        silent: false,
        data: Map::new(),
        collapse_key: None,
    }
}

/// Queues `outgoing` and waits (polling, bounded) until every job reaches `done` or `dead`.
pub async fn send_and_wait(server: &TestServer, outgoing: Outgoing) -> (i64, Vec<JobRow>) {
    let queued = send::enqueue(server.app(), outgoing).await.expect("enqueue");
    let ids: Vec<i64> = queued.deliveries.iter().map(|(_, job)| *job).collect();
    (queued.notification_id, wait_for_jobs(server, &ids).await)
}

/// Polls the jobs until all are finished (done or dead), with a deadline.
pub async fn wait_for_jobs(server: &TestServer, ids: &[i64]) -> Vec<JobRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut rows = server.app().jobs.jobs(ids).await.expect("jobs");
        rows.sort_by_key(|r| r.id);
        if rows.len() == ids.len() && rows.iter().all(|r| r.status == "done" || r.status == "dead") {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "jobs did not finish: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An APNs-shaped token (64 hex digits) ending in `tag`.
pub fn apns_token(tag: u8) -> String {
    format!("{:064x}", u64::from(tag) + 0xabc0_0000)
}

/// An FCM-shaped token ending in `tag`.
pub fn fcm_token(tag: &str) -> String {
    format!("fcm-token-abcdefghijklmnopqrstuvwxyz:APA91b{tag}")
}
