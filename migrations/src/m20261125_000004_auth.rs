//! Accounts, devices, refresh-token families and security events.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    UserId,
    Email,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    ClientDeviceId,
    Platform,
    Model,
    OsVersion,
    AppVersion,
    Locale,
    Timezone,
    PushToken,
    CreatedAt,
    LastSeenAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    FamilyId,
    UserId,
    DeviceId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    FamilyExpiresAt,
    UsedAt,
    ReplacedBy,
    RevokedAt,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    DeviceId,
    Kind,
    Detail,
    CreatedAt,
}

fn fk_user(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(table, col).to(Users::Table, Users::Id).on_delete(ForeignKeyAction::Cascade).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .if_not_exists()
                    .col(big_integer(Credentials::UserId).primary_key())
                    .col(string_len_uniq(Credentials::Email, 254))
                    .col(string_len(Credentials::PasswordHash, 200))
                    .col(timestamp_with_time_zone(Credentials::CreatedAt))
                    .foreign_key(&mut fk_user(Credentials::Table, Credentials::UserId))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Devices::Id))
                    .col(big_integer(Devices::UserId))
                    .col(string_len(Devices::ClientDeviceId, 36))
                    .col(string_len(Devices::Platform, 16))
                    .col(string_len(Devices::Model, 100))
                    .col(string_len(Devices::OsVersion, 50))
                    .col(string_len(Devices::AppVersion, 50))
                    .col(string_len(Devices::Locale, 35))
                    .col(string_len(Devices::Timezone, 64))
                    .col(string_len_null(Devices::PushToken, 4096))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::LastSeenAt))
                    .col(timestamp_with_time_zone_null(Devices::RevokedAt))
                    .foreign_key(&mut fk_user(Devices::Table, Devices::UserId))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_user_client")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .col(Devices::ClientDeviceId)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RefreshTokens::Id))
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(big_integer(RefreshTokens::UserId))
                    .col(big_integer(RefreshTokens::DeviceId))
                    .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RefreshTokens::FamilyExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(big_integer_null(RefreshTokens::ReplacedBy))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(&mut fk_user(RefreshTokens::Table, RefreshTokens::UserId))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_device")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::DeviceId)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(SecurityEvents::Id))
                    .col(big_integer(SecurityEvents::UserId))
                    .col(big_integer_null(SecurityEvents::DeviceId))
                    .col(string_len(SecurityEvents::Kind, 40))
                    .col(json(SecurityEvents::Detail))
                    .col(timestamp_with_time_zone(SecurityEvents::CreatedAt))
                    .foreign_key(&mut fk_user(SecurityEvents::Table, SecurityEvents::UserId))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_user_keyset")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::UserId)
                    .col(SecurityEvents::CreatedAt)
                    .col(SecurityEvents::Id)
                    .if_not_exists()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SecurityEvents::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Devices::Table.into_iden(),
            Credentials::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().take()).await?;
        }
        Ok(())
    }
}
