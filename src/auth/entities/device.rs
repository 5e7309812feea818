//! A device a user signed in from (one row per user and client device id), with its push
//! registration (token, provider, environment, provider feedback; managed by `crate::push`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub client_device_id: String,
    pub platform: String,
    pub model: String,
    pub os_version: String,
    pub app_version: String,
    pub locale: String,
    pub timezone: String,
    pub push_token: Option<String>,
    /// `APNS` or `FCM` (with `push_token`).
    pub push_provider: Option<String>,
    /// `SANDBOX` or `PRODUCTION` for APNs tokens.
    pub push_environment: Option<String>,
    /// When the token was last registered or removed.
    pub push_token_updated_at: Option<DateTimeUtc>,
    /// When a provider reported the token dead (it gets no more pushes).
    pub push_token_dead_at: Option<DateTimeUtc>,
    /// The provider's reason (`APNs 410 Unregistered`, `FCM 404 UNREGISTERED`, ...).
    pub push_token_dead_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
