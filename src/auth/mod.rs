//! Accounts, device sessions and the token lifecycle.
//!
//! A session is a device: logging in from a device creates (or reuses) its row and starts a
//! refresh-token family bound to it. Access tokens carry the device id (`did`), so revoking
//! a device cuts off its access tokens at once (see [`gate::DeviceGate`]) as well as its
//! refresh family. Refresh tokens rotate on every use; presenting a used one again is theft
//! (the whole family is revoked and a security event recorded) — except within a short grace
//! window, where the same device's concurrent refresh gets the same new pair back.

pub mod accounts;
pub mod bearer;
pub mod biometric;
pub mod devices;
pub mod entities;
pub mod events;
pub mod gate;
pub mod graphql;
pub mod keys;
pub mod oauth;
pub mod oauth_routes;
pub mod password;
pub mod routes;
pub mod sessions;
pub mod settings;

pub use self::bearer::BearerVerifier;

use serde::{Deserialize, Serialize};

/// What a client says about the device it runs on (login, register).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Client-generated UUID kept in the Keychain/Keystore.
    pub client_device_id: String,
    /// `ios`, `android` or `web`.
    pub platform: String,
    /// Device model (`iPhone15,2`).
    pub model: String,
    /// OS version.
    pub os_version: String,
    /// App version.
    pub app_version: String,
    /// BCP 47 locale.
    pub locale: String,
    /// IANA time zone.
    pub timezone: String,
    /// APNs/FCM token, if the user allowed notifications.
    pub push_token: Option<String>,
}

/// A token pair issued to a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    /// Short-lived JWT.
    pub access_token: String,
    /// When the access token expires.
    pub access_expires_at: chrono::DateTime<chrono::Utc>,
    /// Opaque refresh token (shown once; only its hash is stored).
    pub refresh_token: String,
    /// When the refresh token expires if not used.
    pub refresh_expires_at: chrono::DateTime<chrono::Utc>,
    /// The user.
    pub user_id: i64,
    /// The device session.
    pub device_id: i64,
}
