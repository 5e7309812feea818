//! Pulls: a viewer's changed notes after a checkpoint, in position order.
//!
//! The checkpoint is the viewer's change position (`seq`) of the last document returned,
//! with that document's `id` and `updatedAt` alongside. A position is taken from the
//! viewer's head row under a lock held to commit (see [`crate::sync::store`]), so everything
//! at or below a visible position is committed and a pull never skips a change. Notes shared
//! with several users have one position per viewer: each viewer's checkpoint is their own.

use sea_orm::ConnectionTrait;

use crate::sync::{error::SyncError, model::Content, push::NoteView, store};

/// How far back a checkpoint without `seq` re-reads (clock skew between replicas plus the
/// longest write transaction).
pub const NO_SEQ_MARGIN_MS: i64 = 60_000;

/// Where a pull starts.
#[derive(Clone, Debug, Default)]
pub struct CheckpointIn {
    /// The id of the last document the client got.
    pub id: Option<String>,
    /// Its `updatedAt`.
    pub updated_at: Option<f64>,
    /// The viewer's change position of it.
    pub seq: Option<i64>,
    /// The viewer's `purged_seq` when this sync began from a null checkpoint.
    pub floor: Option<i64>,
}

/// The position after a page.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The last document's id.
    pub id: String,
    /// Its `updatedAt` (ms).
    pub updated_at: f64,
    /// The viewer's change position: send it back unchanged.
    pub seq: i64,
    /// Positions retention had forgotten when this sync began: a client that started from a
    /// null checkpoint never needed those tombstones.
    pub floor: i64,
}

/// A page of changes.
#[derive(Clone, Debug)]
pub struct Bulk {
    /// Changed notes (tombstones included), in position order.
    pub documents: Vec<NoteView>,
    /// Where the next pull starts (the input back when nothing is new).
    pub checkpoint: Option<Checkpoint>,
}

/// Where a pull starts: the position and the floor to hand on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Deliver changes after this.
    pub after: i64,
    /// Carried in the checkpoint.
    pub floor: i64,
}

/// The position a checkpoint stands for, or `Resync` when retention may have forgotten a
/// change after it (or it is from another database). A null checkpoint starts at 0 with the
/// viewer's current `purged_seq` as its floor: forgotten tombstones were never needed by it.
pub async fn position(
    conn: &impl ConnectionTrait,
    viewer: i64,
    cp: Option<&CheckpointIn>,
) -> Result<Position, SyncError> {
    let head = store::head(conn, viewer).await?;
    let Some(cp) = cp else { return Ok(Position { after: 0, floor: head.purged_seq }) };
    let after = match (cp.seq, cp.updated_at) {
        (Some(seq), _) => seq,
        (None, Some(at)) if at.is_finite() => {
            let since = (at as i64).saturating_sub(NO_SEQ_MARGIN_MS);
            store::seq_before_time(conn, viewer, since).await?.map_or(head.last_seq, |s| s - 1)
        }
        (None, _) => return Err(SyncError::Invalid("checkpoint needs seq (or updatedAt)".into())),
    };
    let floor = cp.floor.unwrap_or(0);
    if after < 0 || after > head.last_seq || floor < 0 || floor > head.last_seq || after.max(floor) < head.purged_seq {
        return Err(SyncError::Resync { latest: head.last_seq });
    }
    Ok(Position { after, floor })
}

/// Changes after `after`, at most `limit`.
pub async fn page(
    conn: &impl ConnectionTrait,
    viewer: i64,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, NoteView)>, SyncError> {
    let items = store::feed_after(conn, viewer, after, limit).await?;
    let ids: Vec<String> = items.iter().filter(|i| i.visible).map(|i| i.note.id.clone()).collect();
    let mut members = store::members_of(conn, &ids).await?;
    Ok(items
        .into_iter()
        .map(|item| {
            let mut row = item.note;
            let view = if item.visible {
                let members = members.remove(&row.id).unwrap_or_default();
                NoteView { row, members, visible: true }
            } else {
                // Lost access: the viewer gets a tombstone, nothing written after.
                row.content = Content {
                    title: String::new(),
                    body: String::new(),
                    done: false,
                    position: 0.0,
                    tags: Vec::new(),
                    deleted: true,
                };
                row.clocks.clear();
                NoteView { row, members: Vec::new(), visible: false }
            };
            (item.seq, view)
        })
        .collect())
}

/// `pullNotes`.
pub async fn pull(
    conn: &impl ConnectionTrait,
    viewer: i64,
    cp: Option<CheckpointIn>,
    limit: u64,
) -> Result<Bulk, SyncError> {
    let Position { after, floor } = position(conn, viewer, cp.as_ref()).await?;
    let items = page(conn, viewer, after, limit).await?;
    let checkpoint = match items.last() {
        Some((seq, view)) => {
            Some(Checkpoint { id: view.row.id.clone(), updated_at: view.row.updated_at_ms as f64, seq: *seq, floor })
        }
        None => cp.map(|cp| Checkpoint {
            id: cp.id.unwrap_or_default(),
            updated_at: cp.updated_at.unwrap_or(0.0),
            seq: after,
            floor,
        }),
    };
    Ok(Bulk { documents: items.into_iter().map(|(_, v)| v).collect(), checkpoint })
}
