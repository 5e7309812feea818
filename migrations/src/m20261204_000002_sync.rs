//! Offline-first sync of notes: the notes with their per-field clocks, their collaborators,
//! each viewer's change feed (one row per viewer and note, positioned by a per-viewer sequence
//! taken from the viewer's head row), the row hashes of applied pushes (idempotent re-push)
//! and the recorded conflicts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notes {
    Table,
    Id,
    OwnerId,
    Title,
    Body,
    Done,
    Position,
    Tags,
    Deleted,
    UpdatedAtMs,
    CreatedAtMs,
    Revision,
    Clocks,
    LastUserId,
    LastDeviceId,
}

#[derive(DeriveIden)]
enum NoteMembers {
    Table,
    NoteId,
    UserId,
}

#[derive(DeriveIden)]
enum NoteHeads {
    Table,
    UserId,
    LastSeq,
    PurgedSeq,
}

#[derive(DeriveIden)]
enum NoteFeed {
    Table,
    ViewerId,
    NoteId,
    Seq,
    Visible,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum NoteApplied {
    Table,
    UserId,
    NoteId,
    RowHash,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum NoteConflicts {
    Table,
    Id,
    NoteId,
    Field,
    Strategy,
    Winner,
    BaseValue,
    ServerValue,
    ClientValue,
    ResolvedValue,
    UserId,
    DeviceId,
    OtherUserId,
    OtherDeviceId,
    CreatedAtMs,
    DismissedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notes::Table)
                    .if_not_exists()
                    .col(string_len(Notes::Id, 36).primary_key())
                    .col(big_integer(Notes::OwnerId))
                    .col(text(Notes::Title))
                    .col(text(Notes::Body))
                    .col(boolean(Notes::Done))
                    .col(double(Notes::Position))
                    .col(text(Notes::Tags))
                    .col(boolean(Notes::Deleted))
                    .col(big_integer(Notes::UpdatedAtMs))
                    .col(big_integer(Notes::CreatedAtMs))
                    .col(big_integer(Notes::Revision))
                    .col(text(Notes::Clocks))
                    .col(big_integer(Notes::LastUserId))
                    .col(big_integer_null(Notes::LastDeviceId))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notes_deleted")
                    .table(Notes::Table)
                    .col(Notes::Deleted)
                    .col(Notes::UpdatedAtMs)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NoteMembers::Table)
                    .if_not_exists()
                    .col(string_len(NoteMembers::NoteId, 36))
                    .col(big_integer(NoteMembers::UserId))
                    .primary_key(Index::create().col(NoteMembers::NoteId).col(NoteMembers::UserId))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NoteHeads::Table)
                    .if_not_exists()
                    .col(big_integer(NoteHeads::UserId).primary_key())
                    .col(big_integer(NoteHeads::LastSeq))
                    .col(big_integer(NoteHeads::PurgedSeq).default(0))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NoteFeed::Table)
                    .if_not_exists()
                    .col(big_integer(NoteFeed::ViewerId))
                    .col(string_len(NoteFeed::NoteId, 36))
                    .col(big_integer(NoteFeed::Seq))
                    .col(boolean(NoteFeed::Visible))
                    .col(big_integer(NoteFeed::UpdatedAtMs))
                    .primary_key(Index::create().col(NoteFeed::ViewerId).col(NoteFeed::NoteId))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_note_feed_viewer_seq")
                    .table(NoteFeed::Table)
                    .col(NoteFeed::ViewerId)
                    .col(NoteFeed::Seq)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_note_feed_note").table(NoteFeed::Table).col(NoteFeed::NoteId).take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NoteApplied::Table)
                    .if_not_exists()
                    .col(big_integer(NoteApplied::UserId))
                    .col(string_len(NoteApplied::NoteId, 36))
                    .col(string_len(NoteApplied::RowHash, 64))
                    .col(big_integer(NoteApplied::CreatedAtMs))
                    .primary_key(
                        Index::create().col(NoteApplied::UserId).col(NoteApplied::NoteId).col(NoteApplied::RowHash),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_note_applied_created")
                    .table(NoteApplied::Table)
                    .col(NoteApplied::CreatedAtMs)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NoteConflicts::Table)
                    .if_not_exists()
                    .col(big_integer(NoteConflicts::Id).primary_key().auto_increment())
                    .col(string_len(NoteConflicts::NoteId, 36))
                    .col(string_len(NoteConflicts::Field, 16))
                    .col(string_len(NoteConflicts::Strategy, 24))
                    .col(string_len(NoteConflicts::Winner, 8))
                    .col(text_null(NoteConflicts::BaseValue))
                    .col(text(NoteConflicts::ServerValue))
                    .col(text(NoteConflicts::ClientValue))
                    .col(text(NoteConflicts::ResolvedValue))
                    .col(big_integer(NoteConflicts::UserId))
                    .col(big_integer_null(NoteConflicts::DeviceId))
                    .col(big_integer_null(NoteConflicts::OtherUserId))
                    .col(big_integer_null(NoteConflicts::OtherDeviceId))
                    .col(big_integer(NoteConflicts::CreatedAtMs))
                    .col(big_integer_null(NoteConflicts::DismissedAtMs))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_note_conflicts_note")
                    .table(NoteConflicts::Table)
                    .col(NoteConflicts::NoteId)
                    .col(NoteConflicts::Id)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NoteConflicts::Table.into_iden(),
            NoteApplied::Table.into_iden(),
            NoteFeed::Table.into_iden(),
            NoteHeads::Table.into_iden(),
            NoteMembers::Table.into_iden(),
            Notes::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().take()).await?;
        }
        Ok(())
    }
}
