//! Push settings (`[push]` in the TOML file, `BFF_PUSH__*` in the environment): APNs
//! token-based credentials (`push.apns.*`), the FCM service account (`push.fcm.*`) and the
//! delivery limits. A provider without credentials falls back to the log provider, which only
//! records what would be sent; it is never used when credentials are configured.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Apple's production host (`push.apns.endpoint` when unset, for production tokens).
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// Apple's development host (for `SANDBOX` tokens when `push.apns.endpoint` is unset).
pub const APNS_SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// Google's FCM host.
pub const FCM_ENDPOINT: &str = "https://fcm.googleapis.com";

/// Push settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// Apple Push Notification service.
    pub apns: ApnsSettings,
    /// Firebase Cloud Messaging (HTTP v1).
    pub fcm: FcmSettings,
    /// Delivery limits.
    pub delivery: DeliverySettings,
}

/// APNs with token-based (`.p8`) authentication.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApnsSettings {
    /// The `.p8` signing key downloaded from the Apple developer account (PKCS#8 PEM).
    pub key_file: Option<PathBuf>,
    /// The key's id (10 characters, shown next to the key): the JWT `kid`.
    pub key_id: String,
    /// The team id (10 characters): the JWT `iss`.
    pub team_id: String,
    /// The app's bundle id: `apns-topic` (with `.voip` etc. appended for push types that need it).
    pub topic: String,
    /// Base URL of the APNs server. Unset: Apple's production host for `PRODUCTION` tokens and
    /// the sandbox host for `SANDBOX` tokens; set (a relay, an emulator): every token goes there.
    pub endpoint: Option<String>,
    /// An extra trusted root certificate (PEM) for `endpoint` (private relays, test emulators).
    pub ca_file: Option<PathBuf>,
}

/// FCM HTTP v1 with a service account.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FcmSettings {
    /// The service-account JSON key (`project_id`, `private_key`, `client_email`, `token_uri`).
    pub service_account_file: Option<PathBuf>,
    /// Base URL of the FCM API (`POST {endpoint}/v1/projects/{project_id}/messages:send`).
    pub endpoint: String,
}

impl Default for FcmSettings {
    fn default() -> Self {
        Self { service_account_file: None, endpoint: FCM_ENDPOINT.to_owned() }
    }
}

/// Delivery limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Sends in flight at once per replica (over the one multiplexed connection per provider).
    pub concurrency: usize,
    /// Attempts per device before a send is dead-lettered.
    pub max_attempts: u32,
    /// How long a provider keeps trying an offline device, in seconds (`apns-expiration`, FCM
    /// `ttl`).
    pub ttl_seconds: u64,
    /// Timeout of one provider request, in seconds.
    pub request_timeout_seconds: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self { concurrency: 64, max_attempts: 5, ttl_seconds: 24 * 3600, request_timeout_seconds: 10 }
    }
}

impl PushSettings {
    /// Checks that configured credentials are complete.
    pub fn validate(&self) -> Result<(), String> {
        let apns = &self.apns;
        if apns.key_file.is_some() && (apns.key_id.is_empty() || apns.team_id.is_empty() || apns.topic.is_empty()) {
            return Err("push.apns.key_file needs push.apns.key_id, push.apns.team_id and push.apns.topic".into());
        }
        if self.delivery.concurrency == 0 || self.delivery.max_attempts == 0 {
            return Err("push.delivery.concurrency and push.delivery.max_attempts must be positive".into());
        }
        if self.delivery.ttl_seconds > 28 * 24 * 3600 {
            return Err("push.delivery.ttl_seconds must be at most 28 days (FCM's limit)".into());
        }
        Ok(())
    }
}
