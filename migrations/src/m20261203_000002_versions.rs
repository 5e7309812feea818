//! App version policy per platform (minimum, recommended, store URL) and the maintenance
//! switch, both changed at runtime by `mobile-bff versions set` / `mobile-bff maintenance`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AppVersionPolicies {
    Table,
    Platform,
    MinimumVersion,
    RecommendedVersion,
    StoreUrl,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MaintenanceWindows {
    Table,
    Id,
    Enabled,
    Message,
    Until,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AppVersionPolicies::Table)
                    .if_not_exists()
                    .col(string_len(AppVersionPolicies::Platform, 16).primary_key())
                    .col(string_len_null(AppVersionPolicies::MinimumVersion, 64))
                    .col(string_len_null(AppVersionPolicies::RecommendedVersion, 64))
                    .col(string_len_null(AppVersionPolicies::StoreUrl, 2048))
                    .col(timestamp_with_time_zone(AppVersionPolicies::UpdatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MaintenanceWindows::Table)
                    .if_not_exists()
                    .col(integer(MaintenanceWindows::Id).primary_key())
                    .col(boolean(MaintenanceWindows::Enabled))
                    .col(string_len(MaintenanceWindows::Message, 1000))
                    .col(timestamp_with_time_zone_null(MaintenanceWindows::Until))
                    .col(timestamp_with_time_zone(MaintenanceWindows::UpdatedAt))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MaintenanceWindows::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(AppVersionPolicies::Table).if_exists().take()).await
    }
}
