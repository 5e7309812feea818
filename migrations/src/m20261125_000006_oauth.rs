//! OAuth2 authorization codes (single use, short-lived, PKCE-bound).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthCodes {
    Table,
    CodeHash,
    ClientId,
    RedirectUri,
    UserId,
    CodeChallenge,
    ExpiresAt,
    UsedAt,
    DeviceId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthCodes::Table)
                    .if_not_exists()
                    .col(string_len(OauthCodes::CodeHash, 64).primary_key())
                    .col(string_len(OauthCodes::ClientId, 128))
                    .col(string_len(OauthCodes::RedirectUri, 2048))
                    .col(big_integer(OauthCodes::UserId))
                    .col(string_len(OauthCodes::CodeChallenge, 128))
                    .col(timestamp_with_time_zone(OauthCodes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthCodes::UsedAt))
                    .col(big_integer_null(OauthCodes::DeviceId))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OauthCodes::Table).if_exists().take()).await
    }
}
