//! A committed part of a resumable upload: bytes `[start_offset, start_offset + length)` are
//! in the staged part named `part`. Written in the same transaction that advances the
//! upload's offset, so the parts of an upload always tile `[0, offset)` exactly.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media_upload_parts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub media_id: i64,
    pub start_offset: i64,
    pub length: i64,
    pub part: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
