//! Idempotency-key rows: claim a key inside a write transaction, store the result, look it
//! up on a retry, and sweep expired keys.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TryInsertResult,
    sea_query::OnConflict,
};

use crate::kernel::idempotency::idempotency_key;

/// What a claim is about.
#[derive(Clone, Debug)]
pub struct Claim<'a> {
    /// The user who sent the key.
    pub user_id: i64,
    /// The client's key.
    pub key: &'a str,
    /// Mutation name.
    pub operation: &'a str,
    /// SHA-256 of the operation's input.
    pub request_hash: &'a str,
    /// When the key is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// Claims the key; `false` when another (live) attempt already holds it. An expired row for
/// the same key is replaced.
pub async fn try_claim(conn: &impl ConnectionTrait, claim: &Claim<'_>, now: DateTime<Utc>) -> Result<bool, DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::UserId.eq(claim.user_id))
        .filter(idempotency_key::Column::Key.eq(claim.key))
        .filter(idempotency_key::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?;
    let row = idempotency_key::ActiveModel {
        user_id: Set(claim.user_id),
        key: Set(claim.key.to_owned()),
        operation: Set(claim.operation.to_owned()),
        request_hash: Set(claim.request_hash.to_owned()),
        response: Set(None),
        created_at: Set(now),
        expires_at: Set(claim.expires_at),
    };
    let result = idempotency_key::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([idempotency_key::Column::UserId, idempotency_key::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0))
}

/// Stores the first result under the claimed key.
pub async fn complete(
    conn: &impl ConnectionTrait,
    user_id: i64,
    key: &str,
    response: serde_json::Value,
) -> Result<(), DbErr> {
    idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::Response, sea_orm::sea_query::Expr::value(response))
        .filter(idempotency_key::Column::UserId.eq(user_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}

/// The stored row of a key, if any.
pub async fn find(
    conn: &impl ConnectionTrait,
    user_id: i64,
    key: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    idempotency_key::Entity::find_by_id((user_id, key.to_owned())).one(conn).await
}

/// Deletes expired keys; returns how many.
pub async fn sweep(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let result =
        idempotency_key::Entity::delete_many().filter(idempotency_key::Column::ExpiresAt.lt(now)).exec(conn).await?;
    Ok(result.rows_affected)
}
