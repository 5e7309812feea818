//! The per-user event log (every event a user should receive, with a per-user sequence
//! number), its per-user head (last sequence number and how far retention has pruned), the
//! per-device delivery acknowledgements, and presence.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserEvents {
    Table,
    Id,
    UserId,
    Seq,
    Kind,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EventHeads {
    Table,
    UserId,
    LastSeq,
    PrunedThrough,
}

#[derive(DeriveIden)]
enum EventAcks {
    Table,
    UserId,
    DeviceId,
    AckedSeq,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserPresence {
    Table,
    UserId,
    Status,
    LastSeenAt,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(UserEvents::Id))
                    .col(big_integer(UserEvents::UserId))
                    .col(big_integer(UserEvents::Seq))
                    .col(string_len(UserEvents::Kind, 32))
                    .col(json(UserEvents::Payload))
                    .col(timestamp_with_time_zone(UserEvents::CreatedAt))
                    .take(),
            )
            .await?;
        // Replay reads `seq > after` of one user in order.
        manager
            .create_index(
                Index::create()
                    .name("uq_user_events_user_seq")
                    .table(UserEvents::Table)
                    .col(UserEvents::UserId)
                    .col(UserEvents::Seq)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await?;
        // The retention sweep deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_events_created")
                    .table(UserEvents::Table)
                    .col(UserEvents::CreatedAt)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventHeads::Table)
                    .if_not_exists()
                    .col(big_integer(EventHeads::UserId).primary_key())
                    .col(big_integer(EventHeads::LastSeq).default(0))
                    .col(big_integer(EventHeads::PrunedThrough).default(0))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventAcks::Table)
                    .if_not_exists()
                    .col(big_integer(EventAcks::UserId))
                    .col(big_integer(EventAcks::DeviceId))
                    .col(big_integer(EventAcks::AckedSeq))
                    .col(timestamp_with_time_zone(EventAcks::UpdatedAt))
                    .primary_key(Index::create().col(EventAcks::UserId).col(EventAcks::DeviceId))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserPresence::Table)
                    .if_not_exists()
                    .col(big_integer(UserPresence::UserId).primary_key())
                    .col(string_len(UserPresence::Status, 16))
                    .col(timestamp_with_time_zone(UserPresence::LastSeenAt))
                    .col(timestamp_with_time_zone(UserPresence::ChangedAt))
                    .take(),
            )
            .await?;
        // The offline sweep finds users whose last sign of life is older than the grace.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_presence_seen")
                    .table(UserPresence::Table)
                    .col(UserPresence::Status)
                    .col(UserPresence::LastSeenAt)
                    .if_not_exists()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UserPresence::Table.into_iden(),
            EventAcks::Table.into_iden(),
            EventHeads::Table.into_iden(),
            UserEvents::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().take()).await?;
        }
        Ok(())
    }
}
