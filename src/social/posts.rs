//! Posts: creating (with links and media references) and deleting.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::kernel::{error::DomainError, validate};
use crate::{
    kernel::db,
    social::entities::{post, post_media},
};

/// Longest post body, in characters.
pub const MAX_BODY_CHARS: usize = 5_000;
/// Most links per post.
pub const MAX_LINKS: usize = 10;
/// Most media per post.
pub const MAX_MEDIA: usize = 10;

/// A media reference attached to a new post.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewMedia {
    /// Key of the already-uploaded object in media storage.
    pub storage_key: String,
    /// MIME type (`image/*` or `video/*`).
    pub mime_type: String,
    /// Pixel width.
    pub width: i32,
    /// Pixel height.
    pub height: i32,
    /// BlurHash placeholder.
    pub blurhash: String,
    /// Accessibility text.
    pub alt_text: Option<String>,
}

/// A new post as submitted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewPost {
    /// Text.
    pub body: String,
    /// URLs.
    pub links: Vec<String>,
    /// Media references.
    pub media: Vec<NewMedia>,
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
        if self.media.len() > MAX_MEDIA {
            return Err(DomainError::invalid(format!("a post has at most {MAX_MEDIA} media")));
        }
        let links = self.links.iter().map(|l| validate::link(l)).collect::<Result<Vec<_>, _>>()?;
        let media = self.media.into_iter().map(NewMedia::validated).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { body, links, media })
    }
}

impl NewMedia {
    fn validated(self) -> Result<Self, DomainError> {
        if !(1..=20_000).contains(&self.width) || !(1..=20_000).contains(&self.height) {
            return Err(DomainError::invalid("media width and height must be 1..=20000"));
        }
        let mime_ok = (self.mime_type.starts_with("image/") || self.mime_type.starts_with("video/"))
            && self.mime_type.len() <= 80
            && self.mime_type.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'-' | b'.'));
        if !mime_ok {
            return Err(DomainError::invalid("media mimeType must be an image/* or video/* type"));
        }
        let alt_text = match self.alt_text {
            Some(alt) if !alt.trim().is_empty() => Some(validate::text("altText", &alt, 500)?),
            _ => None,
        };
        Ok(Self {
            storage_key: validate::storage_key(&self.storage_key)?,
            blurhash: validate::blurhash(&self.blurhash)?,
            alt_text,
            ..self
        })
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
    if !new.media.is_empty() {
        let rows = new.media.into_iter().enumerate().map(|(position, m)| post_media::ActiveModel {
            post_id: Set(post.id),
            position: Set(position as i32),
            storage_key: Set(m.storage_key),
            mime_type: Set(m.mime_type),
            width: Set(m.width),
            height: Set(m.height),
            blurhash: Set(m.blurhash),
            alt_text: Set(m.alt_text),
            ..Default::default()
        });
        post_media::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
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
