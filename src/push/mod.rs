//! Push notifications: device tokens on the device rows, the notification record, and
//! delivery through APNs (HTTP/2, token auth) and FCM (HTTP v1) — or, for a provider without
//! credentials, the clearly labelled log provider — as `push.send` jobs on the kernel's
//! durable job queue (one job per notification and device, retried with backoff,
//! dead-lettered with the provider's reason).
//!
//! - [`tokens`]: register, replace, remove a token; provider feedback marks it dead.
//! - [`send`]: record a notification and queue its sends ([`worker`] runs them).
//! - [`payload`]: the APNs and FCM wire forms and their size limits.
//! - [`apns`], [`fcm`], [`provider`]: the providers.
//! - [`graphql`]: `registerPushToken`, `removePushToken`; [`types`]: the device's push state.
//!
//! See docs/push-setup.md.

pub mod apns;
pub mod cli;
pub mod entities;
pub mod error;
pub mod fcm;
pub mod graphql;
pub mod history;
pub mod payload;
pub mod provider;
pub mod send;
pub mod settings;
pub mod tokens;
pub mod types;
pub mod worker;

pub use self::error::PushError;
pub use self::payload::{Category, Priority};
pub use self::send::{Outgoing, enqueue};
pub use self::types::PushRegistration;
use self::{provider::Providers, settings::PushSettings};

/// The push concern's long-lived state (`app.push`).
#[derive(Debug)]
pub struct Push {
    /// APNs, FCM and the log fallback.
    pub providers: Providers,
}

impl Push {
    /// Loads the configured credentials.
    pub fn new(settings: &PushSettings) -> Result<Self, PushError> {
        Ok(Self { providers: Providers::new(settings)? })
    }
}
