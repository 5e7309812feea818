//! The social domain: users, follows, posts, post media, comments and reactions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Handle,
    DisplayName,
    Bio,
    AvatarKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Follows {
    Table,
    FollowerId,
    FolloweeId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    AuthorId,
    Body,
    Links,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum PostMedia {
    Table,
    Id,
    PostId,
    Position,
    StorageKey,
    MimeType,
    Width,
    Height,
    Blurhash,
    AltText,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    PostId,
    AuthorId,
    Body,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Reactions {
    Table,
    PostId,
    UserId,
    Kind,
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

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut stmt = Index::create().name(name).table(table).if_not_exists().take();
    for col in cols {
        stmt.col(col);
    }
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Handle, 30))
                    .col(string_len(Users::DisplayName, 80))
                    .col(text(Users::Bio).default(""))
                    .col(string_len_null(Users::AvatarKey, 200))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Follows::Table)
                    .if_not_exists()
                    .col(big_integer(Follows::FollowerId))
                    .col(big_integer(Follows::FolloweeId))
                    .col(timestamp_with_time_zone(Follows::CreatedAt))
                    .primary_key(Index::create().col(Follows::FollowerId).col(Follows::FolloweeId))
                    .foreign_key(&mut fk(Follows::Table, Follows::FollowerId, Users::Table, Users::Id))
                    .foreign_key(&mut fk(Follows::Table, Follows::FolloweeId, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        // `following` list of a user, newest first.
        manager
            .create_index(index(
                "idx_follows_following",
                Follows::Table,
                vec![Follows::FollowerId.into_iden(), Follows::CreatedAt.into_iden(), Follows::FolloweeId.into_iden()],
            ))
            .await?;
        // `followers` list of a user, newest first, and follower counts.
        manager
            .create_index(index(
                "idx_follows_followers",
                Follows::Table,
                vec![Follows::FolloweeId.into_iden(), Follows::CreatedAt.into_iden(), Follows::FollowerId.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Posts::Id))
                    .col(big_integer(Posts::AuthorId))
                    .col(text(Posts::Body))
                    .col(json(Posts::Links))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .col(timestamp_with_time_zone(Posts::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Posts::DeletedAt))
                    .foreign_key(&mut fk(Posts::Table, Posts::AuthorId, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        // A user's posts and the feed (posts of a set of authors), newest first.
        manager
            .create_index(index(
                "idx_posts_author_keyset",
                Posts::Table,
                vec![Posts::AuthorId.into_iden(), Posts::CreatedAt.into_iden(), Posts::Id.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostMedia::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PostMedia::Id))
                    .col(big_integer(PostMedia::PostId))
                    .col(integer(PostMedia::Position))
                    .col(string_len(PostMedia::StorageKey, 200))
                    .col(string_len(PostMedia::MimeType, 80))
                    .col(integer(PostMedia::Width))
                    .col(integer(PostMedia::Height))
                    .col(string_len(PostMedia::Blurhash, 100))
                    .col(string_len_null(PostMedia::AltText, 500))
                    .foreign_key(&mut fk(PostMedia::Table, PostMedia::PostId, Posts::Table, Posts::Id))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_post_media_post",
                PostMedia::Table,
                vec![PostMedia::PostId.into_iden(), PostMedia::Position.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Comments::Id))
                    .col(big_integer(Comments::PostId))
                    .col(big_integer(Comments::AuthorId))
                    .col(text(Comments::Body))
                    .col(timestamp_with_time_zone(Comments::CreatedAt))
                    .col(timestamp_with_time_zone_null(Comments::DeletedAt))
                    .foreign_key(&mut fk(Comments::Table, Comments::PostId, Posts::Table, Posts::Id))
                    .foreign_key(&mut fk(Comments::Table, Comments::AuthorId, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        // A post's comments, newest first, and comment counts.
        manager
            .create_index(index(
                "idx_comments_post_keyset",
                Comments::Table,
                vec![Comments::PostId.into_iden(), Comments::CreatedAt.into_iden(), Comments::Id.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reactions::Table)
                    .if_not_exists()
                    .col(big_integer(Reactions::PostId))
                    .col(big_integer(Reactions::UserId))
                    .col(string_len(Reactions::Kind, 16))
                    .col(timestamp_with_time_zone(Reactions::CreatedAt))
                    .primary_key(Index::create().col(Reactions::PostId).col(Reactions::UserId))
                    .foreign_key(&mut fk(Reactions::Table, Reactions::PostId, Posts::Table, Posts::Id))
                    .foreign_key(&mut fk(Reactions::Table, Reactions::UserId, Users::Table, Users::Id))
                    .take(),
            )
            .await?;
        // A user's reactions (the viewer's reaction per post is served by the primary key).
        manager
            .create_index(index(
                "idx_reactions_user",
                Reactions::Table,
                vec![Reactions::UserId.into_iden(), Reactions::CreatedAt.into_iden()],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Reactions::Table.into_iden(),
            Comments::Table.into_iden(),
            PostMedia::Table.into_iden(),
            Posts::Table.into_iden(),
            Follows::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().take()).await?;
        }
        Ok(())
    }
}
