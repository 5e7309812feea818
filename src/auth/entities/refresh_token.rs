//! One refresh token of a family (a device's session); only its SHA-256 is stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub family_id: String,
    pub user_id: i64,
    pub device_id: i64,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub family_expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub replaced_by: Option<i64>,
    pub revoked_at: Option<DateTimeUtc>,
    /// Hex HMAC key deriving this family's next token from the presented one (`None`: a row
    /// from before per-family keys, derived with the signing key's).
    pub successor_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
