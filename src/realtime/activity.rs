//! "Post updates of interest": a comment on or a reaction to a user's post is an event in
//! that user's log (not for their own activity). Appended inside the mutation's transaction.

use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::realtime::{
    log::{self, EventKind},
    settings::RealtimeSettings,
};
use crate::{kernel::error::DomainError, realtime::entities::user_event, social::post_entity as post};

/// What happened to the post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activity {
    /// Someone commented.
    Comment {
        /// The new comment.
        comment_id: i64,
    },
    /// Someone reacted (or changed their reaction).
    Reaction {
        /// The reaction kind as stored (`like`, `love`, …).
        kind: String,
    },
}

/// Payload of [`EventKind::PostActivity`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostActivityRecord {
    /// The post.
    pub post_id: i64,
    /// Who did it.
    pub actor_id: i64,
    /// What they did.
    pub activity: Activity,
}

/// Tells the author of `post_id` about `actor`'s activity (nothing when they are the same
/// person or the post is gone). Returns the events to publish after commit.
pub async fn post_activity(
    conn: &impl ConnectionTrait,
    settings: &RealtimeSettings,
    post_id: i64,
    actor_id: i64,
    activity: Activity,
) -> Result<Vec<user_event::Model>, DomainError> {
    let Some(post) = post::Entity::find_by_id(post_id).one(conn).await? else {
        return Ok(Vec::new());
    };
    if post.author_id == actor_id || post.deleted_at.is_some() {
        return Ok(Vec::new());
    }
    let record = PostActivityRecord { post_id, actor_id, activity };
    log::append(conn, settings, &[post.author_id], EventKind::PostActivity, &record).await
}

/// Payload of [`EventKind::MediaReady`] and [`EventKind::MediaFailed`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// The upload's id (`createUpload`, the last segment of its tus `Location`).
    pub upload_id: String,
    /// The failure's reason code (`MEDIA_FAILED` only).
    pub reason: Option<String>,
}

/// Tells `user` that their upload finished processing (`reason` `None`) or failed.
pub async fn media_processed(
    conn: &impl ConnectionTrait,
    settings: &RealtimeSettings,
    user: i64,
    record: MediaRecord,
) -> Result<Vec<user_event::Model>, DomainError> {
    let kind = if record.reason.is_some() { EventKind::MediaFailed } else { EventKind::MediaReady };
    log::append(conn, settings, &[user], kind, &record).await
}
