//! Real-time in the API: the event log as `Event`s, `pollEvents` (long-poll), `ackEvents`,
//! presence (`heartbeat`, `presence`), and the `Subscription` root (`events`,
//! `messageAdded`, `presenceChanged`) served over WebSocket and SSE.
//!
//! Subscriptions replay from the log first and then go live with no gap and no duplicate
//! (see [`crate::realtime::stream`]). A position older than retention yields one
//! `RESYNC_REQUIRED` error item and ends the stream.

use std::{sync::Arc, time::Duration};

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream::BoxStream};

use crate::app::app;
use crate::realtime::{
    activity::{Activity, MediaRecord, PostActivityRecord},
    entities::user_event,
    log::{
        self, ConversationRecord, EventKind, MessageRecord, NotesChangedRecord, PresenceRecord, ReadRecord,
        SyncConflictRecord,
    },
    presence::Status,
    stream::{self, Item},
};
use crate::social::loaders;
use crate::{
    kernel::graphql::{
        context::viewer,
        error::{DomainResultExt, ErrorCode, api_error, loader_error, resync_required},
        ids::{self, NodeType},
    },
    messaging::{Message, member_conversation},
    social::{Comment, Post, ReactionKind, User},
};

/// One event of the viewer's log.
pub struct Event {
    row: user_event::Model,
    kind: EventKind,
}

impl Event {
    /// The API form of a logged event (`None` for kinds this version does not know).
    pub fn from_row(row: user_event::Model) -> Option<Self> {
        EventKind::parse(&row.kind).map(|kind| Self { row, kind })
    }

    fn payload<T: serde::de::DeserializeOwned>(&self, kind: EventKind) -> Option<T> {
        (self.kind == kind).then(|| serde_json::from_value(self.row.payload.clone()).ok()).flatten()
    }
}

#[Object(cache_control(private))]
impl Event {
    /// Position in the viewer's log: 1, 2, 3, … without gaps. Resume with `afterSeq` = the
    /// last one you processed.
    async fn seq(&self) -> i64 {
        self.row.seq
    }

    /// What happened.
    async fn kind(&self) -> EventKind {
        self.kind
    }

    /// When it was logged.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// The conversation concerned (message, read and conversation events).
    async fn conversation_id(&self) -> Option<ID> {
        let id = match self.kind {
            EventKind::MessageAdded => self.payload::<MessageRecord>(self.kind).map(|m| m.conversation_id),
            EventKind::MessageRead => self.payload::<ReadRecord>(self.kind).map(|r| r.conversation_id),
            EventKind::ConversationAdded => self.payload::<ConversationRecord>(self.kind).map(|c| c.conversation_id),
            EventKind::PresenceChanged
            | EventKind::PostActivity
            | EventKind::NotesChanged
            | EventKind::SyncConflict
            | EventKind::MediaReady
            | EventKind::MediaFailed => None,
        };
        id.map(|id| ids::encode(NodeType::Conversation, id))
    }

    /// The new message (`MESSAGE_ADDED`).
    async fn message(&self) -> Option<Message> {
        self.payload::<MessageRecord>(EventKind::MessageAdded).map(Message)
    }

    /// The moved read marker (`MESSAGE_READ`).
    async fn read(&self) -> Option<ReadReceipt> {
        self.payload::<ReadRecord>(EventKind::MessageRead).map(ReadReceipt)
    }

    /// The new presence (`PRESENCE_CHANGED`).
    async fn presence(&self) -> Option<Presence> {
        self.payload::<PresenceRecord>(EventKind::PresenceChanged).map(Presence)
    }

    /// The comment or reaction on the viewer's post (`POST_ACTIVITY`).
    async fn post_activity(&self) -> Option<PostActivity> {
        self.payload::<PostActivityRecord>(EventKind::PostActivity).map(PostActivity)
    }

    /// The notes concerned (`NOTES_CHANGED`, `SYNC_CONFLICT`).
    async fn note_ids(&self) -> Option<Vec<String>> {
        match self.kind {
            EventKind::NotesChanged => self.payload::<NotesChangedRecord>(self.kind).map(|r| r.note_ids),
            EventKind::SyncConflict => self.payload::<SyncConflictRecord>(self.kind).map(|r| vec![r.note_id]),
            _ => None,
        }
    }

    /// The viewer's newest note change position (`NOTES_CHANGED`).
    async fn notes_seq(&self) -> Option<i64> {
        self.payload::<NotesChangedRecord>(EventKind::NotesChanged).map(|r| r.seq)
    }

    /// The recorded conflicts, one per field (`SYNC_CONFLICT`; ids of `syncConflicts` nodes).
    async fn sync_conflict_ids(&self) -> Option<Vec<ID>> {
        self.payload::<SyncConflictRecord>(EventKind::SyncConflict)
            .map(|r| r.conflict_ids.into_iter().map(|id| ID(id.to_string())).collect())
    }

    /// The processed upload (`MEDIA_READY`, `MEDIA_FAILED`).
    async fn media(&self) -> Option<MediaEvent> {
        self.payload::<MediaRecord>(EventKind::MediaReady)
            .or_else(|| self.payload::<MediaRecord>(EventKind::MediaFailed))
            .map(MediaEvent)
    }
}

/// An upload of the viewer finished processing or failed.
pub struct MediaEvent(MediaRecord);

/// An upload of the viewer finished processing or failed.
#[Object(cache_control(private))]
impl MediaEvent {
    /// The upload (`upload(id:)` has its status, variants and URLs).
    async fn upload_id(&self) -> &str {
        &self.0.upload_id
    }

    /// Why processing failed (`MEDIA_FAILED`): `UNSUPPORTED_TYPE`, `LIMITS_EXCEEDED`, `CORRUPT`,
    /// `PROCESSING_UNAVAILABLE` (as `Upload.failureReason`).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

/// Comment or reaction.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostActivityKind {
    /// A new comment (`comment`).
    Comment,
    /// A reaction, new or changed (`reaction`).
    Reaction,
}

/// Someone's activity on one of the viewer's posts.
pub struct PostActivity(PostActivityRecord);

#[Object(cache_control(private))]
impl PostActivity {
    /// Comment or reaction.
    async fn kind(&self) -> PostActivityKind {
        match self.0.activity {
            Activity::Comment { .. } => PostActivityKind::Comment,
            Activity::Reaction { .. } => PostActivityKind::Reaction,
        }
    }

    /// The post (null if it was deleted since).
    async fn post(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Post>> {
        let row = loaders(ctx)?.posts.load_one(self.0.post_id).await.map_err(loader_error)?;
        Ok(row.map(Post::from))
    }

    /// Who commented or reacted.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let row = loaders(ctx)?.users.load_one(self.0.actor_id).await.map_err(loader_error)?;
        Ok(row.map(User::from))
    }

    /// The comment (`COMMENT`; null if it was deleted since).
    async fn comment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Comment>> {
        let Activity::Comment { comment_id } = self.0.activity else { return Ok(None) };
        let row = loaders(ctx)?.comments.load_one(comment_id).await.map_err(loader_error)?;
        Ok(row.map(|(c, _)| Comment::from(c)))
    }

    /// The reaction (`REACTION`).
    async fn reaction(&self) -> Option<ReactionKind> {
        match &self.0.activity {
            Activity::Reaction { kind } => ReactionKind::from_storage(kind),
            Activity::Comment { .. } => None,
        }
    }
}

/// A member's read marker moved.
pub struct ReadReceipt(ReadRecord);

#[Object(cache_control(private))]
impl ReadReceipt {
    /// The conversation.
    async fn conversation_id(&self) -> ID {
        ids::encode(NodeType::Conversation, self.0.conversation_id)
    }

    /// Who read.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let row = loaders(ctx)?.users.load_one(self.0.user_id).await.map_err(loader_error)?;
        Ok(row.map(User::from))
    }

    /// Their read marker: every message up to this `seq` is read.
    async fn seq(&self) -> i64 {
        self.0.seq
    }
}

/// Online, away or offline.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceStatus {
    /// Connected or heard from within the grace period.
    Online,
    /// The app is in the background or idle.
    Away,
    /// Not heard from for the grace period.
    Offline,
}

/// A user's presence.
pub struct Presence(PresenceRecord);

#[Object(cache_control(private))]
impl Presence {
    /// The user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let row = loaders(ctx)?.users.load_one(self.0.user_id).await.map_err(loader_error)?;
        Ok(row.map(User::from))
    }

    /// Their status.
    async fn status(&self) -> PresenceStatus {
        match Status::parse(&self.0.status) {
            Status::Online => PresenceStatus::Online,
            Status::Away => PresenceStatus::Away,
            Status::Offline => PresenceStatus::Offline,
        }
    }

    /// Their last sign of life.
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }
}

/// Result of `pollEvents`.
#[derive(SimpleObject)]
pub struct EventBatch {
    /// Events after `afterSeq`, in order (empty when the wait ended without any).
    pub events: Vec<Event>,
    /// The seq to send as `afterSeq` next time.
    pub next_after_seq: i64,
    /// True when more events are waiting: poll again at once.
    pub has_more: bool,
}

/// Result of `ackEvents`.
#[derive(SimpleObject)]
pub struct AckEventsPayload {
    /// Everything up to this seq is recorded as delivered to this device.
    pub acked_seq: i64,
}

/// Real-time reads.
#[derive(Default)]
pub struct RealtimeQuery;

#[Object]
impl RealtimeQuery {
    /// Long-poll fallback for networks that break WebSocket and SSE: returns at once when the
    /// viewer's log has events after `afterSeq`, otherwise waits up to `waitSeconds` (at most
    /// 30) for the first ones; a server shutting down answers a waiting poll at once with what
    /// it has (poll again). `RESYNC_REQUIRED` when `afterSeq` is older than retention.
    #[graphql(cache_control(private))]
    async fn poll_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The last seq processed (0 for everything retained).")] after_seq: i64,
        #[graphql(desc = "Seconds to wait when nothing is new (0 to 30; default 0: answer at once).")]
        wait_seconds: Option<i32>,
    ) -> async_graphql::Result<EventBatch> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let settings = &app.settings.realtime;
        let wait = u64::try_from(wait_seconds.unwrap_or(0))
            .ok()
            .filter(|w| *w <= settings.max_poll_wait_seconds)
            .ok_or_else(|| {
                api_error(
                    ErrorCode::BadUserInput,
                    format!("waitSeconds must be between 0 and {}", settings.max_poll_wait_seconds),
                )
            })?;
        let limit = settings.max_events_per_poll;
        let waiting = log::Waiting { closing: app.closing.subscribe(), gauge: app.metrics.live.polls_waiting.clone() };
        match log::poll(&app.db, &app.bus, user, after_seq, Duration::from_secs(wait), limit, &waiting).await.api()? {
            log::Poll::Resync { latest } => Err(resync_required(latest)),
            log::Poll::Events { events, has_more } => {
                let next_after_seq = events.last().map(|e| e.seq).unwrap_or(after_seq);
                Ok(EventBatch {
                    events: events.into_iter().filter_map(Event::from_row).collect(),
                    next_after_seq,
                    has_more,
                })
            }
        }
    }

    /// Presence of up to 100 users.
    #[graphql(cache_control(private))]
    async fn presence(&self, ctx: &Context<'_>, user_ids: Vec<ID>) -> async_graphql::Result<Vec<Presence>> {
        viewer(ctx).require().api()?;
        if user_ids.len() > 100 {
            return Err(api_error(ErrorCode::BadUserInput, "at most 100 userIds"));
        }
        let ids =
            user_ids.iter().map(|id| ids::decode_as(id, NodeType::User)).collect::<async_graphql::Result<Vec<_>>>()?;
        let records = app(ctx)?.presence.of(&ids).await.api()?;
        Ok(records.into_iter().map(Presence).collect())
    }
}

/// Real-time writes.
#[derive(Default)]
pub struct RealtimeMutation;

#[Object]
impl RealtimeMutation {
    /// Records that this device has received the viewer's events up to `upToSeq` (push
    /// notifications skip what a socket already delivered). Never moves backwards.
    async fn ack_events(&self, ctx: &Context<'_>, up_to_seq: i64) -> async_graphql::Result<AckEventsPayload> {
        let who = viewer(ctx);
        let user = who.require().api()?;
        let acked_seq = log::ack(&app(ctx)?.db, user, who.device_id, up_to_seq).await.api()?;
        Ok(AckEventsPayload { acked_seq })
    }

    /// A sign of life for clients without a socket (send every 30 s), or `AWAY` when the app
    /// goes to the background. Contacts see changes as `PRESENCE_CHANGED` events.
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "PresenceStatus::Online")] status: PresenceStatus,
    ) -> async_graphql::Result<Presence> {
        let user = viewer(ctx).require().api()?;
        let status = match status {
            PresenceStatus::Online => Status::Online,
            PresenceStatus::Away => Status::Away,
            PresenceStatus::Offline => {
                return Err(api_error(ErrorCode::BadUserInput, "status must be ONLINE or AWAY"));
            }
        };
        let record = app(ctx)?.presence.set(user, status).await.api()?;
        Ok(Presence(record))
    }
}

/// Live updates.
#[derive(Default)]
pub struct RealtimeSubscription;

/// The seq an SSE client resumes from (its `Last-Event-ID`): overrides `afterSeq`, being
/// newer than what the client first asked for.
#[derive(Clone, Copy, Debug)]
pub struct ResumeFrom(pub i64);

fn resume_point(ctx: &Context<'_>, after_seq: Option<i64>) -> Option<i64> {
    ctx.data_opt::<ResumeFrom>().map(|r| r.0).or(after_seq)
}

/// Items of the viewer's log that a live transport already read (shared delivery, see
/// `http::live::fanout`): `events` and `presenceChanged` yield exactly these and end, instead
/// of reading the log themselves. One event is read once and resolved once for every
/// subscription of the same operation.
#[derive(Clone)]
pub struct Preloaded(pub Arc<[Result<Item, async_graphql::Error>]>);

fn api_item(item: Result<Item, async_graphql::Error>) -> Option<async_graphql::Result<Event>> {
    match item {
        Ok(Item::Event(row)) => Event::from_row(row).map(Ok),
        Ok(Item::Resync { latest }) => Some(Err(resync_required(latest))),
        Err(err) => Some(Err(err)),
    }
}

fn user_events(
    ctx: &Context<'_>,
    after_seq: Option<i64>,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
    let user = viewer(ctx).require().api()?;
    if let Some(Preloaded(items)) = ctx.data_opt::<Preloaded>() {
        let items = items.clone();
        return Ok(futures_util::stream::iter((0..items.len()).filter_map(move |i| api_item(items[i].clone()))).boxed());
    }
    let app = app(ctx)?;
    let after_seq = resume_point(ctx, after_seq);
    let items = stream::user_events(app.db.clone(), app.bus.clone(), user, after_seq);
    // After a resync item the domain stream ends by itself.
    Ok(items
        .filter_map(|item| async move { api_item(item.map_err(crate::kernel::graphql::error::domain_error)) })
        .boxed())
}

#[Subscription]
impl RealtimeSubscription {
    /// Every event of the viewer's log. With `afterSeq`, first what was missed after it, then
    /// live — no gap, no duplicate. Without it, only new events.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The last seq processed.")] after_seq: Option<i64>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
        user_events(ctx, after_seq)
    }

    /// Messages of one conversation. With `afterSeq` (a message `seq`), first those after it,
    /// then live.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(desc = "The last message seq the app has.")] after_seq: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
        let user = viewer(ctx).require().api()?;
        let row = ids::decode_as(&conversation_id, NodeType::Conversation)?;
        member_conversation(ctx, row).await?;
        let app = app(ctx)?;
        let after_seq = resume_point(ctx, after_seq);
        let messages = stream::conversation_messages(app.db.clone(), app.bus.clone(), user, row, after_seq);
        Ok(messages.map(|item| item.map(Message).map_err(crate::kernel::graphql::error::domain_error)))
    }

    /// Presence changes of the viewer's contacts, as events of the viewer's log (resume with
    /// `afterSeq` like `events`).
    async fn presence_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The last seq processed.")] after_seq: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Event>> + use<>> {
        let events = user_events(ctx, after_seq)?;
        Ok(events.filter(|item| {
            let keep = match item {
                Ok(event) => event.kind == EventKind::PresenceChanged,
                Err(_) => true,
            };
            async move { keep }
        }))
    }
}
