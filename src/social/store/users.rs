//! User queries.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::social::entities::user;

/// Users with the given ids (missing ids are simply absent).
pub async fn by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::Id.is_in(ids.iter().copied())).all(conn).await
}

/// The user with this handle (handles are stored lower-case).
pub async fn by_handle(conn: &impl ConnectionTrait, handle: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::Handle.eq(handle.to_ascii_lowercase())).one(conn).await
}

/// The oldest account (the demo user of the playground's dev login).
pub async fn first(conn: &impl ConnectionTrait) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().order_by_asc(user::Column::Id).one(conn).await
}
