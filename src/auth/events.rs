//! Security events: new-device logins, device changes, revocations, refresh-token reuse.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::{
    auth::entities::security_event,
    kernel::db::{
        self,
        keyset::{Keyset, Page, older_than},
    },
};

/// Kinds of events (stored as their snake_case name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// First login from a device.
    NewDeviceLogin,
    /// A known device reported another model, OS version or app version.
    DeviceChanged,
    /// A device was signed out by the user (from another device, or all of them).
    DeviceRevoked,
    /// A used refresh token was presented again: its family was revoked.
    RefreshTokenReuse,
    /// A failed login for this account.
    LoginFailed,
    /// A sign-in or refresh whose device signals (platform, OS version, model) contradict the
    /// device's record.
    DeviceSignalsContradict,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewDeviceLogin => "new_device_login",
            Self::DeviceChanged => "device_changed",
            Self::DeviceRevoked => "device_revoked",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::LoginFailed => "login_failed",
            Self::DeviceSignalsContradict => "device_signals_contradict",
        }
    }
}

/// Records an event.
pub async fn record(
    conn: &impl ConnectionTrait,
    user_id: i64,
    device_id: Option<i64>,
    kind: EventKind,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    security_event::ActiveModel {
        user_id: Set(user_id),
        device_id: Set(device_id),
        kind: Set(kind.as_str().to_owned()),
        detail: Set(detail),
        created_at: Set(db::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// One page of a user's events, newest first.
pub async fn page(
    conn: &impl ConnectionTrait,
    user_id: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<security_event::Model>, DbErr> {
    let mut query = security_event::Entity::find().filter(security_event::Column::UserId.eq(user_id));
    if let Some(after) = after {
        query = query.filter(older_than(security_event::Column::CreatedAt, security_event::Column::Id, after));
    }
    let rows = query
        .order_by_desc(security_event::Column::CreatedAt)
        .order_by_desc(security_event::Column::Id)
        .limit(limit as u64 + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}
