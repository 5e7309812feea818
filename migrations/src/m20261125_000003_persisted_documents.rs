//! Persisted documents (automatic persisted queries and trusted manifests) and which app
//! versions use them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PersistedDocuments {
    Table,
    Id,
    Query,
    OperationName,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DocumentUsage {
    Table,
    DocumentId,
    AppVersion,
    FirstSeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PersistedDocuments::Table)
                    .if_not_exists()
                    .col(string_len(PersistedDocuments::Id, 128).primary_key())
                    .col(text(PersistedDocuments::Query))
                    .col(string_len_null(PersistedDocuments::OperationName, 128))
                    .col(string_len(PersistedDocuments::Source, 16))
                    .col(timestamp_with_time_zone(PersistedDocuments::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DocumentUsage::Table)
                    .if_not_exists()
                    .col(string_len(DocumentUsage::DocumentId, 128))
                    .col(string_len(DocumentUsage::AppVersion, 64))
                    .col(timestamp_with_time_zone(DocumentUsage::FirstSeenAt))
                    .primary_key(Index::create().col(DocumentUsage::DocumentId).col(DocumentUsage::AppVersion))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DocumentUsage::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(PersistedDocuments::Table).if_exists().take()).await
    }
}
