//! Posts: creating (with links and the viewer's uploads as media) and deleting.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::kernel::{error::DomainError, validate};
use crate::{
    kernel::db,
    media::{self, Attachment},
    social::entities::post,
};

/// Longest post body, in characters.
pub const MAX_BODY_CHARS: usize = 5_000;
/// Most links per post.
pub const MAX_LINKS: usize = 10;
/// Most media per post.
pub const MAX_MEDIA: usize = 10;

/// A new post as submitted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewPost {
    /// Text.
    pub body: String,
    /// URLs.
    pub links: Vec<String>,
    /// The viewer's uploads to attach, validated by the media concern.
    pub media: Vec<Attachment>,
}

/// Result of a post mutation, stored for idempotent replays.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostRef {
    /// The post's id.
    pub post_id: i64,
}

impl NewPost {
    /// Validates and normalises every field.
    pub fn validated(self) -> Result<Self, DomainError> {
        let body = validate::text("body", &self.body, MAX_BODY_CHARS)?;
        if self.links.len() > MAX_LINKS {
            return Err(DomainError::invalid(format!("a post has at most {MAX_LINKS} links")));
        }
        let links = self.links.iter().map(|l| validate::link(l)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { body, links, media: self.media })
    }
}

/// Inserts a validated post and its media; returns its id.
pub async fn create(conn: &impl ConnectionTrait, author_id: i64, new: NewPost) -> Result<PostRef, DomainError> {
    let now = db::now();
    let post = post::ActiveModel {
        author_id: Set(author_id),
        body: Set(new.body),
        links: Set(serde_json::to_value(&new.links)?),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    media::attach_to_post(conn, author_id, post.id, new.media).await?;
    Ok(PostRef { post_id: post.id })
}

/// Marks the viewer's own post deleted (a tombstone keeps sync and replays consistent).
pub async fn delete(conn: &impl ConnectionTrait, viewer: i64, post_id: i64) -> Result<PostRef, DomainError> {
    let post = post::Entity::find_by_id(post_id)
        .one(conn)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(DomainError::NotFound("post"))?;
    if post.author_id != viewer {
        return Err(DomainError::Forbidden("only the author can delete a post"));
    }
    let now = db::now();
    let mut active: post::ActiveModel = post.into();
    active.deleted_at = Set(Some(now));
    active.updated_at = Set(now);
    active.update(conn).await?;
    Ok(PostRef { post_id })
}

/// The live post with this id, or `NotFound`.
pub async fn require_live(conn: &impl ConnectionTrait, post_id: i64) -> Result<post::Model, DomainError> {
    post::Entity::find_by_id(post_id)
        .one(conn)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(DomainError::NotFound("post"))
}
