//! A reference from a post to a media object: the one stored shape of an attached image or
//! video. Rows made from an upload carry its `media_id` and copy the server-computed facts
//! (type, dimensions, BlurHash, colour, status) when processing ends; `storage_key` is then the
//! object's content hash, from which every variant URL is built. Rows without `media_id` are
//! external references (the demo seed) whose key is served as it is.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "post_media")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub post_id: i64,
    pub position: i32,
    pub storage_key: String,
    pub mime_type: String,
    pub width: i32,
    pub height: i32,
    pub blurhash: String,
    pub alt_text: Option<String>,
    pub media_id: Option<i64>,
    pub status: String,
    pub dominant_color: Option<String>,
    pub variants: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
