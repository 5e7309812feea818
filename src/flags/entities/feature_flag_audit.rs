//! One change to a flag: who made it, when, and the definition before and after (JSON; none
//! before a creation, none after a deletion).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feature_flag_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub flag_key: String,
    pub actor: String,
    pub at: DateTimeUtc,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
