//! Pushes: the client's outbox rows applied in order, each in its own transaction, so that a
//! bad row never blocks the rows after it and a crash loses no committed row. A row is
//! remembered by a hash of its content in the same transaction as its effect, so a repeated
//! push of an applied row answers `SYNCED` and changes nothing, also after a crash.

use sea_orm::ConnectionTrait;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::kernel::graphql::error::ErrorCode;
use crate::realtime::{EventKind, SyncConflictRecord, append_event, user_event};
use crate::sync::{
    changes::{self, Write},
    error::SyncError,
    merge::{self, Merged},
    model::{Clocks, Content, Field, NoteRow, now_ms, validate_id},
    settings::ConflictMode,
    store::{self, ConflictRow},
};

/// Who pushes.
#[derive(Clone, Copy, Debug)]
pub struct Actor {
    /// The user.
    pub user_id: i64,
    /// Their device session, when the token has one.
    pub device_id: Option<i64>,
}

/// One outbox row: the state the client last saw from the server and its new state.
#[derive(Clone, Debug)]
pub struct PushRow {
    /// The note id.
    pub id: String,
    /// The id inside `assumed` (must be `id`).
    pub assumed_id: Option<String>,
    /// What the client believes the server has (none: the client created the note).
    pub assumed: Option<Content>,
    /// The clock stamp of the assumed state, as the client holds it.
    pub assumed_hlc: Option<String>,
    /// The client's state.
    pub new: Content,
    /// The clock stamp of the client's last edit (optional).
    pub new_hlc: Option<String>,
}

/// How a row ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Applied (or applied before): the server holds the client's state.
    Synced,
    /// The server's state differed from the assumed one: resolved, see the conflicts.
    Conflict,
    /// Refused: see the code.
    Rejected,
}

/// How a conflicting row was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Field-level three-way merge; fields both sides changed followed their strategy.
    Merged,
    /// Nothing of the row was applied: the client resolves and pushes again.
    ServerWins,
}

/// A note as one viewer sees it.
#[derive(Clone, Debug)]
pub struct NoteView {
    /// The stored note.
    pub row: NoteRow,
    /// Its collaborators.
    pub members: Vec<i64>,
    /// False when the viewer has no access (delivered as an empty tombstone).
    pub visible: bool,
}

/// The answer for one row.
#[derive(Clone, Debug)]
pub struct RowResult {
    /// The row's note id.
    pub id: String,
    /// What happened.
    pub status: Status,
    /// The server's state after the row (none when the viewer may not see it).
    pub note: Option<NoteView>,
    /// For `Conflict`: how.
    pub resolution: Option<Resolution>,
    /// For `Conflict`: the fields both sides changed, as recorded.
    pub conflicts: Vec<ConflictRow>,
    /// For `Rejected`: why.
    pub error: Option<(ErrorCode, String)>,
}

/// Applies `rows` in order; every row gets an answer.
pub async fn push(app: &App, actor: Actor, rows: Vec<PushRow>) -> Vec<RowResult> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id.clone();
        match apply(app, actor, &row).await {
            Ok((result, events)) => {
                app.bus.publish(events);
                out.push(result);
            }
            Err(err) => {
                let code = err.code();
                let message = err.public_message();
                // The state the client should fall back to, when it may see the note.
                let note = match validate_id(&id) {
                    Ok(()) => current(app.db.conn(), &id, actor.user_id).await.ok().flatten(),
                    Err(_) => None,
                };
                out.push(RowResult {
                    id,
                    status: Status::Rejected,
                    note,
                    resolution: None,
                    conflicts: Vec::new(),
                    error: Some((code, message)),
                });
            }
        }
    }
    out
}

/// The note as `viewer` may see it now (none when they have no access).
pub async fn current(conn: &impl ConnectionTrait, id: &str, viewer: i64) -> Result<Option<NoteView>, SyncError> {
    let Some(row) = store::notes_by_ids(conn, &[id.to_owned()]).await?.into_iter().next() else { return Ok(None) };
    let members = store::members(conn, id).await?;
    if row.owner_id != viewer && !members.contains(&viewer) {
        return Ok(None);
    }
    Ok(Some(NoteView { row, members, visible: true }))
}

fn row_hash(row: &PushRow) -> Result<String, SyncError> {
    let canonical = serde_json::to_vec(&(&row.id, &row.assumed, &row.new, &row.new_hlc))?;
    Ok(Sha256::digest(canonical).iter().map(|b| format!("{b:02x}")).collect())
}

type Applied = (RowResult, Vec<user_event::Model>);

async fn apply(app: &App, actor: Actor, row: &PushRow) -> Result<Applied, SyncError> {
    let settings = &app.settings.sync;
    validate_id(&row.id)?;
    if row.assumed_id.as_ref().is_some_and(|a| *a != row.id) {
        return Err(SyncError::Invalid("assumedMasterState.id must equal newDocumentState.id".into()));
    }
    row.new.validate(settings)?;
    if let Some(assumed) = &row.assumed {
        assumed.validate(settings)?;
    }
    let hash = row_hash(row)?;
    // A client stamp counts only when the client stamped a new edit; otherwise the server
    // stamps the row on arrival.
    let stamp = match &row.new_hlc {
        Some(h) if row.assumed_hlc.as_ref() != Some(h) => app.sync_clock.observe(h)?,
        _ => app.sync_clock.stamp(),
    };
    for _ in 0..3 {
        let tx = app.db.begin_write().await?;
        if store::applied(&*tx, actor.user_id, &row.id, &hash).await? {
            let note = current(&*tx, &row.id, actor.user_id).await?;
            tx.commit().await?;
            return Ok((synced(row, note), Vec::new()));
        }
        let Some(server) = store::lock_note(&*tx, &row.id).await? else {
            let mut note = NoteRow {
                id: row.id.clone(),
                owner_id: actor.user_id,
                content: row.new.clone(),
                updated_at_ms: 0,
                created_at_ms: 0,
                revision: 1,
                clocks: Field::ALL.into_iter().map(|f| (f.as_str().to_owned(), stamp.to_string())).collect::<Clocks>(),
                last_user_id: actor.user_id,
                last_device_id: actor.device_id,
            };
            let realtime = &app.settings.realtime;
            let Some(events) =
                changes::record(&*tx, realtime, &mut note, None, &[actor.user_id], &[], Write::Insert).await?
            else {
                // Created concurrently by another push: retry against it.
                drop(tx);
                continue;
            };
            store::insert_applied(&*tx, actor.user_id, &row.id, &hash, now_ms()).await?;
            tx.commit().await?;
            let view = NoteView { row: note, members: Vec::new(), visible: true };
            return Ok((synced(row, Some(view)), events));
        };
        let members = store::members(&*tx, &row.id).await?;
        if server.owner_id != actor.user_id && !members.contains(&actor.user_id) {
            return Err(SyncError::Forbidden("this note belongs to someone else"));
        }
        let matches = row.assumed.as_ref().is_some_and(|a| a.same_all(&server.content));
        let merged = if matches || row.new.same_all(&server.content) {
            merge::merge(Some(&server.content), &server.content, &server.clocks, &row.new, &stamp, &settings.strategies)
        } else {
            match settings.conflict_mode {
                ConflictMode::Merge => merge::merge(
                    row.assumed.as_ref(),
                    &server.content,
                    &server.clocks,
                    &row.new,
                    &stamp,
                    &settings.strategies,
                ),
                ConflictMode::ServerWins => merge::server_wins(row.assumed.as_ref(), &server.content, &row.new),
            }
        };
        // Keeping both versions may grow a text past its bound: refuse rather than store it.
        merged.content.validate(settings)?;
        let resolution = match settings.conflict_mode {
            ConflictMode::Merge => Resolution::Merged,
            ConflictMode::ServerWins => Resolution::ServerWins,
        };
        let (note, mut events, conflicts) = write_merged(app, &tx, actor, server, &members, &stamp, merged).await?;
        store::insert_applied(&*tx, actor.user_id, &row.id, &hash, now_ms()).await?;
        if !conflicts.is_empty() {
            let record = SyncConflictRecord {
                note_id: row.id.clone(),
                conflict_ids: conflicts.iter().map(|c| c.id).collect(),
                fields: conflicts.iter().map(|c| c.field.clone()).collect(),
            };
            let mut viewers: Vec<i64> = members.iter().copied().chain([note.owner_id]).collect();
            viewers.sort_unstable();
            viewers.dedup();
            events
                .extend(append_event(&*tx, &app.settings.realtime, &viewers, EventKind::SyncConflict, &record).await?);
        }
        tx.commit().await?;
        let view = NoteView { row: note, members, visible: true };
        let result = if conflicts.is_empty() {
            synced(row, Some(view))
        } else {
            RowResult {
                id: row.id.clone(),
                status: Status::Conflict,
                note: Some(view),
                resolution: Some(resolution),
                conflicts,
                error: None,
            }
        };
        return Ok((result, events));
    }
    Err(SyncError::Domain(crate::kernel::error::DomainError::Conflict("the note is being created concurrently: retry")))
}

fn synced(row: &PushRow, note: Option<NoteView>) -> RowResult {
    RowResult { id: row.id.clone(), status: Status::Synced, note, resolution: None, conflicts: Vec::new(), error: None }
}

/// Stores a merge's outcome on a locked note and records its conflicts.
async fn write_merged(
    app: &App,
    tx: &crate::kernel::db::WriteTx,
    actor: Actor,
    server: NoteRow,
    members: &[i64],
    stamp: &uhlc::Timestamp,
    merged: Merged,
) -> Result<(NoteRow, Vec<user_event::Model>, Vec<ConflictRow>), SyncError> {
    let mut note = server.clone();
    let mut events = Vec::new();
    if !merged.written.is_empty() {
        note.content = merged.content;
        note.revision += 1;
        for field in &merged.written {
            note.clocks.insert(field.as_str().to_owned(), stamp.to_string());
        }
        note.last_user_id = actor.user_id;
        note.last_device_id = actor.device_id;
        let visible: Vec<i64> = members.iter().copied().chain([note.owner_id]).collect();
        let realtime = &app.settings.realtime;
        events = changes::record(&**tx, realtime, &mut note, Some(server.updated_at_ms), &visible, &[], Write::Update)
            .await?
            .unwrap_or_default();
    }
    let mut conflicts = Vec::with_capacity(merged.conflicts.len());
    let at = now_ms();
    for c in merged.conflicts {
        let mut record = ConflictRow {
            id: 0,
            note_id: note.id.clone(),
            field: c.field.as_str().to_owned(),
            strategy: c.strategy.as_str().to_owned(),
            winner: c.winner.as_str().to_owned(),
            base_value: c.base.map(|v| v.to_string()),
            server_value: c.server.to_string(),
            client_value: c.client.to_string(),
            resolved_value: c.resolved.to_string(),
            user_id: actor.user_id,
            device_id: actor.device_id,
            other_user_id: Some(server.last_user_id),
            other_device_id: server.last_device_id,
            created_at_ms: at,
            dismissed_at_ms: None,
        };
        record.id = store::insert_conflict(&**tx, &record).await?;
        conflicts.push(record);
    }
    Ok((note, events, conflicts))
}
