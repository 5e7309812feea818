//! Social interactions: comments, reactions and follows.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};

use crate::{
    kernel::db,
    social::entities::{comment, follow, reaction, user},
};
use crate::{
    kernel::{error::DomainError, validate},
    social::posts,
};

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// Reaction kinds, as stored.
pub const REACTION_KINDS: [&str; 6] = ["like", "love", "haha", "wow", "sad", "angry"];

/// Result of `addComment`, stored for idempotent replays.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommentRef {
    /// The new comment.
    pub comment_id: i64,
    /// Its post.
    pub post_id: i64,
}

/// Result of `follow`/`unfollow`, stored for idempotent replays.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FollowRef {
    /// The user followed or unfollowed.
    pub user_id: i64,
}

/// Adds a comment to a live post.
pub async fn add_comment(
    conn: &impl ConnectionTrait,
    viewer: i64,
    post_id: i64,
    body: &str,
) -> Result<CommentRef, DomainError> {
    let body = validate::text("body", body, MAX_COMMENT_CHARS)?;
    posts::require_live(conn, post_id).await?;
    let comment = comment::ActiveModel {
        post_id: Set(post_id),
        author_id: Set(viewer),
        body: Set(body),
        created_at: Set(db::now()),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(CommentRef { comment_id: comment.id, post_id })
}

/// Sets the viewer's reaction on a live post (replacing an earlier kind).
pub async fn react(
    conn: &impl ConnectionTrait,
    viewer: i64,
    post_id: i64,
    kind: &str,
) -> Result<posts::PostRef, DomainError> {
    if !REACTION_KINDS.contains(&kind) {
        return Err(DomainError::invalid("unknown reaction kind"));
    }
    posts::require_live(conn, post_id).await?;
    let row = reaction::ActiveModel {
        post_id: Set(post_id),
        user_id: Set(viewer),
        kind: Set(kind.to_owned()),
        created_at: Set(db::now()),
    };
    reaction::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([reaction::Column::PostId, reaction::Column::UserId])
                .update_columns([reaction::Column::Kind, reaction::Column::CreatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(posts::PostRef { post_id })
}

/// Removes the viewer's reaction (no error if there was none).
pub async fn unreact(conn: &impl ConnectionTrait, viewer: i64, post_id: i64) -> Result<posts::PostRef, DomainError> {
    posts::require_live(conn, post_id).await?;
    reaction::Entity::delete_many()
        .filter(reaction::Column::PostId.eq(post_id))
        .filter(reaction::Column::UserId.eq(viewer))
        .exec(conn)
        .await?;
    Ok(posts::PostRef { post_id })
}

/// The viewer follows `target` (no error if they already do).
pub async fn follow(conn: &impl ConnectionTrait, viewer: i64, target: i64) -> Result<FollowRef, DomainError> {
    if viewer == target {
        return Err(DomainError::invalid("you cannot follow yourself"));
    }
    require_user(conn, target).await?;
    let row = follow::ActiveModel { follower_id: Set(viewer), followee_id: Set(target), created_at: Set(db::now()) };
    follow::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([follow::Column::FollowerId, follow::Column::FolloweeId]).do_nothing().to_owned(),
        )
        .try_insert()
        .exec_without_returning(conn)
        .await?;
    Ok(FollowRef { user_id: target })
}

/// The viewer stops following `target` (no error if they did not).
pub async fn unfollow(conn: &impl ConnectionTrait, viewer: i64, target: i64) -> Result<FollowRef, DomainError> {
    require_user(conn, target).await?;
    follow::Entity::delete_many()
        .filter(follow::Column::FollowerId.eq(viewer))
        .filter(follow::Column::FolloweeId.eq(target))
        .exec(conn)
        .await?;
    Ok(FollowRef { user_id: target })
}

async fn require_user(conn: &impl ConnectionTrait, id: i64) -> Result<user::Model, DomainError> {
    user::Entity::find_by_id(id).one(conn).await?.ok_or(DomainError::NotFound("user"))
}
