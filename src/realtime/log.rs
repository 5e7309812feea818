//! The per-user event log: event kinds and payloads, appending inside a write transaction,
//! start positions (with the resync rule), long-poll, acknowledgements and retention.

use std::time::Duration;

use sea_orm::{ActiveValue::Set, ConnectionTrait};
use serde::{Deserialize, Serialize};

use crate::messaging::message_entity as message;
use crate::realtime::settings::RealtimeSettings;
use crate::realtime::store as events;
use crate::{
    kernel::{
        db::{self, Db},
        error::DomainError,
    },
    realtime::{bus::EventBus, entities::user_event},
};

/// What an event is about.
// One enum for the stored form (`as_str`/`parse`) and the API's `EventKind`.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A message in one of the viewer's conversations (`message`).
    MessageAdded,
    /// A member moved their read marker (`read`).
    MessageRead,
    /// The viewer was added to a conversation (`conversationId`).
    ConversationAdded,
    /// A contact's presence changed (`presence`).
    PresenceChanged,
    /// Someone commented on or reacted to one of the viewer's posts (`postActivity`).
    PostActivity,
    /// Notes the viewer can see changed (`noteIds`, `notesSeq`): pull from your checkpoint.
    NotesChanged,
    /// A sync conflict on one of the viewer's notes was resolved (`noteIds`,
    /// `syncConflictIds`): see `syncConflicts`.
    SyncConflict,
    /// One of the viewer's uploads finished processing (`media`).
    MediaReady,
    /// One of the viewer's uploads could not be processed (`media`).
    MediaFailed,
}

impl EventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageAdded => "message_added",
            Self::MessageRead => "message_read",
            Self::ConversationAdded => "conversation_added",
            Self::PresenceChanged => "presence_changed",
            Self::PostActivity => "post_activity",
            Self::NotesChanged => "notes_changed",
            Self::SyncConflict => "sync_conflict",
            Self::MediaReady => "media_ready",
            Self::MediaFailed => "media_failed",
        }
    }

    /// Parses the stored form (`None` for kinds this version does not know).
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "message_added" => Self::MessageAdded,
            "message_read" => Self::MessageRead,
            "conversation_added" => Self::ConversationAdded,
            "presence_changed" => Self::PresenceChanged,
            "post_activity" => Self::PostActivity,
            "notes_changed" => Self::NotesChanged,
            "sync_conflict" => Self::SyncConflict,
            "media_ready" => Self::MediaReady,
            "media_failed" => Self::MediaFailed,
            _ => return None,
        })
    }
}

/// A message as carried in events (self-contained: delivering it needs no read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Row id.
    pub id: i64,
    /// Its conversation.
    pub conversation_id: i64,
    /// Position in the conversation.
    pub seq: i64,
    /// Who sent it.
    pub sender_id: i64,
    /// Text.
    pub body: String,
    /// The sender's client id for it.
    pub client_message_id: String,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<message::Model> for MessageRecord {
    fn from(m: message::Model) -> Self {
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender_id,
            body: m.body,
            client_message_id: m.client_message_id,
            created_at: m.created_at,
        }
    }
}

/// Payload of [`EventKind::MessageRead`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRecord {
    /// The conversation.
    pub conversation_id: i64,
    /// Who read.
    pub user_id: i64,
    /// Their new read marker.
    pub seq: i64,
}

/// Payload of [`EventKind::ConversationAdded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// The conversation.
    pub conversation_id: i64,
}

/// Payload of [`EventKind::PresenceChanged`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// Whose presence.
    pub user_id: i64,
    /// `online`, `away` or `offline`.
    pub status: String,
    /// Their last sign of life.
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
}

/// Payload of [`EventKind::NotesChanged`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesChangedRecord {
    /// The recipient's newest note change position.
    pub seq: i64,
    /// The notes that changed.
    pub note_ids: Vec<String>,
}

/// Payload of [`EventKind::SyncConflict`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncConflictRecord {
    /// The note.
    pub note_id: String,
    /// The recorded conflicts (one per field).
    pub conflict_ids: Vec<i64>,
    /// Their fields.
    pub fields: Vec<String>,
}

/// Appends one event of `kind` to the log of each recipient, inside the caller's write
/// transaction; returns the rows to publish once it commits.
pub async fn append(
    conn: &impl ConnectionTrait,
    settings: &RealtimeSettings,
    recipients: &[i64],
    kind: EventKind,
    payload: &impl Serialize,
) -> Result<Vec<user_event::Model>, DomainError> {
    let payload = serde_json::to_value(payload)?;
    let seqs = events::next_seqs(conn, recipients).await?;
    let now = db::now();
    let rows: Vec<user_event::Model> = seqs
        .iter()
        .map(|&(user_id, seq)| user_event::Model {
            id: 0,
            user_id,
            seq,
            kind: kind.as_str().to_owned(),
            payload: payload.clone(),
            created_at: now,
        })
        .collect();
    let active = rows
        .iter()
        .map(|r| user_event::ActiveModel {
            user_id: Set(r.user_id),
            seq: Set(r.seq),
            kind: Set(r.kind.clone()),
            payload: Set(r.payload.clone()),
            created_at: Set(r.created_at),
            ..Default::default()
        })
        .collect();
    events::insert(conn, active).await?;
    if settings.pg_notify {
        events::notify(conn, &settings.pg_notify_channel, &seqs).await?;
    }
    Ok(rows)
}

/// Where a reader starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Deliver events with seq greater than this.
    After(i64),
    /// The position is older than retention (or unknown): refetch, then continue from
    /// `latest`.
    Resync {
        /// The newest seq of the log.
        latest: i64,
    },
}

/// The start position for a client that has seen `after` (`None`: only new events).
pub async fn start(conn: &impl ConnectionTrait, user_id: i64, after: Option<i64>) -> Result<Start, DomainError> {
    let latest = events::head(conn, user_id).await?.map(|h| h.last_seq).unwrap_or(0);
    let after = match after {
        None => return Ok(Start::After(latest)),
        Some(seq) if seq < 0 => return Err(DomainError::invalid("afterSeq must not be negative")),
        Some(seq) if seq > latest => return Ok(Start::Resync { latest }),
        Some(seq) if seq == latest => return Ok(Start::After(seq)),
        Some(seq) => seq,
    };
    // Retention deletes prefixes: the client missed nothing iff the next event it needs is
    // still there.
    Ok(match events::oldest(conn, user_id).await? {
        Some(oldest) if oldest <= after + 1 => Start::After(after),
        _ => Start::Resync { latest },
    })
}

/// What a long-poll returns.
#[derive(Clone, Debug)]
pub enum Poll {
    /// Events after the position (possibly none when the wait ended), and the log's newest
    /// seq known to this read.
    Events {
        /// In seq order.
        events: Vec<user_event::Model>,
        /// True when more events follow the last one returned.
        has_more: bool,
    },
    /// The position is older than retention.
    Resync {
        /// The newest seq of the log.
        latest: i64,
    },
}

/// Returns events after `after` at once if there are any, else waits (up to `wait`) for the
/// first ones.
pub async fn poll(
    db: &Db,
    bus: &EventBus,
    user_id: i64,
    after: i64,
    wait: Duration,
    limit: usize,
    waiting: &Waiting,
) -> Result<Poll, DomainError> {
    // Subscribe before reading: an event committed between the read and the wait still wakes.
    let mut wakes = bus.subscribe(user_id);
    let after = match start(db.conn(), user_id, Some(after)).await? {
        Start::After(seq) => seq,
        Start::Resync { latest } => return Ok(Poll::Resync { latest }),
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut events = events::after(db.conn(), user_id, after, limit + 1).await?;
    let mut closing = waiting.closing.clone();
    // A wake without news (e.g. "re-read everything" after a reconnect) keeps waiting; a
    // shutdown answers at once (nothing new: the client polls again, on another replica).
    while events.is_empty() && tokio::time::Instant::now() < deadline && !*closing.borrow_and_update() {
        let _counted = GaugeGuard::new(&waiting.gauge);
        let woken = tokio::time::timeout_at(deadline, async {
            loop {
                tokio::select! {
                    wake = wakes.recv() => match wake {
                        Ok(wake) if wake.latest_seq.is_some_and(|s| s <= after) => continue,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                    },
                    _ = closing.changed() => return false,
                }
            }
        })
        .await;
        if woken != Ok(true) {
            break;
        }
        events = events::after(db.conn(), user_id, after, limit + 1).await?;
    }
    let has_more = events.len() > limit;
    events.truncate(limit);
    Ok(Poll::Events { events, has_more })
}

/// What a waiting poll watches besides its wakes: the server closing (answer at once) and
/// the gauge of waiting polls.
pub struct Waiting {
    /// `true` once the server is shutting down.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Counts the polls waiting.
    pub gauge: prometheus_client::metrics::gauge::Gauge,
}

/// Counts one waiting poll until dropped.
struct GaugeGuard<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> GaugeGuard<'a> {
    fn new(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Records delivery to a device up to `seq` (clamped to the log's head); returns the stored
/// position.
pub async fn ack(db: &Db, user_id: i64, device_id: Option<i64>, seq: i64) -> Result<i64, DomainError> {
    if seq < 0 {
        return Err(DomainError::invalid("upToSeq must not be negative"));
    }
    let latest = events::head(db.conn(), user_id).await?.map(|h| h.last_seq).unwrap_or(0);
    let seq = seq.min(latest);
    Ok(events::ack(db.conn(), user_id, device_id.unwrap_or(0), seq, db::now()).await?)
}

/// Prunes the logs by age and count every `retention_sweep_seconds` until the process ends.
pub fn spawn_retention_sweeper(db: Db, settings: RealtimeSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(settings.retention_sweep_seconds.max(1));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            interval.tick().await;
            match sweep(&db, &settings).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "pruned the event logs"),
                Err(err) => tracing::warn!(error = %err, "event-log retention sweep failed"),
            }
        }
    })
}

/// One retention pass.
pub async fn sweep(db: &Db, settings: &RealtimeSettings) -> Result<u64, DomainError> {
    let days = i64::try_from(settings.event_retention_days).unwrap_or(3650);
    let older_than = db::now() - chrono::Duration::days(days);
    let tx = db.begin_write().await?;
    let deleted = events::prune(&*tx, older_than, settings.event_retention_count).await?;
    tx.commit().await?;
    Ok(deleted)
}
