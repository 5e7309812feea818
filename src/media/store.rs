//! Media queries: media objects by upload id, the quota sum, the offset compare-and-set with
//! its part row, status transitions, and the copy of processed facts onto post media rows.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, sea_query::Expr,
};

use crate::media::entities::{media_object, post_media, upload_part};

/// Stored statuses.
pub mod status {
    /// Bytes are still arriving.
    pub const UPLOADING: &str = "uploading";
    /// Every byte arrived; the processing job is queued or running.
    pub const PROCESSING: &str = "processing";
    /// Processed: dimensions, placeholder and variants are known.
    pub const READY: &str = "ready";
    /// Processing failed (`failure_reason` says why).
    pub const FAILED: &str = "failed";
}

/// The media object with this upload id.
pub async fn by_upload_id(conn: &impl ConnectionTrait, upload_id: &str) -> Result<Option<media_object::Model>, DbErr> {
    media_object::Entity::find().filter(media_object::Column::UploadId.eq(upload_id)).one(conn).await
}

/// The media object with this upload id, locked for the rest of the transaction on
/// PostgreSQL (SQLite's writer lock already serialises writers).
pub async fn by_upload_id_for_update(
    conn: &impl ConnectionTrait,
    upload_id: &str,
) -> Result<Option<media_object::Model>, DbErr> {
    let query = media_object::Entity::find().filter(media_object::Column::UploadId.eq(upload_id));
    match conn.get_database_backend() {
        DbBackend::Postgres => query.lock_exclusive().one(conn).await,
        _ => query.one(conn).await,
    }
}

/// The media object with this id.
pub async fn by_id(conn: &impl ConnectionTrait, id: i64) -> Result<Option<media_object::Model>, DbErr> {
    media_object::Entity::find_by_id(id).one(conn).await
}

/// Bytes charged to `user`: every media object they have, at its declared size.
pub async fn used_bytes(conn: &impl ConnectionTrait, user: i64) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS used FROM media_objects WHERE user_id = $1"
        }
        _ => "SELECT COALESCE(SUM(size_bytes), 0) AS used FROM media_objects WHERE user_id = ?",
    };
    let row = conn.query_one_raw(Statement::from_sql_and_values(backend, sql, [user.into()])).await?;
    let used: i64 = match row {
        Some(row) => row.try_get("", "used")?,
        None => 0,
    };
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Locks `user`'s row for the rest of the transaction on PostgreSQL, so two concurrent
/// creations cannot both spend the same remaining quota.
pub async fn lock_user(conn: &impl ConnectionTrait, user: i64) -> Result<(), DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres {
        let sql = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
        conn.query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, [user.into()])).await?;
    }
    Ok(())
}

/// Advances the offset of upload `media_id` from `start` to `start + length` and records the
/// part — only when the offset still is `start` and the upload is still uploading. False when
/// another request moved it first (nothing is written then).
pub async fn commit_part(
    conn: &impl ConnectionTrait,
    media_id: i64,
    start: i64,
    length: i64,
    part: &str,
) -> Result<bool, DbErr> {
    let moved = media_object::Entity::update_many()
        .col_expr(media_object::Column::OffsetBytes, Expr::value(start.saturating_add(length)))
        .filter(media_object::Column::Id.eq(media_id))
        .filter(media_object::Column::OffsetBytes.eq(start))
        .filter(media_object::Column::Status.eq(status::UPLOADING))
        .exec(conn)
        .await?;
    if moved.rows_affected != 1 {
        return Ok(false);
    }
    upload_part::Entity::insert(upload_part::ActiveModel {
        media_id: Set(media_id),
        start_offset: Set(start),
        length: Set(length),
        part: Set(part.to_owned()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(true)
}

/// The committed parts of upload `media_id`, in offset order.
pub async fn parts(conn: &impl ConnectionTrait, media_id: i64) -> Result<Vec<upload_part::Model>, DbErr> {
    upload_part::Entity::find()
        .filter(upload_part::Column::MediaId.eq(media_id))
        .order_by_asc(upload_part::Column::StartOffset)
        .all(conn)
        .await
}

/// Moves an upload from `uploading` to `processing` with its content hash; false when it was
/// not uploading any more (another request finished it).
pub async fn mark_processing(
    conn: &impl ConnectionTrait,
    media_id: i64,
    content_hash: &str,
    now_ms: i64,
) -> Result<bool, DbErr> {
    let moved = media_object::Entity::update_many()
        .col_expr(media_object::Column::Status, Expr::value(status::PROCESSING))
        .col_expr(media_object::Column::ContentHash, Expr::value(content_hash))
        .col_expr(media_object::Column::CompletedAtMs, Expr::value(now_ms))
        .filter(media_object::Column::Id.eq(media_id))
        .filter(media_object::Column::Status.eq(status::UPLOADING))
        .exec(conn)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Marks a media object failed with `reason` (a code) and `detail` (for the user).
pub async fn mark_failed(
    conn: &impl ConnectionTrait,
    media_id: i64,
    reason: &str,
    detail: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    media_object::Entity::update_many()
        .col_expr(media_object::Column::Status, Expr::value(status::FAILED))
        .col_expr(media_object::Column::FailureReason, Expr::value(reason))
        .col_expr(media_object::Column::FailureDetail, Expr::value(detail))
        .col_expr(media_object::Column::ProcessedAtMs, Expr::value(now_ms))
        .filter(media_object::Column::Id.eq(media_id))
        .exec(conn)
        .await?;
    post_media::Entity::update_many()
        .col_expr(post_media::Column::Status, Expr::value(status::FAILED))
        .filter(post_media::Column::MediaId.eq(media_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// What processing found out about an image.
#[derive(Clone, Debug)]
pub struct Processed {
    /// The served type (`image/jpeg`, `image/png`, …) sniffed from the bytes.
    pub mime_type: String,
    /// Upright width.
    pub width: i32,
    /// Upright height.
    pub height: i32,
    /// BlurHash of the upright image.
    pub blurhash: String,
    /// `#rrggbb`.
    pub dominant_color: String,
    /// The ladder (see `variants`).
    pub variants: serde_json::Value,
}

/// Marks a media object ready and copies its facts onto every post media row that uses it.
pub async fn mark_ready(
    conn: &impl ConnectionTrait,
    media_id: i64,
    done: &Processed,
    now_ms: i64,
) -> Result<(), DbErr> {
    media_object::Entity::update_many()
        .col_expr(media_object::Column::Status, Expr::value(status::READY))
        .col_expr(media_object::Column::MimeType, Expr::value(done.mime_type.clone()))
        .col_expr(media_object::Column::Width, Expr::value(done.width))
        .col_expr(media_object::Column::Height, Expr::value(done.height))
        .col_expr(media_object::Column::Blurhash, Expr::value(done.blurhash.clone()))
        .col_expr(media_object::Column::DominantColor, Expr::value(done.dominant_color.clone()))
        .col_expr(media_object::Column::Variants, Expr::value(done.variants.clone()))
        .col_expr(media_object::Column::ProcessedAtMs, Expr::value(now_ms))
        .filter(media_object::Column::Id.eq(media_id))
        .exec(conn)
        .await?;
    post_media::Entity::update_many()
        .col_expr(post_media::Column::Status, Expr::value(status::READY))
        .col_expr(post_media::Column::MimeType, Expr::value(done.mime_type.clone()))
        .col_expr(post_media::Column::Width, Expr::value(done.width))
        .col_expr(post_media::Column::Height, Expr::value(done.height))
        .col_expr(post_media::Column::Blurhash, Expr::value(done.blurhash.clone()))
        .col_expr(post_media::Column::DominantColor, Expr::value(done.dominant_color.clone()))
        .col_expr(post_media::Column::Variants, Expr::value(done.variants.clone()))
        .filter(post_media::Column::MediaId.eq(media_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Unfinished uploads whose expiry passed (at most `limit`).
pub async fn expired(conn: &impl ConnectionTrait, now_ms: i64, limit: u64) -> Result<Vec<media_object::Model>, DbErr> {
    media_object::Entity::find()
        .filter(media_object::Column::Status.eq(status::UPLOADING))
        .filter(media_object::Column::ExpiresAtMs.lt(now_ms))
        .limit(limit)
        .all(conn)
        .await
}

/// Finished uploads never attached to anything and finished before `before_ms`.
pub async fn orphaned(
    conn: &impl ConnectionTrait,
    before_ms: i64,
    limit: u64,
) -> Result<Vec<media_object::Model>, DbErr> {
    media_object::Entity::find()
        .filter(media_object::Column::Status.ne(status::UPLOADING))
        .filter(media_object::Column::AttachedAtMs.is_null())
        .filter(media_object::Column::CompletedAtMs.lt(before_ms))
        .limit(limit)
        .all(conn)
        .await
}

/// How many media objects share this content hash.
pub async fn sharing_content(conn: &impl ConnectionTrait, hash: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    media_object::Entity::find().filter(media_object::Column::ContentHash.eq(hash)).count(conn).await
}

/// Deletes a media object row (its parts go with it).
pub async fn delete(conn: &impl ConnectionTrait, media_id: i64) -> Result<(), DbErr> {
    upload_part::Entity::delete_many().filter(upload_part::Column::MediaId.eq(media_id)).exec(conn).await?;
    media_object::Entity::delete_by_id(media_id).exec(conn).await?;
    Ok(())
}
