//! The push state of a device as the app sees it on its device record (`Device.push`).

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::{
    auth::device_entity as device,
    push::tokens::{Environment, Provider},
};

/// A device's push registration.
#[derive(Clone, Debug, SimpleObject)]
pub struct PushRegistration {
    /// The provider.
    pub provider: Provider,
    /// The APNs environment (APNs tokens only).
    pub environment: Option<Environment>,
    /// The token's last 8 characters (to tell registrations apart without exposing tokens).
    pub token_suffix: String,
    /// When the token was registered.
    pub registered_at: Option<DateTime<Utc>>,
    /// False once the provider said the token is no longer valid: register a fresh one.
    pub deliverable: bool,
    /// When the provider reported the token dead.
    pub dead_at: Option<DateTime<Utc>>,
    /// The provider's reason (`APNs 410 Unregistered`, `FCM 404 UNREGISTERED`, ...).
    pub dead_reason: Option<String>,
}

impl PushRegistration {
    /// The registration on a device row, if it has a token.
    pub fn of(row: &device::Model) -> Option<Self> {
        let token = row.push_token.as_deref()?;
        let provider = row.push_provider.as_deref().and_then(Provider::parse)?;
        let start = token.len().saturating_sub(8);
        Some(Self {
            provider,
            environment: (provider == Provider::Apns).then(|| Environment::parse(row.push_environment.as_deref())),
            token_suffix: token.get(start..).unwrap_or_default().to_owned(),
            registered_at: row.push_token_updated_at,
            deliverable: row.push_token_dead_at.is_none(),
            dead_at: row.push_token_dead_at,
            dead_reason: row.push_token_dead_reason.clone(),
        })
    }
}
