//! Sync in the API: the `Note` type, `pullNotes` / `pushNotes` / `streamNotes` in the shapes
//! of RxDB's GraphQL replication plugin (`deletedField: 'deleted'`), the native per-row
//! `syncNotes`, sharing, and the conflict records (`Note.conflicts`, `syncConflicts`,
//! `resolveSyncConflict`). docs/sync-protocol.md describes the protocol.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription,
    connection::{Connection, Edge},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{Stream, StreamExt};

use crate::app::app;
use crate::kernel::graphql::{
    context::viewer,
    error::{DomainResultExt, ErrorCode, api_error},
    ids::{self, NodeType},
};
use crate::sync::{
    conflicts::{self, Action},
    error::{SyncError, SyncResultExt},
    model::{Clocks, Content, NoteRow},
    pull::{self, Bulk, CheckpointIn},
    push::{self, Actor, NoteView, PushRow, Resolution, RowResult, Status},
    settings::Strategy,
    share,
    store::{self, ConflictRow},
    stream,
};

/// A note or task: created offline with a client-generated UUID, owned by one user and
/// optionally shared with collaborators, who can edit it too.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Note {
    /// Client-generated UUID (RxDB primary key).
    pub id: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Checked off.
    pub done: bool,
    /// Sort position chosen by the client.
    pub position: f64,
    /// Tags.
    pub tags: Vec<String>,
    /// Server time of the last change in ms since the epoch (set by the server; what the
    /// client sends is ignored).
    pub updated_at: f64,
    /// Tombstone: deleted (or no longer shared with the viewer).
    pub deleted: bool,
    /// The owner (a `User` id).
    pub owner: ID,
    /// Collaborators (`User` ids).
    pub collaborators: Vec<ID>,
    /// Hybrid-logical-clock stamp of the newest field write (`<NTP64>/<hex id>`).
    pub hlc: Option<String>,
    /// Increases with every change of the note on the server.
    pub server_revision: i64,
    #[graphql(skip)]
    visible: bool,
}

impl Note {
    fn from_view(view: NoteView) -> Self {
        let hlc = view.row.newest_clock();
        let row = view.row;
        Self {
            id: row.id,
            title: row.content.title,
            body: row.content.body,
            done: row.content.done,
            position: row.content.position,
            tags: row.content.tags,
            updated_at: row.updated_at_ms as f64,
            deleted: row.content.deleted || !view.visible,
            owner: ids::encode(NodeType::User, row.owner_id),
            collaborators: view.members.into_iter().map(|m| ids::encode(NodeType::User, m)).collect(),
            hlc,
            server_revision: row.revision,
            visible: view.visible,
        }
    }

    /// An empty tombstone for a row the viewer may not see.
    fn tombstone(id: String, viewer: i64) -> Self {
        let row = NoteRow {
            id,
            owner_id: viewer,
            content: Content {
                title: String::new(),
                body: String::new(),
                done: false,
                position: 0.0,
                tags: Vec::new(),
                deleted: true,
            },
            updated_at_ms: 0,
            created_at_ms: 0,
            revision: 0,
            clocks: Clocks::new(),
            last_user_id: viewer,
            last_device_id: None,
        };
        Self::from_view(NoteView { row, members: Vec::new(), visible: false })
    }
}

#[ComplexObject]
impl Note {
    /// Conflicts on this note not yet dismissed, newest first.
    async fn conflicts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SyncConflict>> {
        if !self.visible {
            return Ok(Vec::new());
        }
        let rows = store::open_conflicts_of(app(ctx)?.db.conn(), std::slice::from_ref(&self.id))
            .await
            .map_err(SyncError::from)
            .api()?;
        Ok(rows.into_iter().map(SyncConflict).collect())
    }
}

/// A note as a client sends it (RxDB pushes whole documents; server-kept fields are ignored).
#[derive(InputObject, Clone)]
pub struct NoteInput {
    /// Client-generated UUID.
    pub id: String,
    /// Title.
    #[graphql(default)]
    pub title: String,
    /// Body text.
    #[graphql(default)]
    pub body: String,
    /// Checked off.
    #[graphql(default)]
    pub done: bool,
    /// Sort position.
    #[graphql(default)]
    pub position: f64,
    /// Tags.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// Tombstone.
    #[graphql(default)]
    pub deleted: bool,
    /// Ignored (the server keeps it).
    pub updated_at: Option<f64>,
    /// Ignored (the server keeps it).
    pub owner: Option<ID>,
    /// Ignored (use `shareNote` / `unshareNote`).
    pub collaborators: Option<Vec<ID>>,
    /// The clock stamp of the client's last edit (`<NTP64>/<hex id>`); when it differs from
    /// the assumed state's, last-writer-wins fields compare it instead of the arrival time.
    pub hlc: Option<String>,
    /// Ignored (the server keeps it).
    pub server_revision: Option<i64>,
}

impl NoteInput {
    fn content(&self) -> Content {
        Content {
            title: self.title.clone(),
            body: self.body.clone(),
            done: self.done,
            position: self.position,
            tags: self.tags.clone(),
            deleted: self.deleted,
        }
    }
}

/// One outbox row (RxDB's push row).
#[derive(InputObject, Clone)]
pub struct NotePushRow {
    /// The server state the client started from (null for a note created on the client).
    pub assumed_master_state: Option<NoteInput>,
    /// The client's state.
    pub new_document_state: NoteInput,
}

/// Where a pull starts: send back the `checkpoint` of the previous page unchanged.
#[derive(InputObject, Clone)]
pub struct NoteCheckpointInput {
    /// The last document's id.
    pub id: Option<String>,
    /// Its `updatedAt`.
    pub updated_at: Option<f64>,
    /// The viewer's change position (without it the server re-sends everything changed since
    /// `updatedAt` minus a minute).
    pub seq: Option<i64>,
    /// Positions retention had forgotten when this sync began from a null checkpoint.
    pub floor: Option<i64>,
}

impl From<NoteCheckpointInput> for CheckpointIn {
    fn from(cp: NoteCheckpointInput) -> Self {
        Self { id: cp.id, updated_at: cp.updated_at, seq: cp.seq, floor: cp.floor }
    }
}

/// The position after a page.
#[derive(SimpleObject, Clone)]
pub struct NoteCheckpoint {
    /// The last document's id.
    pub id: String,
    /// Its `updatedAt`.
    pub updated_at: f64,
    /// The viewer's change position.
    pub seq: i64,
    /// Positions retention had forgotten when this sync began (from a null checkpoint).
    pub floor: i64,
}

/// A page of changes (RxDB's pull bulk).
#[derive(SimpleObject)]
pub struct NotePullBulk {
    /// Changed notes, tombstones included, in change order.
    pub documents: Vec<Note>,
    /// Where the next pull starts (the same one back when nothing is new; null only for an
    /// empty initial pull).
    pub checkpoint: Option<NoteCheckpoint>,
}

impl From<Bulk> for NotePullBulk {
    fn from(bulk: Bulk) -> Self {
        Self {
            documents: bulk.documents.into_iter().map(Note::from_view).collect(),
            checkpoint: bulk.checkpoint.map(|c| NoteCheckpoint {
                id: c.id,
                updated_at: c.updated_at,
                seq: c.seq,
                floor: c.floor,
            }),
        }
    }
}

/// How a pushed row ended.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteSyncStatus {
    /// Applied, or applied before (a repeated push): the server holds it.
    Synced,
    /// The server's state differed from the assumed one: resolved (see `resolution` and
    /// `conflicts`); `note` is the server's state now.
    Conflict,
    /// Refused (`error`); the rows after it were still applied.
    Rejected,
}

/// How a conflicting row was resolved.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictResolution {
    /// Field-level three-way merge: fields changed on one side took that side; fields both
    /// changed followed their strategy.
    Merged,
    /// Nothing was applied: take `note`, re-apply your change and push again.
    ServerWins,
}

/// Why a row was refused.
#[derive(SimpleObject)]
pub struct SyncRowError {
    /// An `extensions.code` value (docs/api.md): `BAD_USER_INPUT`, `PAYLOAD_TOO_LARGE`,
    /// `FORBIDDEN`, `INTERNAL`, …
    pub code: String,
    /// For the developer.
    pub message: String,
}

/// The answer for one pushed row.
#[derive(SimpleObject)]
pub struct NoteSyncResult {
    /// The row's note id.
    pub id: String,
    /// What happened.
    pub status: NoteSyncStatus,
    /// The server's state after the row (null when the viewer may not see the note).
    pub note: Option<Note>,
    /// For `CONFLICT`: how it was resolved.
    pub resolution: Option<ConflictResolution>,
    /// For `CONFLICT`: one record per field both sides changed.
    pub conflicts: Vec<SyncConflict>,
    /// For `REJECTED`: why.
    pub error: Option<SyncRowError>,
}

impl From<RowResult> for NoteSyncResult {
    fn from(r: RowResult) -> Self {
        Self {
            id: r.id,
            status: match r.status {
                Status::Synced => NoteSyncStatus::Synced,
                Status::Conflict => NoteSyncStatus::Conflict,
                Status::Rejected => NoteSyncStatus::Rejected,
            },
            note: r.note.map(Note::from_view),
            resolution: r.resolution.map(|res| match res {
                Resolution::Merged => ConflictResolution::Merged,
                Resolution::ServerWins => ConflictResolution::ServerWins,
            }),
            conflicts: r.conflicts.into_iter().map(SyncConflict).collect(),
            error: r.error.map(|(code, message)| SyncRowError { code: code.as_str().to_owned(), message }),
        }
    }
}

/// A note field.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteField {
    /// `title`
    Title,
    /// `body`
    Body,
    /// `done`
    Done,
    /// `position`
    Position,
    /// `tags`
    Tags,
    /// `deleted`
    Deleted,
}

/// The strategy that resolved a conflict.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictStrategy {
    /// The server's value stayed.
    ServerWins,
    /// The later hybrid-logical-clock stamp won.
    LastWriterWins,
    /// Both text versions were kept.
    KeepBoth,
}

/// Who kept the field.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictWinner {
    /// The server's value.
    Server,
    /// The pushed value.
    Client,
    /// Both (text).
    Both,
}

/// What to do with a conflict.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncConflictAction {
    /// Acknowledge it; nothing changes.
    Dismiss,
    /// Store the server's version of the field (and dismiss).
    TakeServer,
    /// Store the pushed version of the field (and dismiss).
    TakeClient,
}

/// A resolved conflict on one field, kept so the user can be told and change their mind.
pub struct SyncConflict(ConflictRow);

fn json(text: &str) -> Json<serde_json::Value> {
    Json(serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
}

#[Object]
impl SyncConflict {
    /// Conflict id (for `resolveSyncConflict`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The note.
    async fn note_id(&self) -> &str {
        &self.0.note_id
    }

    /// The field both sides changed.
    async fn field(&self) -> NoteField {
        match crate::sync::model::Field::parse(&self.0.field) {
            Some(crate::sync::model::Field::Title) | None => NoteField::Title,
            Some(crate::sync::model::Field::Body) => NoteField::Body,
            Some(crate::sync::model::Field::Done) => NoteField::Done,
            Some(crate::sync::model::Field::Position) => NoteField::Position,
            Some(crate::sync::model::Field::Tags) => NoteField::Tags,
            Some(crate::sync::model::Field::Deleted) => NoteField::Deleted,
        }
    }

    /// How it was resolved.
    async fn strategy(&self) -> ConflictStrategy {
        match Strategy::parse(&self.0.strategy) {
            Some(Strategy::ServerWins) | None => ConflictStrategy::ServerWins,
            Some(Strategy::LastWriterWins) => ConflictStrategy::LastWriterWins,
            Some(Strategy::KeepBoth) => ConflictStrategy::KeepBoth,
        }
    }

    /// Who kept the field.
    async fn winner(&self) -> ConflictWinner {
        match self.0.winner.as_str() {
            "client" => ConflictWinner::Client,
            "both" => ConflictWinner::Both,
            _ => ConflictWinner::Server,
        }
    }

    /// The value both sides started from (null when both created the note).
    async fn base_value(&self) -> Option<Json<serde_json::Value>> {
        self.0.base_value.as_deref().map(json)
    }

    /// The server's value before the push.
    async fn server_value(&self) -> Json<serde_json::Value> {
        json(&self.0.server_value)
    }

    /// The pushed value.
    async fn client_value(&self) -> Json<serde_json::Value> {
        json(&self.0.client_value)
    }

    /// The value stored.
    async fn resolved_value(&self) -> Json<serde_json::Value> {
        json(&self.0.resolved_value)
    }

    /// Who pushed (a `User` id).
    async fn user(&self) -> ID {
        ids::encode(NodeType::User, self.0.user_id)
    }

    /// From which device session.
    async fn device_id(&self) -> Option<ID> {
        self.0.device_id.map(|d| ids::encode(NodeType::Device, d))
    }

    /// Who wrote the server's value.
    async fn other_user(&self) -> Option<ID> {
        self.0.other_user_id.map(|u| ids::encode(NodeType::User, u))
    }

    /// From which device session.
    async fn other_device_id(&self) -> Option<ID> {
        self.0.other_device_id.map(|d| ids::encode(NodeType::Device, d))
    }

    /// When it was resolved (ms since the epoch).
    async fn created_at(&self) -> f64 {
        self.0.created_at_ms as f64
    }

    /// Whether someone dismissed it (or took a version).
    async fn dismissed(&self) -> bool {
        self.0.dismissed_at_ms.is_some()
    }
}

fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let who = viewer(ctx);
    Ok(Actor { user_id: who.require().api()?, device_id: who.device_id })
}

fn push_rows(ctx: &Context<'_>, rows: Vec<NotePushRow>) -> async_graphql::Result<Vec<PushRow>> {
    let max = app(ctx)?.settings.sync.max_push_rows;
    if rows.len() > max {
        return Err(api_error(ErrorCode::BadUserInput, format!("at most {max} rows per push")));
    }
    Ok(rows
        .into_iter()
        .map(|r| PushRow {
            id: r.new_document_state.id.clone(),
            assumed_id: r.assumed_master_state.as_ref().map(|a| a.id.clone()),
            assumed: r.assumed_master_state.as_ref().map(NoteInput::content),
            assumed_hlc: r.assumed_master_state.and_then(|a| a.hlc),
            new: r.new_document_state.content(),
            new_hlc: r.new_document_state.hlc,
        })
        .collect())
}

const CONFLICT_CURSOR: &str = "conflicts|";

/// Sync reads.
#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// The viewer's notes changed after `checkpoint` (null: initial sync), tombstones
    /// included, in change order, at most `limit`. `RESYNC_REQUIRED` when the checkpoint is
    /// older than tombstone retention: drop local notes and pull from null.
    #[graphql(cache_control(private))]
    async fn pull_notes(
        &self,
        ctx: &Context<'_>,
        checkpoint: Option<NoteCheckpointInput>,
        limit: i32,
    ) -> async_graphql::Result<NotePullBulk> {
        let viewer = actor(ctx)?.user_id;
        let app = app(ctx)?;
        let max = app.settings.sync.max_pull_limit;
        if !(1..=max).contains(&limit) {
            return Err(api_error(ErrorCode::BadUserInput, format!("limit must be between 1 and {max}")));
        }
        let bulk = pull::pull(app.db.conn(), viewer, checkpoint.map(Into::into), limit as u64).await.api()?;
        Ok(bulk.into())
    }

    /// One note the viewer can see (null otherwise).
    #[graphql(cache_control(private))]
    async fn note(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Note>> {
        let viewer = actor(ctx)?.user_id;
        crate::sync::model::validate_id(&id).api()?;
        Ok(push::current(app(ctx)?.db.conn(), &id, viewer).await.api()?.map(Note::from_view))
    }

    /// Resolved conflicts on notes the viewer can see, newest first.
    #[graphql(cache_control(private))]
    async fn sync_conflicts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Also dismissed ones (default false).")] include_dismissed: Option<bool>,
    ) -> async_graphql::Result<Connection<String, SyncConflict>> {
        let viewer = actor(ctx)?.user_id;
        let include_dismissed = include_dismissed.unwrap_or(false);
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(api_error(ErrorCode::BadUserInput, "first must be between 1 and 100"));
        }
        let before = match after {
            None => None,
            Some(cursor) => Some(
                URL_SAFE_NO_PAD
                    .decode(cursor.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix(CONFLICT_CURSOR).and_then(|id| id.parse::<i64>().ok()))
                    .ok_or_else(|| api_error(ErrorCode::BadUserInput, "invalid cursor"))?,
            ),
        };
        let conn = app(ctx)?.db.conn();
        let mut rows = store::conflicts_for_viewer(conn, viewer, before, include_dismissed, first as u64 + 1)
            .await
            .map_err(SyncError::from)
            .api()?;
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut connection = Connection::new(before.is_some(), has_next);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = URL_SAFE_NO_PAD.encode(format!("{CONFLICT_CURSOR}{}", row.id));
            Edge::new(cursor, SyncConflict(row))
        }));
        Ok(connection)
    }
}

/// Sync writes.
#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// RxDB's push: applies the rows in order and returns the server's state of every row it
    /// did not take as sent — conflicts (assumed state not the server's), rows merged with
    /// other changes, and refused rows (their server state, or an empty tombstone when the
    /// viewer may not see the note). An empty list means everything was applied as sent.
    async fn push_notes(&self, ctx: &Context<'_>, rows: Vec<NotePushRow>) -> async_graphql::Result<Vec<Note>> {
        let actor = actor(ctx)?;
        let rows = push_rows(ctx, rows)?;
        let sent: Vec<Content> = rows.iter().map(|r| r.new.clone()).collect();
        let results = push::push(app(ctx)?, actor, rows).await;
        Ok(results
            .into_iter()
            .zip(sent)
            .filter_map(|(result, sent)| match result.note {
                Some(view) if result.status != Status::Synced || !view.row.content.same_all(&sent) => {
                    Some(Note::from_view(view))
                }
                Some(_) => None,
                None if result.status == Status::Rejected => Some(Note::tombstone(result.id, actor.user_id)),
                None => None,
            })
            .collect())
    }

    /// The native push: the same rows, one answer per row in order — `SYNCED`, `CONFLICT`
    /// (with the server's state and how it was resolved) or `REJECTED` (code and message). A
    /// refused row never stops the rows after it; a repeated row answers `SYNCED`.
    async fn sync_notes(
        &self,
        ctx: &Context<'_>,
        rows: Vec<NotePushRow>,
    ) -> async_graphql::Result<Vec<NoteSyncResult>> {
        let actor = actor(ctx)?;
        let rows = push_rows(ctx, rows)?;
        Ok(push::push(app(ctx)?, actor, rows).await.into_iter().map(NoteSyncResult::from).collect())
    }

    /// Shares a note the viewer owns with another user, who can then pull and edit it.
    async fn share_note(&self, ctx: &Context<'_>, id: String, user_id: ID) -> async_graphql::Result<Note> {
        set_member(ctx, id, user_id, true).await
    }

    /// Stops sharing a note; the user's devices get it as a deletion.
    async fn unshare_note(&self, ctx: &Context<'_>, id: String, user_id: ID) -> async_graphql::Result<Note> {
        set_member(ctx, id, user_id, false).await
    }

    /// Dismisses a conflict, or stores one of its two versions as a new change.
    async fn resolve_sync_conflict(
        &self,
        ctx: &Context<'_>,
        id: ID,
        action: SyncConflictAction,
    ) -> async_graphql::Result<SyncConflict> {
        let actor = actor(ctx)?;
        let id = id.parse::<i64>().map_err(|_| api_error(ErrorCode::BadUserInput, "invalid conflict id"))?;
        let action = match action {
            SyncConflictAction::Dismiss => Action::Dismiss,
            SyncConflictAction::TakeServer => Action::TakeServer,
            SyncConflictAction::TakeClient => Action::TakeClient,
        };
        let app = app(ctx)?;
        let (conflict, events) = conflicts::resolve(app, actor, id, action).await.api()?;
        app.bus.publish(events);
        Ok(SyncConflict(conflict))
    }
}

async fn set_member(ctx: &Context<'_>, id: String, user_id: ID, share: bool) -> async_graphql::Result<Note> {
    let actor = actor(ctx)?;
    let user = ids::decode_as(&user_id, NodeType::User)?;
    let app = app(ctx)?;
    let (view, events) = share::set_member(app, actor, &id, user, share).await.api()?;
    app.bus.publish(events);
    Ok(Note::from_view(view))
}

/// Sync live updates.
#[derive(Default)]
pub struct SyncSubscription;

#[Subscription]
impl SyncSubscription {
    /// The viewer's note changes as they happen (RxDB's pull stream). With `checkpoint`,
    /// first what changed after it. After a reconnect, pull from your checkpoint (RxDB does
    /// on its own), then listen again.
    async fn stream_notes(
        &self,
        ctx: &Context<'_>,
        checkpoint: Option<NoteCheckpointInput>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<NotePullBulk>> + use<>> {
        let viewer = actor(ctx)?.user_id;
        let app = app(ctx)?;
        let bulks = stream::notes(app.db.clone(), app.bus.clone(), viewer, checkpoint.map(Into::into));
        Ok(bulks.map(|item| item.map(NotePullBulk::from).map_err(SyncError::into_api)))
    }
}
