//! The providers behind one interface: APNs for `APNS` tokens, FCM for `FCM` tokens, each
//! only when its credentials are configured; otherwise the **log provider**, which sends
//! nothing and records in the server log what would have been sent (labelled as such in the
//! log line and in the job's outcome). The log provider is never used for a provider whose
//! credentials are present.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::push::{
    apns::Apns,
    error::PushError,
    fcm::Fcm,
    payload::{self, Message},
    settings::PushSettings,
    tokens::{Environment, Provider},
};

/// A send the provider accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// `apns`, `fcm` or `log`.
    pub provider: &'static str,
    /// The provider's id for the push (`apns-id`, FCM message name), if any.
    pub id: Option<String>,
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The provider says the token is no longer valid (`since`: when it stopped being valid,
    /// from APNs' 410 `timestamp`).
    TokenDead {
        /// The provider's reason (`Unregistered`, `BadDeviceToken`, `UNREGISTERED`, ...).
        reason: String,
        /// When the token became invalid, if the provider said.
        since: Option<DateTime<Utc>>,
    },
    /// Retrying cannot help (payload too large, token not for this topic, ...).
    Permanent {
        /// The provider's reason.
        reason: String,
    },
    /// Try again later (429, 5xx, network), after `retry_after` when the provider said.
    Transient {
        /// The provider's reason.
        reason: String,
        /// `Retry-After`.
        retry_after: Option<Duration>,
    },
}

impl From<PushError> for SendError {
    fn from(err: PushError) -> Self {
        match err {
            PushError::PayloadTooLarge { .. } | PushError::InvalidInput(_) => {
                Self::Permanent { reason: err.to_string() }
            }
            other => Self::Transient { reason: other.to_string(), retry_after: None },
        }
    }
}

/// `Retry-After` in seconds (the form APNs and FCM send).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The configured providers.
pub struct Providers {
    apns: Option<Apns>,
    fcm: Option<Fcm>,
    ttl_seconds: u64,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// Loads the credentials that are configured.
    pub fn new(settings: &PushSettings) -> Result<Self, PushError> {
        let apns = Apns::from_settings(&settings.apns, &settings.delivery)?;
        let fcm = Fcm::from_settings(&settings.fcm, &settings.delivery)?;
        if apns.is_none() {
            tracing::warn!("push: no APNs credentials (push.apns.key_file): APNs tokens go to the LOG provider");
        }
        if fcm.is_none() {
            tracing::warn!(
                "push: no FCM credentials (push.fcm.service_account_file): FCM tokens go to the LOG provider"
            );
        }
        Ok(Self { apns, fcm, ttl_seconds: settings.delivery.ttl_seconds })
    }

    /// Whether `provider` has real credentials (otherwise its tokens go to the log provider).
    pub fn configured(&self, provider: Provider) -> bool {
        match provider {
            Provider::Apns => self.apns.is_some(),
            Provider::Fcm => self.fcm.is_some(),
        }
    }

    /// Sends `message` to one device token.
    pub async fn send(
        &self,
        provider: Provider,
        token: &str,
        environment: Environment,
        message: &Message,
        push_id: &str,
    ) -> Result<Delivered, SendError> {
        match (provider, &self.apns, &self.fcm) {
            (Provider::Apns, Some(apns), _) => apns.send(token, environment, message, push_id).await,
            (Provider::Fcm, _, Some(fcm)) => fcm.send(token, message).await,
            (provider, _, _) => self.log(provider, token, message),
        }
    }

    /// The log provider: builds the payload the real provider would get (so limits still
    /// apply) and logs it instead of sending.
    fn log(&self, provider: Provider, token: &str, message: &Message) -> Result<Delivered, SendError> {
        let body = match provider {
            Provider::Apns => String::from_utf8_lossy(&payload::apns(message)?.body).into_owned(),
            Provider::Fcm => payload::fcm(message, "<token>", self.ttl_seconds)?.to_string(),
        };
        let suffix: String = token.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        tracing::info!(
            provider = provider.as_str(),
            token_suffix = %suffix,
            notification = message.notification_id,
            payload = %body,
            "push LOG PROVIDER (no credentials configured): would send, nothing was sent"
        );
        Ok(Delivered { provider: "log", id: None })
    }
}
