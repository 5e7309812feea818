//! Messaging: direct and group conversations, idempotent sends with per-conversation
//! sequence numbers, and read markers. Every change appends events to the members' logs in
//! the same transaction; the use cases return those events for the caller to publish after
//! commit.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::messaging::store as messaging;
use crate::social::users_by_ids;
use crate::{
    kernel::db::{self, Db},
    messaging::entities::{conversation, conversation_member, message},
    realtime::user_event,
};
use crate::{
    kernel::{error::DomainError, idempotency, settings::IdempotencySettings, validate},
    realtime::{ConversationRecord, EventKind, MessageRecord, ReadRecord, RealtimeSettings, append_event},
};

/// Longest group title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

/// Result of creating a conversation, stored for idempotent replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRef {
    /// The conversation.
    pub conversation_id: i64,
}

/// The direct conversation of `viewer` and `other`, created on first use.
pub async fn start_direct(
    db: &Db,
    settings: &RealtimeSettings,
    viewer: i64,
    other: i64,
) -> Result<(ConversationRef, Vec<user_event::Model>), DomainError> {
    if other == viewer {
        return Err(DomainError::invalid("a direct conversation needs another user"));
    }
    if users_by_ids(db.conn(), &[other]).await?.is_empty() {
        return Err(DomainError::NotFound("user"));
    }
    let key = format!("{}:{}", viewer.min(other), viewer.max(other));
    let existing = || async {
        let found =
            conversation::Entity::find().filter(conversation::Column::DirectKey.eq(key.clone())).one(db.conn()).await?;
        Ok::<_, DomainError>(found.map(|c| ConversationRef { conversation_id: c.id }))
    };
    if let Some(found) = existing().await? {
        return Ok((found, Vec::new()));
    }
    let tx = db.begin_write().await?;
    match create(&*tx, settings, viewer, "direct", None, Some(key.clone()), &[viewer, other]).await {
        Ok(created) => {
            tx.commit().await?;
            Ok(created)
        }
        Err(DomainError::Database(err)) => {
            // Most likely both users started it at once: the other insert won.
            drop(tx);
            match existing().await? {
                Some(found) => Ok((found, Vec::new())),
                None => Err(DomainError::Database(err)),
            }
        }
        Err(err) => Err(err),
    }
}

/// A new group of `viewer` and `members` (user ids, in any order, repeats allowed), at most
/// once per client `key`.
pub async fn create_group(
    db: &Db,
    idempotency: &IdempotencySettings,
    settings: &RealtimeSettings,
    viewer: i64,
    key: Option<&str>,
    title: &str,
    mut members: Vec<i64>,
) -> Result<(ConversationRef, Vec<user_event::Model>), DomainError> {
    if members.len() > settings.max_group_members {
        return Err(too_many_members(settings));
    }
    members.sort_unstable();
    members.dedup();
    let fingerprint = (title, &members);
    let (settings, title, members) = (settings.clone(), title.to_owned(), members.clone());
    idempotency::once(db, idempotency, viewer, key, "createGroup", &fingerprint, move |tx| {
        Box::pin(async move { create_group_in(&**tx, &settings, viewer, &title, &members).await })
    })
    .await
}

fn too_many_members(settings: &RealtimeSettings) -> DomainError {
    DomainError::invalid(format!("a group has at most {} members", settings.max_group_members))
}

/// A group of `viewer` and `members`, inside the caller's transaction.
async fn create_group_in(
    conn: &impl ConnectionTrait,
    settings: &RealtimeSettings,
    viewer: i64,
    title: &str,
    members: &[i64],
) -> Result<(ConversationRef, Vec<user_event::Model>), DomainError> {
    let title = validate::text("title", title, MAX_TITLE_CHARS)?;
    let mut all: Vec<i64> = members.iter().copied().chain([viewer]).collect();
    all.sort_unstable();
    all.dedup();
    if all.len() < 2 {
        return Err(DomainError::invalid("a group needs at least one other member"));
    }
    if all.len() > settings.max_group_members {
        return Err(too_many_members(settings));
    }
    if users_by_ids(conn, &all).await?.len() != all.len() {
        return Err(DomainError::NotFound("user"));
    }
    create(conn, settings, viewer, "group", Some(title), None, &all).await
}

async fn create(
    conn: &impl ConnectionTrait,
    settings: &RealtimeSettings,
    creator: i64,
    kind: &str,
    title: Option<String>,
    direct_key: Option<String>,
    members: &[i64],
) -> Result<(ConversationRef, Vec<user_event::Model>), DomainError> {
    let now = db::now();
    let row = conversation::ActiveModel {
        kind: Set(kind.to_owned()),
        title: Set(title),
        direct_key: Set(direct_key),
        created_by: Set(creator),
        created_at: Set(now),
        last_seq: Set(0),
        last_activity_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    for chunk in members.chunks(1_000) {
        let rows = chunk.iter().map(|&user_id| conversation_member::ActiveModel {
            conversation_id: Set(row.id),
            user_id: Set(user_id),
            joined_at: Set(now),
            last_read_seq: Set(0),
        });
        conversation_member::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    let record = ConversationRecord { conversation_id: row.id };
    let events = append_event(conn, settings, members, EventKind::ConversationAdded, &record).await?;
    Ok((ConversationRef { conversation_id: row.id }, events))
}

/// A message to send.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The conversation.
    pub conversation_id: i64,
    /// The client's id for the message (the idempotency key of the send).
    pub client_message_id: String,
    /// Text.
    pub body: String,
}

/// Sends a message as `sender` (a member). A retry with the same client message id returns
/// the first message and changes nothing; the same id with another body is a `CONFLICT`.
pub async fn send(
    db: &Db,
    settings: &RealtimeSettings,
    sender: i64,
    new: NewMessage,
) -> Result<(message::Model, Vec<user_event::Model>), DomainError> {
    let client_message_id = validate::idempotency_key(&new.client_message_id)
        .map_err(|_| DomainError::invalid("clientMessageId must be 8 to 128 characters of [A-Za-z0-9_.:-]"))?;
    let body = validate::text("body", &new.body, settings.max_message_chars)?;
    let replay = |existing: message::Model| {
        if existing.body == body {
            Ok((existing, Vec::new()))
        } else {
            Err(DomainError::Conflict("clientMessageId was already used for a different message"))
        }
    };
    // Fast path for retries: no write transaction.
    if let Some(existing) = messaging::by_client_id(db.conn(), new.conversation_id, sender, &client_message_id).await? {
        return replay(existing);
    }
    let tx = db.begin_write().await?;
    if messaging::membership(&*tx, new.conversation_id, sender).await?.is_none() {
        return Err(DomainError::NotFound("conversation"));
    }
    let now = db::now();
    // Locks the conversation row: concurrent sends queue here, so the check below sees a
    // retry that committed meanwhile.
    let seq =
        messaging::next_seq(&*tx, new.conversation_id, now).await?.ok_or(DomainError::NotFound("conversation"))?;
    if let Some(existing) = messaging::by_client_id(&*tx, new.conversation_id, sender, &client_message_id).await? {
        drop(tx);
        return replay(existing);
    }
    let stored = message::ActiveModel {
        conversation_id: Set(new.conversation_id),
        seq: Set(seq),
        sender_id: Set(sender),
        body: Set(body.clone()),
        client_message_id: Set(client_message_id),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&*tx)
    .await?;
    messaging::advance_read_marker(&*tx, new.conversation_id, sender, seq).await?;
    let members = messaging::member_ids(&*tx, new.conversation_id).await?;
    let record = MessageRecord::from(stored.clone());
    let events = append_event(&*tx, settings, &members, EventKind::MessageAdded, &record).await?;
    tx.commit().await?;
    Ok((stored, events))
}

/// Moves `viewer`'s read marker to `seq` (clamped to the newest message; never backwards)
/// and tells the members. Returns the marker.
pub async fn mark_read(
    db: &Db,
    settings: &RealtimeSettings,
    viewer: i64,
    conversation_id: i64,
    seq: i64,
) -> Result<(i64, Vec<user_event::Model>), DomainError> {
    if seq < 0 {
        return Err(DomainError::invalid("seq must not be negative"));
    }
    let tx = db.begin_write().await?;
    let Some(member) = messaging::membership(&*tx, conversation_id, viewer).await? else {
        return Err(DomainError::NotFound("conversation"));
    };
    let conversation = conversation::Entity::find_by_id(conversation_id)
        .one(&*tx)
        .await?
        .ok_or(DomainError::NotFound("conversation"))?;
    let seq = seq.min(conversation.last_seq);
    if seq <= member.last_read_seq || !messaging::advance_read_marker(&*tx, conversation_id, viewer, seq).await? {
        return Ok((member.last_read_seq.max(seq), Vec::new()));
    }
    let members = messaging::member_ids(&*tx, conversation_id).await?;
    let record = ReadRecord { conversation_id, user_id: viewer, seq };
    let events = append_event(&*tx, settings, &members, EventKind::MessageRead, &record).await?;
    tx.commit().await?;
    Ok((seq, events))
}

/// Whether `user_id` is a member of the conversation.
pub async fn is_member(db: &Db, conversation_id: i64, user_id: i64) -> Result<bool, DomainError> {
    Ok(messaging::membership(db.conn(), conversation_id, user_id).await?.is_some())
}
