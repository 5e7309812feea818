//! A media object: one upload of one user, from creation (`uploading`, its offset advancing)
//! through processing to `ready` (dimensions, BlurHash, colour and its variant ladder known)
//! or `failed` (with a reason code). `size_bytes` is charged to the user's quota from
//! creation until the row is deleted (expired, orphaned).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media_objects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub upload_id: String,
    pub user_id: i64,
    pub purpose: String,
    pub kind: String,
    pub filename: String,
    pub declared_mime: String,
    pub size_bytes: i64,
    pub offset_bytes: i64,
    pub sha256: Option<String>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub failure_detail: Option<String>,
    pub content_hash: Option<String>,
    pub mime_type: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub blurhash: Option<String>,
    pub dominant_color: Option<String>,
    pub variants: Option<Json>,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    pub processed_at_ms: Option<i64>,
    pub attached_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
