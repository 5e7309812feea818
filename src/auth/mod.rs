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
pub mod signals;

// The API other concerns use (they reach auth only through these names).
pub use self::bearer::BearerVerifier;
pub use self::devices::{list as list_devices, upsert as upsert_device};
pub use self::entities::device as device_entity;
pub use self::graphql::{CertificatePin, Device};

use crate::kernel::request::Platform;

/// The device signing in.
// What a client says about the device it runs on (login, register), and the API's
// `DeviceInput`: one shape, validated by `DeviceInfo::validated`.
#[derive(async_graphql::InputObject, Clone, Debug, Default, PartialEq, Eq)]
#[graphql(name = "DeviceInput")]
pub struct DeviceInfo {
    /// Client-generated UUID, kept in the Keychain/Keystore across launches.
    pub client_device_id: String,
    /// Platform.
    pub platform: Platform,
    /// Model identifier (`iPhone15,2`, `Pixel 8`).
    #[graphql(default)]
    pub model: String,
    /// OS version.
    #[graphql(default)]
    pub os_version: String,
    /// App version.
    #[graphql(default)]
    pub app_version: String,
    /// BCP 47 locale.
    #[graphql(default)]
    pub locale: String,
    /// IANA time zone.
    #[graphql(default)]
    pub timezone: String,
    /// APNs/FCM token, when the user allowed notifications.
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
