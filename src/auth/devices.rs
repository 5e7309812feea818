//! The device registry: upsert on login, list, revoke one, revoke all, and the sign-out use
//! case that does either in its own transaction.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};
use serde_json::json;

use crate::auth::{
    DeviceInfo,
    events::{self, EventKind},
};
use crate::{
    auth::entities::{device, refresh_token},
    kernel::{
        db::{self, Db},
        error::DomainError,
        request::{Platform, valid_locale, valid_timezone},
    },
};

fn bounded(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!("device.{field} must be at most {max} printable characters")));
    }
    Ok(value.to_owned())
}

impl DeviceInfo {
    /// Validates and normalises every field.
    pub fn validated(self) -> Result<Self, DomainError> {
        let client_device_id = uuid::Uuid::parse_str(self.client_device_id.trim())
            .map_err(|_| DomainError::invalid("device.clientDeviceId must be a UUID"))?
            .to_string();
        let timezone = self.timezone.trim().to_owned();
        if !timezone.is_empty() && !valid_timezone(&timezone) {
            return Err(DomainError::invalid("device.timezone must be an IANA zone name"));
        }
        let locale = self.locale.trim().to_owned();
        if !locale.is_empty() && !valid_locale(&locale) {
            return Err(DomainError::invalid("device.locale must be a BCP 47 language tag"));
        }
        let push_token = match self.push_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(token)
                if token.len() <= 4096
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.')) =>
            {
                Some(token.to_owned())
            }
            Some(_) => return Err(DomainError::invalid("device.pushToken is malformed")),
        };
        Ok(Self {
            client_device_id,
            platform: self.platform,
            model: bounded("model", &self.model, 100)?,
            os_version: bounded("osVersion", &self.os_version, 50)?,
            app_version: bounded("appVersion", &self.app_version, 50)?,
            locale,
            timezone,
            push_token,
        })
    }
}

/// Creates or updates the user's row for this device, recording a new-device login or a
/// change of model / OS / app version. A previously revoked device is signed in again.
pub async fn upsert(
    conn: &impl ConnectionTrait,
    user_id: i64,
    info: &DeviceInfo,
) -> Result<device::Model, DomainError> {
    let now = db::now();
    let existing = device::Entity::find()
        .filter(device::Column::UserId.eq(user_id))
        .filter(device::Column::ClientDeviceId.eq(info.client_device_id.as_str()))
        .one(conn)
        .await?;
    let Some(existing) = existing else {
        let row = device::ActiveModel {
            user_id: Set(user_id),
            client_device_id: Set(info.client_device_id.clone()),
            platform: Set(info.platform.as_str().to_owned()),
            model: Set(info.model.clone()),
            os_version: Set(info.os_version.clone()),
            app_version: Set(info.app_version.clone()),
            locale: Set(info.locale.clone()),
            timezone: Set(info.timezone.clone()),
            push_token: Set(info.push_token.clone()),
            push_provider: Set(info.push_token.as_ref().map(|_| legacy_provider(info.platform).to_owned())),
            push_environment: Set(info.push_token.as_ref().map(|_| "PRODUCTION".to_owned())),
            push_token_updated_at: Set(info.push_token.as_ref().map(|_| now)),
            push_token_dead_at: Set(None),
            push_token_dead_reason: Set(None),
            created_at: Set(now),
            last_seen_at: Set(now),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        let detail = json!({ "platform": row.platform, "model": row.model, "osVersion": row.os_version });
        events::record(conn, user_id, Some(row.id), EventKind::NewDeviceLogin, detail).await?;
        return Ok(row);
    };
    let signals = crate::auth::signals::Signals {
        platform: Some(info.platform),
        os_version: Some(info.os_version.clone()),
        model: None,
    };
    let contradictions = crate::auth::signals::contradictions(&existing, &signals);
    if !contradictions.is_empty() {
        let detail = json!({ "contradictions": contradictions, "on": "login" });
        events::record(conn, user_id, Some(existing.id), EventKind::DeviceSignalsContradict, detail).await?;
    }
    let changed = existing.model != info.model
        || existing.os_version != info.os_version
        || existing.app_version != info.app_version;
    if changed {
        let detail = json!({
            "from": { "model": existing.model, "osVersion": existing.os_version, "appVersion": existing.app_version },
            "to": { "model": info.model, "osVersion": info.os_version, "appVersion": info.app_version },
        });
        events::record(conn, user_id, Some(existing.id), EventKind::DeviceChanged, detail).await?;
    }
    let token_changed = info.push_token.is_some() && existing.push_token != info.push_token;
    let mut active: device::ActiveModel = existing.into();
    active.platform = Set(info.platform.as_str().to_owned());
    active.model = Set(info.model.clone());
    active.os_version = Set(info.os_version.clone());
    active.app_version = Set(info.app_version.clone());
    active.locale = Set(info.locale.clone());
    active.timezone = Set(info.timezone.clone());
    if token_changed {
        active.push_token = Set(info.push_token.clone());
        active.push_provider = Set(Some(legacy_provider(info.platform).to_owned()));
        active.push_environment = Set(Some("PRODUCTION".to_owned()));
        active.push_token_updated_at = Set(Some(now));
        active.push_token_dead_at = Set(None);
        active.push_token_dead_reason = Set(None);
    }
    active.last_seen_at = Set(now);
    active.revoked_at = Set(None);
    Ok(active.update(conn).await?)
}

/// The provider of a `pushToken` given at sign-in (`DeviceInput.pushToken`): APNs on iOS, FCM
/// elsewhere, in the production environment. `registerPushToken` says it explicitly.
fn legacy_provider(platform: Platform) -> &'static str {
    if platform == Platform::Ios { "APNS" } else { "FCM" }
}

/// The user's devices, most recently seen first (revoked ones included, marked).
pub async fn list(conn: &impl ConnectionTrait, user_id: i64) -> Result<Vec<device::Model>, DomainError> {
    Ok(device::Entity::find()
        .filter(device::Column::UserId.eq(user_id))
        .order_by_desc(device::Column::LastSeenAt)
        .order_by_desc(device::Column::Id)
        .all(conn)
        .await?)
}

/// Signs a device out: marks it revoked, revokes its refresh tokens and removes its push
/// token. `event` says whether to record a security event (not for a plain logout).
pub async fn revoke(conn: &impl ConnectionTrait, user_id: i64, device_id: i64, event: bool) -> Result<(), DomainError> {
    let device = device::Entity::find_by_id(device_id)
        .one(conn)
        .await?
        .filter(|d| d.user_id == user_id)
        .ok_or(DomainError::NotFound("device"))?;
    let now = db::now();
    let mut active: device::ActiveModel = device.into();
    active.revoked_at = Set(Some(now));
    // No more pushes: the send worker re-reads the device before every attempt.
    active.push_token = Set(None);
    active.push_provider = Set(None);
    active.push_environment = Set(None);
    active.push_token_updated_at = Set(Some(now));
    active.update(conn).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::DeviceId.eq(device_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    if event {
        // Revoked (not a plain logout): its biometric key can no longer sign it in.
        super::biometric::forget(conn, device_id).await?;
        events::record(conn, user_id, Some(device_id), EventKind::DeviceRevoked, json!({})).await?;
    }
    Ok(())
}

/// Signs every device of the user out; returns their ids.
pub async fn revoke_all(conn: &impl ConnectionTrait, user_id: i64) -> Result<Vec<i64>, DomainError> {
    let ids: Vec<i64> =
        list(conn, user_id).await?.into_iter().filter(|d| d.revoked_at.is_none()).map(|d| d.id).collect();
    for id in &ids {
        revoke(conn, user_id, *id, true).await?;
    }
    Ok(ids)
}

/// Which devices a sign-out covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOut {
    /// The current device signs itself out (`logout`: no security event).
    Current(i64),
    /// One of the user's devices is revoked (a lost phone: a security event).
    Device(i64),
    /// Every device of the user.
    Everywhere,
}

/// Signs the user's devices out in one transaction; with a `notify_channel` (PostgreSQL)
/// the other replicas hear of it through NOTIFY, sent at commit. Returns the devices signed
/// out: the caller cuts their access tokens and live connections on this replica now.
pub async fn sign_out(
    db: &Db,
    notify_channel: Option<&str>,
    user_id: i64,
    which: SignOut,
) -> Result<Vec<i64>, DomainError> {
    let tx = db.begin_write().await?;
    let devices = match which {
        SignOut::Current(device) => {
            revoke(&*tx, user_id, device, false).await?;
            vec![device]
        }
        SignOut::Device(device) => {
            revoke(&*tx, user_id, device, true).await?;
            vec![device]
        }
        SignOut::Everywhere => revoke_all(&*tx, user_id).await?,
    };
    if let Some(channel) = notify_channel {
        crate::realtime::notify_revoked(&*tx, channel, &devices).await?;
    }
    tx.commit().await?;
    Ok(devices)
}
