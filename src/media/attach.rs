//! Attaching uploads to posts: the one definition of the media shape a post carries.
//!
//! A client names an upload ([`MediaInput`]`.uploadId`); [`Attachment`] is that reference
//! validated (what `createPost` fingerprints for idempotency); [`insert`] turns it into a
//! `post_media` row from the media object's server-computed facts, inside the post's
//! transaction. The width, height and BlurHash a client sends are ignored (the schema keeps
//! them, deprecated, so older apps still validate).

use async_graphql::InputObject;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde::{Deserialize, Serialize};

use crate::{
    kernel::{error::DomainError, validate},
    media::{
        entities::{media_object, post_media},
        store::{self, status},
    },
};

/// A media reference for `createPost`.
#[derive(InputObject, Clone, Debug, Serialize)]
pub struct MediaInput {
    /// The upload to attach: `createUpload`'s `upload.id`, the last segment of the tus
    /// `Location`. Its type, size and placeholder are computed by the server.
    pub upload_id: Option<String>,
    /// Ignored: media are referenced by `uploadId`.
    #[graphql(deprecation = "Ignored: attach an upload with uploadId.")]
    pub storage_key: Option<String>,
    /// Ignored: the server sniffs the type from the bytes.
    #[graphql(deprecation = "Ignored: the server sniffs the type from the uploaded bytes.")]
    pub mime_type: Option<String>,
    /// Ignored: the server measures the upright image.
    #[graphql(deprecation = "Ignored: the server measures the uploaded image.")]
    pub width: Option<i32>,
    /// Ignored: the server measures the upright image.
    #[graphql(deprecation = "Ignored: the server measures the uploaded image.")]
    pub height: Option<i32>,
    /// Ignored: the server computes the BlurHash.
    #[graphql(deprecation = "Ignored: the server computes the BlurHash.")]
    pub blurhash: Option<String>,
    /// Accessibility text, at most 500 characters.
    pub alt_text: Option<String>,
}

/// A validated reference to one of the viewer's uploads, in a post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The upload's id.
    pub upload_id: String,
    /// Accessibility text.
    pub alt_text: Option<String>,
}

impl MediaInput {
    /// The validated reference (an `uploadId` is required).
    pub fn attachment(self) -> Result<Attachment, DomainError> {
        let Some(upload_id) = self.upload_id.map(|id| id.trim().to_ascii_lowercase()) else {
            return Err(DomainError::invalid("media needs an uploadId: upload the file with createUpload first"));
        };
        if upload_id.len() != 32 || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DomainError::invalid("media uploadId is not an upload id"));
        }
        let alt_text = match self.alt_text {
            Some(alt) if !alt.trim().is_empty() => Some(validate::text("altText", &alt, 500)?),
            _ => None,
        };
        Ok(Attachment { upload_id, alt_text })
    }
}

/// Validates a post's media list: at most `max`, no upload twice.
pub fn attachments(inputs: Vec<MediaInput>, max: usize) -> Result<Vec<Attachment>, DomainError> {
    if inputs.len() > max {
        return Err(DomainError::invalid(format!("a post has at most {max} media")));
    }
    let list = inputs.into_iter().map(MediaInput::attachment).collect::<Result<Vec<_>, _>>()?;
    for (i, a) in list.iter().enumerate() {
        if list.iter().take(i).any(|b| b.upload_id == a.upload_id) {
            return Err(DomainError::invalid("a post cannot attach the same upload twice"));
        }
    }
    Ok(list)
}

/// Inserts `post`'s media rows from `owner`'s uploads, in order, and marks the uploads
/// attached. Each upload must be the owner's, for posts, and complete (processing or ready).
pub async fn insert(
    conn: &impl ConnectionTrait,
    owner: i64,
    post: i64,
    attachments: Vec<Attachment>,
) -> Result<(), DomainError> {
    if attachments.is_empty() {
        return Ok(());
    }
    let now = crate::kernel::jobs::now_ms();
    let mut rows = Vec::with_capacity(attachments.len());
    for (position, attachment) in attachments.into_iter().enumerate() {
        let object = store::by_upload_id_for_update(conn, &attachment.upload_id)
            .await?
            .filter(|o| o.user_id == owner)
            .ok_or(DomainError::NotFound("upload"))?;
        usable(&object)?;
        rows.push(row(post, position, &object, attachment.alt_text));
        media_object::Entity::update_many()
            .col_expr(media_object::Column::AttachedAtMs, Expr::value(now))
            .filter(media_object::Column::Id.eq(object.id))
            .exec(conn)
            .await?;
    }
    post_media::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

fn usable(object: &media_object::Model) -> Result<(), DomainError> {
    if object.purpose != "post" {
        return Err(DomainError::invalid("this upload was made for another purpose than a post"));
    }
    match object.status.as_str() {
        status::UPLOADING => Err(DomainError::invalid("this upload is not complete yet")),
        status::FAILED => Err(DomainError::invalid(format!(
            "this upload could not be processed ({})",
            object.failure_reason.as_deref().unwrap_or("FAILED")
        ))),
        _ => Ok(()),
    }
}

fn row(post: i64, position: usize, object: &media_object::Model, alt_text: Option<String>) -> post_media::ActiveModel {
    post_media::ActiveModel {
        post_id: Set(post),
        position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        storage_key: Set(object.content_hash.clone().unwrap_or_default()),
        mime_type: Set(object.mime_type.clone().unwrap_or_else(|| object.declared_mime.clone())),
        width: Set(object.width.unwrap_or(0)),
        height: Set(object.height.unwrap_or(0)),
        blurhash: Set(object.blurhash.clone().unwrap_or_default()),
        alt_text: Set(alt_text),
        media_id: Set(Some(object.id)),
        status: Set(object.status.clone()),
        dominant_color: Set(object.dominant_color.clone()),
        variants: Set(object.variants.clone()),
        ..Default::default()
    }
}
