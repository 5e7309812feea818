//! Device-bound biometric keys and their single-use challenges.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeviceKeys {
    Table,
    DeviceId,
    PublicKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BiometricChallenges {
    Table,
    Id,
    DeviceId,
    Nonce,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceKeys::Table)
                    .if_not_exists()
                    .col(big_integer(DeviceKeys::DeviceId).primary_key())
                    .col(text(DeviceKeys::PublicKey))
                    .col(timestamp_with_time_zone(DeviceKeys::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BiometricChallenges::Table)
                    .if_not_exists()
                    .col(string_len(BiometricChallenges::Id, 36).primary_key())
                    .col(big_integer(BiometricChallenges::DeviceId))
                    .col(string_len(BiometricChallenges::Nonce, 64))
                    .col(timestamp_with_time_zone(BiometricChallenges::ExpiresAt))
                    .col(timestamp_with_time_zone_null(BiometricChallenges::UsedAt))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BiometricChallenges::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(DeviceKeys::Table).if_exists().take()).await
    }
}
