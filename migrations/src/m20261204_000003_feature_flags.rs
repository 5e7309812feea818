//! Feature flags (Unleash's feature model as JSON, one row per flag), shared constraint
//! segments, and the audit log of every change (who, when, before, after).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FeatureFlags {
    Table,
    Key,
    Definition,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum FeatureFlagSegments {
    Table,
    Id,
    Definition,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FeatureFlagAudit {
    Table,
    Id,
    FlagKey,
    Actor,
    At,
    Before,
    After,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FeatureFlags::Table)
                    .if_not_exists()
                    .col(string_len(FeatureFlags::Key, 100).primary_key())
                    .col(text(FeatureFlags::Definition))
                    .col(timestamp_with_time_zone(FeatureFlags::UpdatedAt))
                    .col(string_len(FeatureFlags::UpdatedBy, 200))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeatureFlagSegments::Table)
                    .if_not_exists()
                    .col(big_integer(FeatureFlagSegments::Id).primary_key())
                    .col(text(FeatureFlagSegments::Definition))
                    .col(timestamp_with_time_zone(FeatureFlagSegments::UpdatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeatureFlagAudit::Table)
                    .if_not_exists()
                    .col(big_pk_auto(FeatureFlagAudit::Id))
                    .col(string_len(FeatureFlagAudit::FlagKey, 100))
                    .col(string_len(FeatureFlagAudit::Actor, 200))
                    .col(timestamp_with_time_zone(FeatureFlagAudit::At))
                    .col(text_null(FeatureFlagAudit::Before))
                    .col(text_null(FeatureFlagAudit::After))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("feature_flag_audit_by_flag")
                    .table(FeatureFlagAudit::Table)
                    .col(FeatureFlagAudit::FlagKey)
                    .col(FeatureFlagAudit::Id)
                    .if_not_exists()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FeatureFlagAudit::Table.into_iden(),
            FeatureFlagSegments::Table.into_iden(),
            FeatureFlags::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().take()).await?;
        }
        Ok(())
    }
}
