//! The GraphQL types of sync: `Note` and `NoteInput` (RxDB documents), the push row, the
//! checkpoint and pull bulk, the native per-row `NoteSyncResult`, and `SyncConflict`.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject};

use crate::app::app;
use crate::kernel::graphql::ids::{self, NodeType};
use crate::sync::{
    error::{SyncError, SyncResultExt},
    model::{Clocks, Content, NoteRow},
    pull::{Bulk, CheckpointIn},
    push::{NoteView, Resolution, RowResult, Status},
    settings::Strategy,
    store::{self, ConflictRow},
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
    /// A note as a viewer sees it.
    pub fn from_view(view: NoteView) -> Self {
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
    pub fn tombstone(id: String, viewer: i64) -> Self {
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
    /// The editable content.
    pub fn content(&self) -> Content {
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
pub struct SyncConflict(pub ConflictRow);

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
