//! Messaging: conversations (direct and group), their members with read markers, and messages
//! with a per-conversation sequence number.
//!
//! `messages (conversation_id, seq)` is unique and is the order of a conversation; `(conversation_id,
//! sender_id, client_message_id)` is unique so that a retried send finds the first message
//! instead of inserting a second one. The inbox is ordered by `last_activity_at`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    Kind,
    Title,
    DirectKey,
    CreatedBy,
    CreatedAt,
    LastSeq,
    LastActivityAt,
}

#[derive(DeriveIden)]
enum ConversationMembers {
    Table,
    ConversationId,
    UserId,
    JoinedAt,
    LastReadSeq,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    Body,
    ClientMessageId,
    CreatedAt,
}

fn fk(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from_table, from_col).to(to_table, to_col).on_delete(ForeignKeyAction::Cascade).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Conversations::Id))
                    .col(string_len(Conversations::Kind, 16))
                    .col(string_len_null(Conversations::Title, 100))
                    // `"<low user id>:<high user id>"` for direct conversations: one per pair.
                    .col(string_len_null(Conversations::DirectKey, 48).unique_key())
                    .col(big_integer(Conversations::CreatedBy))
                    .col(timestamp_with_time_zone(Conversations::CreatedAt))
                    .col(big_integer(Conversations::LastSeq).default(0))
                    .col(timestamp_with_time_zone(Conversations::LastActivityAt))
                    .foreign_key(&mut fk(Conversations::Table, Conversations::CreatedBy, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationMembers::Table)
                    .if_not_exists()
                    .col(big_integer(ConversationMembers::ConversationId))
                    .col(big_integer(ConversationMembers::UserId))
                    .col(timestamp_with_time_zone(ConversationMembers::JoinedAt))
                    .col(big_integer(ConversationMembers::LastReadSeq).default(0))
                    .primary_key(
                        Index::create().col(ConversationMembers::ConversationId).col(ConversationMembers::UserId),
                    )
                    .foreign_key(&mut fk(
                        ConversationMembers::Table,
                        ConversationMembers::ConversationId,
                        Conversations::Table,
                        Conversations::Id,
                    ))
                    .foreign_key(&mut fk(
                        ConversationMembers::Table,
                        ConversationMembers::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        // The inbox: conversations of a user.
        manager
            .create_index(
                Index::create()
                    .name("idx_conversation_members_user")
                    .table(ConversationMembers::Table)
                    .col(ConversationMembers::UserId)
                    .col(ConversationMembers::ConversationId)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_activity")
                    .table(Conversations::Table)
                    .col(Conversations::LastActivityAt)
                    .col(Conversations::Id)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Messages::Id))
                    .col(big_integer(Messages::ConversationId))
                    .col(big_integer(Messages::Seq))
                    .col(big_integer(Messages::SenderId))
                    .col(text(Messages::Body))
                    .col(string_len(Messages::ClientMessageId, 128))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .foreign_key(&mut fk(
                        Messages::Table,
                        Messages::ConversationId,
                        Conversations::Table,
                        Conversations::Id,
                    ))
                    .foreign_key(&mut fk(Messages::Table, Messages::SenderId, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_conversation_seq")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::Seq)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_client_id")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::SenderId)
                    .col(Messages::ClientMessageId)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Messages::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(ConversationMembers::Table).if_exists().take()).await?;
        manager.drop_table(Table::drop().table(Conversations::Table).if_exists().take()).await
    }
}
