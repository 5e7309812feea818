//! The FCM HTTP v1 provider: a service account's RS256-signed JWT-bearer assertion is traded
//! at the account's `token_uri` for an OAuth access token, cached until shortly before its
//! `expires_in` (one refresh at a time), then `POST {endpoint}/v1/projects/{project}/messages:send`.
//! A `401` refreshes the token and retries once. Errors map from `error.details[].errorCode`:
//! `UNREGISTERED`, `SENDER_ID_MISMATCH` and an `INVALID_ARGUMENT` about the token are dead
//! tokens; `QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL` (429/5xx) are transient; the rest permanent.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::push::{
    error::PushError,
    payload::{self, Message},
    provider::{Delivered, SendError, retry_after},
    settings::{DeliverySettings, FcmSettings},
};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The fields of a service-account key file this provider uses.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key_id: String,
    private_key: String,
    client_email: String,
    token_uri: String,
}

/// An FCM client for one Firebase project.
pub struct Fcm {
    client: reqwest::Client,
    key: EncodingKey,
    key_id: String,
    client_email: String,
    token_uri: String,
    send_url: String,
    ttl_seconds: u64,
    access: tokio::sync::Mutex<Option<AccessToken>>,
}

#[derive(Clone)]
struct AccessToken {
    token: Arc<str>,
    refresh_at: Instant,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

fn credentials(reason: impl Into<String>) -> PushError {
    PushError::Credentials { what: "push.fcm", reason: reason.into() }
}

impl Fcm {
    /// The client, when `push.fcm.service_account_file` is configured.
    pub fn from_settings(settings: &FcmSettings, delivery: &DeliverySettings) -> Result<Option<Self>, PushError> {
        let Some(file) = &settings.service_account_file else { return Ok(None) };
        let bytes = std::fs::read(file).map_err(|e| credentials(format!("{}: {e}", file.display())))?;
        let account: ServiceAccount = serde_json::from_slice(&bytes)
            .map_err(|e| credentials(format!("{} is not a service-account key: {e}", file.display())))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|_| credentials(format!("{}: private_key is not an RSA PEM key", file.display())))?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(delivery.request_timeout_seconds.max(1)))
            .user_agent(concat!("mobile-bff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| credentials(format!("HTTP client: {e}")))?;
        let endpoint = settings.endpoint.trim_end_matches('/');
        Ok(Some(Self {
            client,
            key,
            key_id: account.private_key_id,
            client_email: account.client_email,
            send_url: format!("{endpoint}/v1/projects/{}/messages:send", account.project_id),
            token_uri: account.token_uri,
            ttl_seconds: delivery.ttl_seconds,
            access: tokio::sync::Mutex::new(None),
        }))
    }

    /// The cached access token, fetched again when it is due (or when `stale` was refused).
    async fn access_token(&self, stale: Option<&str>) -> Result<Arc<str>, SendError> {
        let mut cached = self.access.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
            && stale != Some(&*token.token)
        {
            return Ok(token.token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims =
            Assertion { iss: &self.client_email, scope: SCOPE, aud: &self.token_uri, iat: now, exp: now + 3600 };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| transient(format!("signing the FCM assertion: {e}"), None))?;
        let response = self
            .client
            .post(&self.token_uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)])
            .send()
            .await
            .map_err(|e| transient(format!("FCM token request failed: {e}"), None))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(transient(format!("FCM token endpoint answered {status}"), retry_after(response.headers())));
        }
        let token: TokenResponse =
            response.json().await.map_err(|e| transient(format!("FCM token response: {e}"), None))?;
        // Refresh a little before expiry: a minute, or a quarter of a short lifetime.
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = Duration::from_secs(60).min(lifetime / 4);
        let access = AccessToken { token: token.access_token.into(), refresh_at: Instant::now() + lifetime - margin };
        *cached = Some(access.clone());
        Ok(access.token)
    }

    /// Sends `message` to the registration `token`.
    pub async fn send(&self, token: &str, message: &Message) -> Result<Delivered, SendError> {
        let body = payload::fcm(message, token, self.ttl_seconds)?;
        let mut refused: Option<Arc<str>> = None;
        loop {
            let access = self.access_token(refused.as_deref()).await?;
            let response = self
                .client
                .post(&self.send_url)
                .bearer_auth(&*access)
                .json(&body)
                .send()
                .await
                .map_err(|e| transient(format!("FCM request failed: {}", e.without_url()), None))?;
            let status = response.status().as_u16();
            if response.status().is_success() {
                let answer: Value = response.json().await.unwrap_or_default();
                let name = answer["name"].as_str().map(str::to_owned);
                return Ok(Delivered { provider: "fcm", id: name });
            }
            if status == 401 && refused.is_none() {
                refused = Some(access);
                continue;
            }
            let retry = retry_after(response.headers());
            let error: Value = response.json().await.unwrap_or_default();
            return Err(classify(status, &error["error"], retry));
        }
    }
}

fn transient(reason: String, retry_after: Option<Duration>) -> SendError {
    SendError::Transient { reason, retry_after }
}

/// Maps an FCM error object (`{code, message, status, details: [{errorCode}, ...]}`).
fn classify(status: u16, error: &Value, retry_after: Option<Duration>) -> SendError {
    let details = error["details"].as_array().map(Vec::as_slice).unwrap_or_default();
    let code = details
        .iter()
        .find_map(|d| d["errorCode"].as_str())
        .or_else(|| error["status"].as_str())
        .unwrap_or("UNSPECIFIED_ERROR")
        .to_owned();
    let message = error["message"].as_str().unwrap_or_default();
    let about_token = message.to_ascii_lowercase().contains("token")
        || details.iter().any(|d| {
            d["fieldViolations"]
                .as_array()
                .is_some_and(|v| v.iter().any(|f| f["field"].as_str().is_some_and(|f| f.contains("token"))))
        });
    let reason = format!("FCM {status} {code}");
    match code.as_str() {
        "UNREGISTERED" | "SENDER_ID_MISMATCH" => SendError::TokenDead { reason, since: None },
        "INVALID_ARGUMENT" if about_token => SendError::TokenDead { reason, since: None },
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => SendError::Transient { reason, retry_after },
        _ if status == 429 || status >= 500 => SendError::Transient { reason, retry_after },
        _ => SendError::Permanent { reason },
    }
}
