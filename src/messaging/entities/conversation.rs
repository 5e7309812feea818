//! A conversation: `direct` (two users, one per pair through `direct_key`) or `group`.
//! `last_seq` is the sequence number of its newest message.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub title: Option<String>,
    pub direct_key: Option<String>,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
    pub last_seq: i64,
    pub last_activity_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
