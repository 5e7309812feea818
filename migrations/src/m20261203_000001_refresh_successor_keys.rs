//! A per-family successor key on refresh tokens: the next token of a family is derived from
//! the presented one with this key (HMAC-SHA256), so any replica — whatever its signing key —
//! answers the grace window of concurrent refreshes with the same successor. Rows written
//! before this column exist keep `NULL` and the signing-key derivation they were issued with.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    SuccessorKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(string_len_null(RefreshTokens::SuccessorKey, 64))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(RefreshTokens::Table).drop_column(RefreshTokens::SuccessorKey).take())
            .await
    }
}
