//! One row of the job queue: a unit of background work of some `kind`, its JSON payload and
//! its delivery state (`queued` → `running` → `done` or `dead`; back to `queued` for a retry).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub payload: Json,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub reclaims: i32,
    pub run_at_ms: i64,
    pub lease_until_ms: Option<i64>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub result: Option<Json>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
