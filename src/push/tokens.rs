//! Push tokens, always held on a device row of a user (never alone): register or replace the
//! current device's token, remove it, and record provider feedback that a token is dead.
//!
//! A token registered on one device is removed from any other device row that still holds it
//! (a phone handed to another account, a reinstall with a new device id), so one physical
//! token is only ever pushed to once per notification. Signing a device out clears its token
//! in the same transaction (`auth::devices::revoke`), and the send worker re-reads the device
//! before every attempt, so a queued push to a signed-out device never goes out.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};
use serde::{Deserialize, Serialize};

use crate::{
    auth::device_entity as device,
    kernel::{db, error::DomainError},
    push::error::PushError,
};

/// The push service a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "PushProvider")]
pub enum Provider {
    /// Apple Push Notification service (iOS, iPadOS, macOS).
    Apns,
    /// Firebase Cloud Messaging (Android).
    Fcm,
}

impl Provider {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apns => "APNS",
            Self::Fcm => "FCM",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "APNS" => Some(Self::Apns),
            "FCM" => Some(Self::Fcm),
            _ => None,
        }
    }
}

/// The APNs environment a token was issued for (by the app's `aps-environment` entitlement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "ApnsEnvironment")]
pub enum Environment {
    /// Development builds (Xcode, TestFlight internal): Apple's sandbox host.
    Sandbox,
    /// App Store and TestFlight builds.
    #[default]
    Production,
}

impl Environment {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "SANDBOX",
            Self::Production => "PRODUCTION",
        }
    }

    /// Parses the stored form (anything else is production).
    pub fn parse(value: Option<&str>) -> Self {
        if value == Some("SANDBOX") { Self::Sandbox } else { Self::Production }
    }
}

/// Checks and normalises a token: APNs tokens are hexadecimal, 64 to 200 digits (32 bytes
/// today, Apple says they may grow), lower-cased; FCM registration tokens are 32 to 4096
/// characters of `[A-Za-z0-9_:.-]`.
pub fn validate(provider: Provider, token: &str) -> Result<String, PushError> {
    let token = token.trim();
    match provider {
        Provider::Apns => {
            let ok = (64..=200).contains(&token.len())
                && token.len().is_multiple_of(2)
                && token.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(PushError::InvalidInput(
                    "an APNs token is 64 to 200 hexadecimal digits (the device token's bytes as hex)".into(),
                ));
            }
            Ok(token.to_ascii_lowercase())
        }
        Provider::Fcm => {
            let ok = (32..=4096).contains(&token.len())
                && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.'));
            if !ok {
                return Err(PushError::InvalidInput(
                    "an FCM registration token is 32 to 4096 characters of A-Z a-z 0-9 _ : - .".into(),
                ));
            }
            Ok(token.to_owned())
        }
    }
}

/// A registration to store.
#[derive(Clone, Debug, Serialize)]
pub struct Registration {
    /// Provider.
    pub provider: Provider,
    /// The validated token.
    pub token: String,
    /// APNs environment (production for FCM).
    pub environment: Environment,
}

/// Sets the push token of the user's device `device_id` (replacing any earlier one, clearing
/// a dead mark) and removes the same token from every other device row.
pub async fn register(
    conn: &impl ConnectionTrait,
    user_id: i64,
    device_id: i64,
    registration: &Registration,
) -> Result<device::Model, PushError> {
    let row = owned_device(conn, user_id, device_id).await?;
    clear_elsewhere(conn, device_id, &registration.token).await?;
    let mut active: device::ActiveModel = row.into();
    active.push_token = Set(Some(registration.token.clone()));
    active.push_provider = Set(Some(registration.provider.as_str().to_owned()));
    active.push_environment = Set(Some(registration.environment.as_str().to_owned()));
    active.push_token_updated_at = Set(Some(db::now()));
    active.push_token_dead_at = Set(None);
    active.push_token_dead_reason = Set(None);
    Ok(active.update(conn).await?)
}

/// Removes the push token of the user's device `device_id`.
pub async fn remove(conn: &impl ConnectionTrait, user_id: i64, device_id: i64) -> Result<device::Model, PushError> {
    let row = owned_device(conn, user_id, device_id).await?;
    let mut active: device::ActiveModel = row.into();
    active.push_token = Set(None);
    active.push_provider = Set(None);
    active.push_environment = Set(None);
    active.push_token_updated_at = Set(Some(db::now()));
    active.push_token_dead_at = Set(None);
    active.push_token_dead_reason = Set(None);
    Ok(active.update(conn).await?)
}

async fn owned_device(conn: &impl ConnectionTrait, user_id: i64, device_id: i64) -> Result<device::Model, PushError> {
    device::Entity::find_by_id(device_id)
        .one(conn)
        .await?
        .filter(|d| d.user_id == user_id && d.revoked_at.is_none())
        .ok_or(PushError::Domain(DomainError::NotFound("device")))
}

async fn clear_elsewhere(conn: &impl ConnectionTrait, device_id: i64, token: &str) -> Result<(), PushError> {
    device::Entity::update_many()
        .col_expr(device::Column::PushToken, Expr::value(Option::<String>::None))
        .col_expr(device::Column::PushProvider, Expr::value(Option::<String>::None))
        .filter(device::Column::PushToken.eq(token))
        .filter(device::Column::Id.ne(device_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Provider feedback: marks `token` dead on `device_id` — unless the device registered it (again)
/// after `since`, the moment the provider says the token stopped being valid (APNs 410
/// `timestamp`), or the device holds another token by now. Returns whether it was marked.
pub async fn mark_dead(
    conn: &impl ConnectionTrait,
    device_id: i64,
    token: &str,
    reason: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, PushError> {
    let mut update = device::Entity::update_many()
        .col_expr(device::Column::PushTokenDeadAt, Expr::value(db::now()))
        .col_expr(device::Column::PushTokenDeadReason, Expr::value(reason.chars().take(64).collect::<String>()))
        .filter(device::Column::Id.eq(device_id))
        .filter(device::Column::PushToken.eq(token));
    if let Some(since) = since {
        update = update.filter(
            sea_orm::Condition::any()
                .add(device::Column::PushTokenUpdatedAt.is_null())
                .add(device::Column::PushTokenUpdatedAt.lte(since)),
        );
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}
