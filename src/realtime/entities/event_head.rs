//! The head of a user's event log: the last assigned `seq` (its row lock orders appends).
//! The table's `pruned_through` column (default 0) is not read or written: retention deletes
//! log prefixes, so the oldest retained event marks the retention point.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub last_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
