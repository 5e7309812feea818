//! The revocation gate: is the device of an access token still signed in?
//!
//! Checked on every authenticated request. Answers are cached (moka) for
//! `auth.revocation_cache_seconds`; revoking a device on this replica invalidates its entry
//! at once, other replicas see it within the cache time.
//!
//! Revocations are also broadcast ([`DeviceGate::subscribe`]) so that long-lived connections
//! (WebSocket, SSE) close a revoked device's sockets; on PostgreSQL the listener feeds in
//! revocations made on other replicas (`crate::realtime::bus::spawn_pg_listener`).

use std::time::Duration;

use sea_orm::{DbErr, EntityTrait};

use crate::{auth::entities::device, kernel::db::Db};

/// A signed-in device as the gate knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// The client-generated id the device registered with (what it sends as `X-Device-Id`).
    pub client_device_id: Option<uuid::Uuid>,
}

/// Cached "is this device signed in" answers (`None`: signed out, unknown or not the user's).
pub struct DeviceGate {
    db: Db,
    signed_in: moka::sync::Cache<i64, Option<SignedIn>>,
    revoked: tokio::sync::broadcast::Sender<i64>,
}

impl std::fmt::Debug for DeviceGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceGate")
    }
}

impl DeviceGate {
    /// A gate over `db` caching answers for `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        let (revoked, _) = tokio::sync::broadcast::channel(1024);
        Self { db, signed_in: moka::sync::Cache::builder().max_capacity(200_000).time_to_live(ttl).build(), revoked }
    }

    /// Whether device `id` of `user_id` exists, belongs to the user and is not revoked.
    pub async fn allows(&self, user_id: i64, id: i64) -> Result<bool, DbErr> {
        Ok(self.signed_in(user_id, id).await?.is_some())
    }

    /// Device `id` of `user_id` when it is signed in, with its client device id.
    pub async fn signed_in(&self, user_id: i64, id: i64) -> Result<Option<SignedIn>, DbErr> {
        if let Some(answer) = self.signed_in.get(&id) {
            return Ok(answer);
        }
        let row = device::Entity::find_by_id(id).one(self.db.conn()).await?;
        let answer = row
            .filter(|d| d.user_id == user_id && d.revoked_at.is_none())
            .map(|d| SignedIn { client_device_id: uuid::Uuid::parse_str(&d.client_device_id).ok() });
        self.signed_in.insert(id, answer);
        Ok(answer)
    }

    /// Forgets the cached answer for a device (after signing it in again).
    pub fn forget(&self, id: i64) {
        self.signed_in.invalidate(&id);
    }

    /// A device was signed out: forget its cached answer and tell every subscriber.
    pub fn revoked(&self, id: i64) {
        self.signed_in.invalidate(&id);
        // No subscriber is fine: nothing holds a connection of that device.
        let _ = self.revoked.send(id);
    }

    /// Device ids as they are revoked (for closing their live connections).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.revoked.subscribe()
    }
}
