//! The APNs provider: HTTP/2 over TLS with token-based authentication, on reqwest.
//!
//! The provider token is an ES256 JWT signed with the `.p8` key (`kid` = key id, `iss` = team
//! id, `iat`), cached and re-signed after [`TOKEN_REFRESH`] (Apple refuses tokens older than an
//! hour and re-signing more often than every 20 minutes); a `403 ExpiredProviderToken` re-signs
//! at once and retries the request once. Every request goes over one pooled, multiplexed
//! HTTP/2 connection per host (ALPN `h2` only). Responses map onto [`SendError`]: 410
//! `Unregistered`/`ExpiredToken` and 400 `BadDeviceToken` are dead tokens, 429 and 5xx are
//! transient (honouring `Retry-After`), every other refusal is permanent.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::push::{
    error::PushError,
    payload::{self, Message},
    provider::{Delivered, SendError, retry_after},
    settings::{APNS_PRODUCTION, APNS_SANDBOX, ApnsSettings, DeliverySettings},
    tokens::Environment,
};

/// How long a provider token is reused (between Apple's 20 and 60 minutes).
pub const TOKEN_REFRESH: Duration = Duration::from_secs(50 * 60);

/// An APNs client for one app (topic) and key.
pub struct Apns {
    client: reqwest::Client,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    endpoint: Option<String>,
    ttl_seconds: u64,
    token: Mutex<Option<ProviderToken>>,
}

#[derive(Clone)]
struct ProviderToken {
    jwt: Arc<str>,
    issued: Instant,
    iat: i64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    reason: String,
    /// Milliseconds since the epoch (410 only).
    timestamp: Option<i64>,
}

fn credentials(reason: impl Into<String>) -> PushError {
    PushError::Credentials { what: "push.apns", reason: reason.into() }
}

impl Apns {
    /// The client, when `push.apns.key_file` is configured.
    pub fn from_settings(settings: &ApnsSettings, delivery: &DeliverySettings) -> Result<Option<Self>, PushError> {
        let Some(key_file) = &settings.key_file else { return Ok(None) };
        let pem = std::fs::read(key_file).map_err(|e| credentials(format!("key_file {}: {e}", key_file.display())))?;
        let key = EncodingKey::from_ec_pem(&pem)
            .map_err(|_| credentials(format!("key_file {} is not a PKCS#8 P-256 key (.p8)", key_file.display())))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_while_idle(true)
            .pool_idle_timeout(None)
            .timeout(Duration::from_secs(delivery.request_timeout_seconds.max(1)))
            .user_agent(concat!("mobile-bff/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).map_err(|e| credentials(format!("ca_file {}: {e}", ca.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|_| credentials(format!("ca_file {} is not a PEM certificate", ca.display())))?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|e| credentials(format!("HTTP/2 client: {e}")))?;
        let apns = Self {
            client,
            key,
            key_id: settings.key_id.clone(),
            team_id: settings.team_id.clone(),
            topic: settings.topic.clone(),
            endpoint: settings.endpoint.as_ref().map(|e| e.trim_end_matches('/').to_owned()),
            ttl_seconds: delivery.ttl_seconds,
            token: Mutex::new(None),
        };
        // Sign once now: a key that cannot sign fails at start, not at the first push.
        apns.provider_token(None).map_err(|_| credentials("the key cannot sign ES256 tokens"))?;
        Ok(Some(apns))
    }

    /// The cached provider token, re-signed when older than [`TOKEN_REFRESH`] or when it is
    /// `stale` (the one APNs just called expired; another request may already have replaced it).
    fn provider_token(&self, stale: Option<&str>) -> Result<Arc<str>, SendError> {
        let mut cached = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = cached.as_ref()
            && token.issued.elapsed() < TOKEN_REFRESH
            && stale != Some(&*token.jwt)
        {
            return Ok(token.jwt.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        // A replacement is always a new token: ES256 signatures here are deterministic, so a
        // token re-signed within the same second as the refused one would be identical.
        let previous = cached.as_ref().map_or(i64::MIN, |t| t.iat);
        let iat = Utc::now().timestamp().max(previous.saturating_add(1));
        let claims = Claims { iss: &self.team_id, iat };
        let jwt: Arc<str> = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| SendError::Transient {
                reason: format!("signing the provider token: {e}"),
                retry_after: None,
            })?
            .into();
        *cached = Some(ProviderToken { jwt: jwt.clone(), issued: Instant::now(), iat });
        Ok(jwt)
    }

    /// The `apns-topic` for a push type: the bundle id, with the suffix Apple requires for the
    /// types that have one.
    pub fn topic_for(&self, push_type: &str) -> String {
        match push_type {
            "voip" => format!("{}.voip", self.topic),
            "complication" => format!("{}.complication", self.topic),
            "fileprovider" => format!("{}.pushkit.fileprovider", self.topic),
            "liveactivity" => format!("{}.push-type.liveactivity", self.topic),
            _ => self.topic.clone(),
        }
    }

    fn base(&self, environment: Environment) -> &str {
        match (&self.endpoint, environment) {
            (Some(endpoint), _) => endpoint,
            (None, Environment::Sandbox) => APNS_SANDBOX,
            (None, Environment::Production) => APNS_PRODUCTION,
        }
    }

    /// Sends `message` to `token`; `apns_id` (a UUID) identifies it in APNs' answer and logs.
    pub async fn send(
        &self,
        token: &str,
        environment: Environment,
        message: &Message,
        apns_id: &str,
    ) -> Result<Delivered, SendError> {
        let request = payload::apns(message)?;
        let url = format!("{}/3/device/{token}", self.base(environment));
        let expiration = Utc::now().timestamp().saturating_add(i64::try_from(self.ttl_seconds).unwrap_or(0));
        let mut used: Option<Arc<str>> = None;
        loop {
            let jwt = self.provider_token(used.as_deref())?;
            let mut call = self
                .client
                .post(&url)
                .header(reqwest::header::AUTHORIZATION, format!("bearer {jwt}"))
                .header("apns-topic", self.topic_for(request.push_type))
                .header("apns-push-type", request.push_type)
                .header("apns-priority", request.priority)
                .header("apns-expiration", expiration.to_string())
                .header("apns-id", apns_id)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.body.clone());
            if let Some(collapse) = &message.collapse_key {
                call = call.header("apns-collapse-id", collapse);
            }
            let response = call.send().await.map_err(|e| SendError::Transient {
                reason: format!("APNs request failed: {}", without_url(&e)),
                retry_after: None,
            })?;
            let status = response.status().as_u16();
            if status == 200 {
                let id = response.headers().get("apns-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                return Ok(Delivered { provider: "apns", id: id.or_else(|| Some(apns_id.to_owned())) });
            }
            let retry = retry_after(response.headers());
            let refusal: Refusal = response.json().await.unwrap_or_default();
            if status == 403 && refusal.reason == "ExpiredProviderToken" && used.is_none() {
                tracing::info!("APNs provider token expired: re-signing and retrying once");
                used = Some(jwt);
                continue;
            }
            return Err(classify(status, refusal, retry));
        }
    }
}

/// A reqwest error without its URL (the URL holds the device token).
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "transport"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    format!("{kind}: {}", causes.join(": "))
}

fn classify(status: u16, refusal: Refusal, retry_after: Option<Duration>) -> SendError {
    let reason = if refusal.reason.is_empty() { format!("HTTP {status}") } else { refusal.reason };
    match (status, reason.as_str()) {
        (410, _) | (400, "BadDeviceToken") => {
            // Milliseconds per Apple; a value that only makes sense as seconds is read as such.
            let since = refusal.timestamp.and_then(|t| {
                if t < 100_000_000_000 {
                    DateTime::<Utc>::from_timestamp(t, 0)
                } else {
                    DateTime::from_timestamp_millis(t)
                }
            });
            SendError::TokenDead { reason: format!("APNs {status} {reason}"), since }
        }
        (429, _) | (500..=599, _) => SendError::Transient { reason: format!("APNs {status} {reason}"), retry_after },
        // A wrong key, team or expired token: not this push's fault; retry after the backoff
        // while an operator fixes the credentials.
        (403, _) => SendError::Transient { reason: format!("APNs {status} {reason}"), retry_after },
        _ => SendError::Permanent { reason: format!("APNs {status} {reason}") },
    }
}
