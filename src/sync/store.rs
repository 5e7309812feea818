//! The sync tables in SQL: notes and their collaborators, the per-viewer change feed and its
//! head rows, applied-row hashes, conflict records and the retention deletes.
//!
//! Change positions: every write of a note takes the next sequence number of each viewer
//! (owner, collaborators, and anyone who just lost access) from that viewer's `note_heads`
//! row, with an upsert that keeps the row locked until the transaction ends, in ascending
//! viewer order. Two transactions touching one viewer therefore commit in the order of their
//! numbers, so a pull that sees position n also sees every position below it.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult, Statement, Value};

use crate::kernel::db::sql::placeholders;
use crate::sync::model::{Clocks, Content, NoteRow};

/// Rows per multi-row statement.
const CHUNK: usize = 500;

#[derive(FromQueryResult)]
struct RawNote {
    id: String,
    owner_id: i64,
    title: String,
    body: String,
    done: bool,
    position: f64,
    tags: String,
    deleted: bool,
    updated_at_ms: i64,
    created_at_ms: i64,
    revision: i64,
    clocks: String,
    last_user_id: i64,
    last_device_id: Option<i64>,
}

impl RawNote {
    fn into_row(self) -> NoteRow {
        NoteRow {
            id: self.id,
            owner_id: self.owner_id,
            content: Content {
                title: self.title,
                body: self.body,
                done: self.done,
                position: self.position,
                tags: serde_json::from_str(&self.tags).unwrap_or_default(),
                deleted: self.deleted,
            },
            updated_at_ms: self.updated_at_ms,
            created_at_ms: self.created_at_ms,
            revision: self.revision,
            clocks: serde_json::from_str::<Clocks>(&self.clocks).unwrap_or_default(),
            last_user_id: self.last_user_id,
            last_device_id: self.last_device_id,
        }
    }
}

const NOTE_COLUMNS: &str = "n.id, n.owner_id, n.title, n.body, n.done, n.position, n.tags, n.deleted, n.updated_at_ms, \
     n.created_at_ms, n.revision, n.clocks, n.last_user_id, n.last_device_id";

fn stmt(conn: &impl ConnectionTrait, sql: impl Into<String>, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(conn.get_database_backend(), sql.into(), values)
}

/// Reads a note and, on PostgreSQL, locks it until the transaction ends (SQLite's writer
/// lock already serialises).
pub async fn lock_note(conn: &impl ConnectionTrait, id: &str) -> Result<Option<NoteRow>, DbErr> {
    let lock = if conn.get_database_backend() == DatabaseBackend::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {NOTE_COLUMNS} FROM notes n WHERE n.id = $1{lock}");
    Ok(RawNote::find_by_statement(stmt(conn, sql, vec![id.into()])).one(conn).await?.map(RawNote::into_row))
}

/// Notes by id (any order).
pub async fn notes_by_ids(conn: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<NoteRow>, DbErr> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!("SELECT {NOTE_COLUMNS} FROM notes n WHERE n.id IN ({})", placeholders(1, chunk.len()));
        let values = chunk.iter().map(|id| Value::from(id.clone())).collect();
        out.extend(
            RawNote::find_by_statement(stmt(conn, sql, values)).all(conn).await?.into_iter().map(RawNote::into_row),
        );
    }
    Ok(out)
}

fn note_values(row: &NoteRow) -> Result<Vec<Value>, serde_json::Error> {
    Ok(vec![
        row.id.clone().into(),
        row.owner_id.into(),
        row.content.title.clone().into(),
        row.content.body.clone().into(),
        row.content.done.into(),
        row.content.position.into(),
        serde_json::to_string(&row.content.tags)?.into(),
        row.content.deleted.into(),
        row.updated_at_ms.into(),
        row.created_at_ms.into(),
        row.revision.into(),
        serde_json::to_string(&row.clocks)?.into(),
        row.last_user_id.into(),
        row.last_device_id.into(),
    ])
}

/// Inserts a new note; false when a note with that id appeared meanwhile.
pub async fn insert_note(conn: &impl ConnectionTrait, row: &NoteRow) -> Result<bool, crate::sync::error::SyncError> {
    let sql = "INSERT INTO notes (id, owner_id, title, body, done, position, tags, deleted, updated_at_ms, created_at_ms, \
               revision, clocks, last_user_id, last_device_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
               ON CONFLICT (id) DO NOTHING";
    let done = conn.execute_raw(stmt(conn, sql, note_values(row)?)).await?;
    Ok(done.rows_affected() == 1)
}

/// Writes a note's content, clocks and revision.
pub async fn update_note(conn: &impl ConnectionTrait, row: &NoteRow) -> Result<(), crate::sync::error::SyncError> {
    let sql = "UPDATE notes SET owner_id = $2, title = $3, body = $4, done = $5, position = $6, tags = $7, deleted = $8, \
               updated_at_ms = $9, created_at_ms = $10, revision = $11, clocks = $12, last_user_id = $13, last_device_id = $14 \
               WHERE id = $1";
    conn.execute_raw(stmt(conn, sql, note_values(row)?)).await?;
    Ok(())
}

/// The collaborators of a note (ascending).
pub async fn members(conn: &impl ConnectionTrait, note_id: &str) -> Result<Vec<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        user_id: i64,
    }
    let sql = "SELECT user_id FROM note_members WHERE note_id = $1 ORDER BY user_id";
    Ok(Row::find_by_statement(stmt(conn, sql, vec![note_id.into()]))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect())
}

/// The collaborators of many notes.
pub async fn members_of(conn: &impl ConnectionTrait, ids: &[String]) -> Result<HashMap<String, Vec<i64>>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        note_id: String,
        user_id: i64,
    }
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT note_id, user_id FROM note_members WHERE note_id IN ({}) ORDER BY note_id, user_id",
            placeholders(1, chunk.len())
        );
        let values = chunk.iter().map(|id| Value::from(id.clone())).collect();
        for row in Row::find_by_statement(stmt(conn, sql, values)).all(conn).await? {
            out.entry(row.note_id).or_default().push(row.user_id);
        }
    }
    Ok(out)
}

/// Adds a collaborator (no-op when already one).
pub async fn add_member(conn: &impl ConnectionTrait, note_id: &str, user_id: i64) -> Result<(), DbErr> {
    let sql = "INSERT INTO note_members (note_id, user_id) VALUES ($1, $2) ON CONFLICT (note_id, user_id) DO NOTHING";
    conn.execute_raw(stmt(conn, sql, vec![note_id.into(), user_id.into()])).await?;
    Ok(())
}

/// Removes a collaborator; false when they were not one.
pub async fn remove_member(conn: &impl ConnectionTrait, note_id: &str, user_id: i64) -> Result<bool, DbErr> {
    let sql = "DELETE FROM note_members WHERE note_id = $1 AND user_id = $2";
    Ok(conn.execute_raw(stmt(conn, sql, vec![note_id.into(), user_id.into()])).await?.rows_affected() > 0)
}

/// Takes the next change position of each viewer (ascending ids: one lock order for every
/// writer); returns `(viewer, seq)` pairs. The head rows stay locked until the transaction
/// ends.
pub async fn next_seqs(conn: &impl ConnectionTrait, viewers: &[i64]) -> Result<Vec<(i64, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        user_id: i64,
        last_seq: i64,
    }
    let mut sorted = viewers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.len());
    // One statement per viewer, in ascending order: a multi-row upsert does not promise the
    // order in which it locks rows.
    for viewer in sorted {
        let sql = "INSERT INTO note_heads (user_id, last_seq, purged_seq) VALUES ($1, 1, 0) \
                   ON CONFLICT (user_id) DO UPDATE SET last_seq = note_heads.last_seq + 1 RETURNING user_id, last_seq";
        if let Some(row) = Row::find_by_statement(stmt(conn, sql, vec![viewer.into()])).one(conn).await? {
            out.push((row.user_id, row.last_seq));
        }
    }
    Ok(out)
}

/// Records that `note_id` changed for `viewer` at `seq` (visible or, after losing access, not).
pub async fn upsert_feed(
    conn: &impl ConnectionTrait,
    viewer: i64,
    note_id: &str,
    seq: i64,
    visible: bool,
    updated_at_ms: i64,
) -> Result<(), DbErr> {
    let sql = "INSERT INTO note_feed (viewer_id, note_id, seq, visible, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (viewer_id, note_id) DO UPDATE SET seq = excluded.seq, visible = excluded.visible, \
               updated_at_ms = excluded.updated_at_ms";
    conn.execute_raw(stmt(
        conn,
        sql,
        vec![viewer.into(), note_id.into(), seq.into(), visible.into(), updated_at_ms.into()],
    ))
    .await?;
    Ok(())
}

/// A viewer's head: the newest position and the highest position retention has forgotten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromQueryResult)]
pub struct Head {
    /// Newest position.
    pub last_seq: i64,
    /// Positions at or below this may have been deleted by retention.
    pub purged_seq: i64,
}

/// The viewer's head (zeros before their first change).
pub async fn head(conn: &impl ConnectionTrait, viewer: i64) -> Result<Head, DbErr> {
    let sql = "SELECT last_seq, purged_seq FROM note_heads WHERE user_id = $1";
    Ok(Head::find_by_statement(stmt(conn, sql, vec![viewer.into()])).one(conn).await?.unwrap_or_default())
}

/// Whether the viewer may see a note right now (owner or collaborator).
pub async fn can_access(conn: &impl ConnectionTrait, note: &NoteRow, viewer: i64) -> Result<bool, DbErr> {
    if note.owner_id == viewer {
        return Ok(true);
    }
    Ok(members(conn, &note.id).await?.contains(&viewer))
}

/// One change of the viewer's feed.
#[derive(Clone, Debug)]
pub struct FeedItem {
    /// The viewer's position of this change.
    pub seq: i64,
    /// False when the viewer lost access (delivered as a deletion).
    pub visible: bool,
    /// The note as it is now.
    pub note: NoteRow,
}

/// The viewer's changes after `after`, in position order, at most `limit`.
pub async fn feed_after(
    conn: &impl ConnectionTrait,
    viewer: i64,
    after: i64,
    limit: u64,
) -> Result<Vec<FeedItem>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        feed_seq: i64,
        feed_visible: bool,
        id: String,
        owner_id: i64,
        title: String,
        body: String,
        done: bool,
        position: f64,
        tags: String,
        deleted: bool,
        updated_at_ms: i64,
        created_at_ms: i64,
        revision: i64,
        clocks: String,
        last_user_id: i64,
        last_device_id: Option<i64>,
    }
    let sql = format!(
        "SELECT f.seq AS feed_seq, f.visible AS feed_visible, {NOTE_COLUMNS} FROM note_feed f JOIN notes n ON n.id = f.note_id \
         WHERE f.viewer_id = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3"
    );
    let rows = Row::find_by_statement(stmt(conn, sql, vec![viewer.into(), after.into(), (limit as i64).into()]))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| FeedItem {
            seq: r.feed_seq,
            visible: r.feed_visible,
            note: RawNote {
                id: r.id,
                owner_id: r.owner_id,
                title: r.title,
                body: r.body,
                done: r.done,
                position: r.position,
                tags: r.tags,
                deleted: r.deleted,
                updated_at_ms: r.updated_at_ms,
                created_at_ms: r.created_at_ms,
                revision: r.revision,
                clocks: r.clocks,
                last_user_id: r.last_user_id,
                last_device_id: r.last_device_id,
            }
            .into_row(),
        })
        .collect())
}

/// For a checkpoint without a position (`{id, updatedAt}` only): a position from which
/// every change stamped at or after `since_ms` is delivered again.
pub async fn seq_before_time(conn: &impl ConnectionTrait, viewer: i64, since_ms: i64) -> Result<Option<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        seq: Option<i64>,
    }
    let sql = "SELECT MIN(seq) AS seq FROM note_feed WHERE viewer_id = $1 AND updated_at_ms >= $2";
    Ok(Row::find_by_statement(stmt(conn, sql, vec![viewer.into(), since_ms.into()]))
        .one(conn)
        .await?
        .and_then(|r| r.seq))
}

/// Whether `user_id` already applied the push row with this hash to `note_id`.
pub async fn applied(conn: &impl ConnectionTrait, user_id: i64, note_id: &str, hash: &str) -> Result<bool, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        one: i32,
    }
    let sql = "SELECT 1 AS one FROM note_applied WHERE user_id = $1 AND note_id = $2 AND row_hash = $3";
    Ok(Row::find_by_statement(stmt(conn, sql, vec![user_id.into(), note_id.into(), hash.into()]))
        .one(conn)
        .await?
        .is_some_and(|r| r.one == 1))
}

/// Remembers an applied push row (same transaction as its effect).
pub async fn insert_applied(
    conn: &impl ConnectionTrait,
    user_id: i64,
    note_id: &str,
    hash: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    let sql = "INSERT INTO note_applied (user_id, note_id, row_hash, created_at_ms) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (user_id, note_id, row_hash) DO NOTHING";
    conn.execute_raw(stmt(conn, sql, vec![user_id.into(), note_id.into(), hash.into(), at_ms.into()])).await?;
    Ok(())
}

/// A recorded conflict.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ConflictRow {
    /// Row id.
    pub id: i64,
    /// The note.
    pub note_id: String,
    /// Which field (`Field::as_str`).
    pub field: String,
    /// The strategy that resolved it.
    pub strategy: String,
    /// `server`, `client` or `both`.
    pub winner: String,
    /// The value both sides started from (JSON; none for a note created on both sides).
    pub base_value: Option<String>,
    /// The server's value (JSON).
    pub server_value: String,
    /// The pushed value (JSON).
    pub client_value: String,
    /// The value kept (JSON).
    pub resolved_value: String,
    /// Who pushed.
    pub user_id: i64,
    /// From which device session.
    pub device_id: Option<i64>,
    /// Who wrote the server's value.
    pub other_user_id: Option<i64>,
    /// From which device session.
    pub other_device_id: Option<i64>,
    /// When, ms.
    pub created_at_ms: i64,
    /// When dismissed, ms.
    pub dismissed_at_ms: Option<i64>,
}

const CONFLICT_COLUMNS: &str = "c.id, c.note_id, c.field, c.strategy, c.winner, c.base_value, c.server_value, c.client_value, \
     c.resolved_value, c.user_id, c.device_id, c.other_user_id, c.other_device_id, c.created_at_ms, c.dismissed_at_ms";

/// Records a conflict; returns its id.
pub async fn insert_conflict(conn: &impl ConnectionTrait, c: &ConflictRow) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
    }
    let sql = "INSERT INTO note_conflicts (note_id, field, strategy, winner, base_value, server_value, client_value, \
               resolved_value, user_id, device_id, other_user_id, other_device_id, created_at_ms) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";
    let values = vec![
        c.note_id.clone().into(),
        c.field.clone().into(),
        c.strategy.clone().into(),
        c.winner.clone().into(),
        c.base_value.clone().into(),
        c.server_value.clone().into(),
        c.client_value.clone().into(),
        c.resolved_value.clone().into(),
        c.user_id.into(),
        c.device_id.into(),
        c.other_user_id.into(),
        c.other_device_id.into(),
        c.created_at_ms.into(),
    ];
    Ok(Row::find_by_statement(stmt(conn, sql, values)).one(conn).await?.map(|r| r.id).unwrap_or_default())
}

/// Conflicts on notes the viewer can see now, newest first, with ids below `before`.
pub async fn conflicts_for_viewer(
    conn: &impl ConnectionTrait,
    viewer: i64,
    before: Option<i64>,
    include_dismissed: bool,
    limit: u64,
) -> Result<Vec<ConflictRow>, DbErr> {
    let dismissed = if include_dismissed { "" } else { " AND c.dismissed_at_ms IS NULL" };
    let sql = format!(
        "SELECT {CONFLICT_COLUMNS} FROM note_conflicts c JOIN note_feed f ON f.note_id = c.note_id AND f.viewer_id = $1 \
         WHERE f.visible = $2 AND c.id < $3{dismissed} ORDER BY c.id DESC LIMIT $4"
    );
    let values = vec![viewer.into(), true.into(), before.unwrap_or(i64::MAX).into(), (limit as i64).into()];
    ConflictRow::find_by_statement(stmt(conn, sql, values)).all(conn).await
}

/// Open conflicts of some notes, newest first.
pub async fn open_conflicts_of(conn: &impl ConnectionTrait, note_ids: &[String]) -> Result<Vec<ConflictRow>, DbErr> {
    let mut out = Vec::new();
    for chunk in note_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {CONFLICT_COLUMNS} FROM note_conflicts c WHERE c.note_id IN ({}) AND c.dismissed_at_ms IS NULL \
             ORDER BY c.id DESC",
            placeholders(1, chunk.len())
        );
        let values = chunk.iter().map(|id| Value::from(id.clone())).collect();
        out.extend(ConflictRow::find_by_statement(stmt(conn, sql, values)).all(conn).await?);
    }
    Ok(out)
}

/// One conflict.
pub async fn conflict(conn: &impl ConnectionTrait, id: i64) -> Result<Option<ConflictRow>, DbErr> {
    let sql = format!("SELECT {CONFLICT_COLUMNS} FROM note_conflicts c WHERE c.id = $1");
    ConflictRow::find_by_statement(stmt(conn, sql, vec![id.into()])).one(conn).await
}

/// Marks a conflict dismissed (keeps the first time).
pub async fn dismiss_conflict(conn: &impl ConnectionTrait, id: i64, at_ms: i64) -> Result<(), DbErr> {
    let sql = "UPDATE note_conflicts SET dismissed_at_ms = $2 WHERE id = $1 AND dismissed_at_ms IS NULL";
    conn.execute_raw(stmt(conn, sql, vec![id.into(), at_ms.into()])).await?;
    Ok(())
}

/// Viewers with feed rows retention may forget: tombstones (deleted notes, lost access)
/// last changed before `cutoff_ms`.
pub async fn viewers_with_expired(conn: &impl ConnectionTrait, cutoff_ms: i64) -> Result<Vec<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        viewer_id: i64,
    }
    let sql = "SELECT DISTINCT f.viewer_id FROM note_feed f JOIN notes n ON n.id = f.note_id \
               WHERE f.updated_at_ms < $1 AND (f.visible = $2 OR n.deleted = $3) ORDER BY f.viewer_id";
    let rows =
        Row::find_by_statement(stmt(conn, sql, vec![cutoff_ms.into(), false.into(), true.into()])).all(conn).await?;
    Ok(rows.into_iter().map(|r| r.viewer_id).collect())
}

/// Forgets one viewer's expired tombstones, raising their `purged_seq` first (the head row
/// is locked for this, like a writer's); returns the deleted count.
pub async fn purge_viewer(conn: &impl ConnectionTrait, viewer: i64, cutoff_ms: i64) -> Result<u64, DbErr> {
    let expired = "SELECT MAX(f.seq) FROM note_feed f JOIN notes n ON n.id = f.note_id \
                   WHERE f.viewer_id = $1 AND f.updated_at_ms < $2 AND (f.visible = $3 OR n.deleted = $4)";
    let raise = format!(
        "UPDATE note_heads SET purged_seq = CASE WHEN ({expired}) > purged_seq THEN ({expired}) ELSE purged_seq END \
         WHERE user_id = $1"
    );
    let values = || vec![viewer.into(), cutoff_ms.into(), false.into(), true.into()];
    conn.execute_raw(stmt(conn, raise, values())).await?;
    let delete = "DELETE FROM note_feed WHERE viewer_id = $1 AND updated_at_ms < $2 AND (visible = $3 OR note_id IN \
                  (SELECT id FROM notes WHERE deleted = $4))";
    Ok(conn.execute_raw(stmt(conn, delete, values())).await?.rows_affected())
}

/// Deletes tombstoned notes no viewer's feed still holds, with their collaborators and
/// applied-row records; and applied-row records older than `cutoff_ms`.
pub async fn purge_notes(conn: &impl ConnectionTrait, cutoff_ms: i64) -> Result<u64, DbErr> {
    let orphan =
        "deleted = $1 AND updated_at_ms < $2 AND NOT EXISTS (SELECT 1 FROM note_feed f WHERE f.note_id = notes.id)";
    let values = || vec![true.into(), cutoff_ms.into()];
    for table in ["note_members", "note_conflicts", "note_applied"] {
        let sql = format!("DELETE FROM {table} WHERE note_id IN (SELECT id FROM notes WHERE {orphan})");
        conn.execute_raw(stmt(conn, sql, values())).await?;
    }
    let notes = conn.execute_raw(stmt(conn, format!("DELETE FROM notes WHERE {orphan}"), values())).await?;
    let applied = "DELETE FROM note_applied WHERE created_at_ms < $1";
    conn.execute_raw(stmt(conn, applied, vec![cutoff_ms.into()])).await?;
    Ok(notes.rows_affected())
}
