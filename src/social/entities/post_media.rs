//! A reference from a post to a media object (the object itself lives in media storage).

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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
