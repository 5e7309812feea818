//! Persisted-document rows: lookup by id, insert (first writer wins), usage by app version.

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, sea_query::OnConflict};

use crate::kernel::documents::{document_usage, persisted_document};

/// The document with this id.
pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<persisted_document::Model>, DbErr> {
    persisted_document::Entity::find_by_id(id.to_owned()).one(conn).await
}

/// Stores a document; an existing id keeps its text, but an `apq` row is promoted to
/// `manifest` when a manifest lists it.
pub async fn upsert(conn: &impl ConnectionTrait, row: persisted_document::Model) -> Result<(), DbErr> {
    let promote = row.source == "manifest";
    let active = persisted_document::ActiveModel {
        id: Set(row.id),
        query: Set(row.query),
        operation_name: Set(row.operation_name),
        source: Set(row.source),
        created_at: Set(row.created_at),
    };
    let mut on_conflict = OnConflict::column(persisted_document::Column::Id);
    if promote {
        on_conflict.update_columns([persisted_document::Column::Source, persisted_document::Column::Query]);
    } else {
        on_conflict.do_nothing();
    }
    persisted_document::Entity::insert(active)
        .on_conflict(on_conflict)
        .try_insert()
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Records that `app_version` used document `id` (once per pair).
pub async fn record_usage(conn: &impl ConnectionTrait, id: &str, app_version: &str) -> Result<(), DbErr> {
    let row = document_usage::ActiveModel {
        document_id: Set(id.to_owned()),
        app_version: Set(app_version.to_owned()),
        first_seen_at: Set(crate::kernel::db::now()),
    };
    document_usage::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([document_usage::Column::DocumentId, document_usage::Column::AppVersion])
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// App versions that used document `id`, oldest first.
pub async fn usage(conn: &impl ConnectionTrait, id: &str) -> Result<Vec<document_usage::Model>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    document_usage::Entity::find()
        .filter(document_usage::Column::DocumentId.eq(id))
        .order_by_asc(document_usage::Column::FirstSeenAt)
        .all(conn)
        .await
}
