//! The durable job queue (one table for every kind of background work: push sends now, media
//! processing next), the push registration of a device (provider, APNs environment, when it
//! was registered and whether the provider reported it dead) folded into the device row, and
//! the per-user notification record.
//!
//! Job times (`run_at_ms`, `lease_until_ms`, `created_at_ms`) are Unix milliseconds in
//! `BIGINT` columns: the claim statement compares them on every poll, and integers compare the
//! same way on SQLite and PostgreSQL without any text-format subtlety.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Payload,
    Status,
    Attempts,
    MaxAttempts,
    Reclaims,
    RunAtMs,
    LeaseUntilMs,
    LockedBy,
    LastError,
    Result,
    CreatedAtMs,
    FinishedAtMs,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    PushProvider,
    PushEnvironment,
    PushTokenUpdatedAt,
    PushTokenDeadAt,
    PushTokenDeadReason,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    Category,
    Priority,
    Title,
    Body,
    Data,
    Silent,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Jobs::Id))
                    .col(string_len(Jobs::Kind, 64))
                    .col(json(Jobs::Payload))
                    .col(string_len(Jobs::Status, 16))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(integer(Jobs::Reclaims).default(0))
                    .col(big_integer(Jobs::RunAtMs))
                    .col(big_integer_null(Jobs::LeaseUntilMs))
                    .col(string_len_null(Jobs::LockedBy, 64))
                    .col(text_null(Jobs::LastError))
                    .col(json_null(Jobs::Result))
                    .col(big_integer(Jobs::CreatedAtMs))
                    .col(big_integer_null(Jobs::FinishedAtMs))
                    .take(),
            )
            .await?;
        // The claim: due jobs of one kind and status, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_claim")
                    .table(Jobs::Table)
                    .col(Jobs::Kind)
                    .col(Jobs::Status)
                    .col(Jobs::RunAtMs)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len_null(Devices::PushProvider, 8),
            string_len_null(Devices::PushEnvironment, 16),
            timestamp_with_time_zone_null(Devices::PushTokenUpdatedAt),
            timestamp_with_time_zone_null(Devices::PushTokenDeadAt),
            string_len_null(Devices::PushTokenDeadReason, 64),
        ] {
            manager.alter_table(Table::alter().table(Devices::Table).add_column(column).take()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Notifications::Id))
                    .col(big_integer(Notifications::UserId))
                    .col(string_len(Notifications::Category, 16))
                    .col(string_len(Notifications::Priority, 8))
                    .col(string_len(Notifications::Title, 256))
                    .col(text(Notifications::Body))
                    .col(json(Notifications::Data))
                    .col(boolean(Notifications::Silent).default(false))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        // History, newest first, per user (keyset).
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_created")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::CreatedAt)
                    .col(Notifications::Id)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Notifications::Table).if_exists().take()).await?;
        for column in [
            Devices::PushProvider,
            Devices::PushEnvironment,
            Devices::PushTokenUpdatedAt,
            Devices::PushTokenDeadAt,
            Devices::PushTokenDeadReason,
        ] {
            manager.alter_table(Table::alter().table(Devices::Table).drop_column(column).take()).await?;
        }
        manager.drop_table(Table::drop().table(Jobs::Table).if_exists().take()).await
    }
}
