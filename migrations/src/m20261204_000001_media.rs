//! Media: the media objects users upload (one row per upload: its tus state, quota charge,
//! processing status and, once processed, its dimensions, placeholder and variant ladder), the
//! committed parts of a resumable upload, and the link from a post's media to its object.
//!
//! Times are Unix milliseconds in `BIGINT` columns, like the job queue's: the expiry sweep and
//! the tus `Upload-Expires` header compare them, and integers compare the same way on SQLite
//! and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MediaObjects {
    Table,
    Id,
    UploadId,
    UserId,
    Purpose,
    Kind,
    Filename,
    DeclaredMime,
    SizeBytes,
    OffsetBytes,
    Sha256,
    Status,
    FailureReason,
    FailureDetail,
    ContentHash,
    MimeType,
    Width,
    Height,
    Blurhash,
    DominantColor,
    Variants,
    ExpiresAtMs,
    CreatedAtMs,
    CompletedAtMs,
    ProcessedAtMs,
    AttachedAtMs,
}

#[derive(DeriveIden)]
enum MediaUploadParts {
    Table,
    Id,
    MediaId,
    StartOffset,
    Length,
    Part,
}

#[derive(DeriveIden)]
enum PostMedia {
    Table,
    MediaId,
    Status,
    DominantColor,
    Variants,
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
                    .table(MediaObjects::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MediaObjects::Id))
                    .col(string_len_uniq(MediaObjects::UploadId, 32))
                    .col(big_integer(MediaObjects::UserId))
                    .col(string_len(MediaObjects::Purpose, 16))
                    .col(string_len(MediaObjects::Kind, 8))
                    .col(string_len(MediaObjects::Filename, 255))
                    .col(string_len(MediaObjects::DeclaredMime, 100))
                    .col(big_integer(MediaObjects::SizeBytes))
                    .col(big_integer(MediaObjects::OffsetBytes).default(0))
                    .col(string_len_null(MediaObjects::Sha256, 64))
                    .col(string_len(MediaObjects::Status, 16))
                    .col(string_len_null(MediaObjects::FailureReason, 32))
                    .col(text_null(MediaObjects::FailureDetail))
                    .col(string_len_null(MediaObjects::ContentHash, 64))
                    .col(string_len_null(MediaObjects::MimeType, 100))
                    .col(integer_null(MediaObjects::Width))
                    .col(integer_null(MediaObjects::Height))
                    .col(string_len_null(MediaObjects::Blurhash, 100))
                    .col(string_len_null(MediaObjects::DominantColor, 7))
                    .col(json_null(MediaObjects::Variants))
                    .col(big_integer(MediaObjects::ExpiresAtMs))
                    .col(big_integer(MediaObjects::CreatedAtMs))
                    .col(big_integer_null(MediaObjects::CompletedAtMs))
                    .col(big_integer_null(MediaObjects::ProcessedAtMs))
                    .col(big_integer_null(MediaObjects::AttachedAtMs))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MediaObjects::Table, MediaObjects::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        // The quota sum per user.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_objects_user")
                    .table(MediaObjects::Table)
                    .col(MediaObjects::UserId)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        // The expiry sweep: unfinished uploads past their expiry.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_objects_status_expires")
                    .table(MediaObjects::Table)
                    .col(MediaObjects::Status)
                    .col(MediaObjects::ExpiresAtMs)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MediaUploadParts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MediaUploadParts::Id))
                    .col(big_integer(MediaUploadParts::MediaId))
                    .col(big_integer(MediaUploadParts::StartOffset))
                    .col(big_integer(MediaUploadParts::Length))
                    .col(string_len(MediaUploadParts::Part, 64))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MediaUploadParts::Table, MediaUploadParts::MediaId)
                            .to(MediaObjects::Table, MediaObjects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        // One committed part per start offset: a second writer at the same offset cannot commit.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_upload_parts_offset")
                    .table(MediaUploadParts::Table)
                    .col(MediaUploadParts::MediaId)
                    .col(MediaUploadParts::StartOffset)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        for column in [
            big_integer_null(PostMedia::MediaId),
            string_len(PostMedia::Status, 16).default("ready").take(),
            string_len_null(PostMedia::DominantColor, 7),
            json_null(PostMedia::Variants),
        ] {
            manager.alter_table(Table::alter().table(PostMedia::Table).add_column(column).take()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_post_media_media")
                    .table(PostMedia::Table)
                    .col(PostMedia::MediaId)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_post_media_media").table(PostMedia::Table).to_owned()).await?;
        for column in [PostMedia::MediaId, PostMedia::Status, PostMedia::DominantColor, PostMedia::Variants] {
            manager.alter_table(Table::alter().table(PostMedia::Table).drop_column(column).take()).await?;
        }
        manager.drop_table(Table::drop().table(MediaUploadParts::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(MediaObjects::Table).if_exists().take()).await
    }
}
