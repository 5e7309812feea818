//! Writing a change of a note for everyone who sees it: the viewers' change positions (head
//! rows locked in ascending order), the server time stamped after those locks, the note row,
//! the feed rows, and a `NOTES_CHANGED` event on each viewer's log. Every write of a note
//! (push, share, unshare, taking a conflict's other version) goes through [`record`].

use sea_orm::ConnectionTrait;

use crate::realtime::{EventKind, NotesChangedRecord, RealtimeSettings, append_event, user_event};
use crate::sync::{error::SyncError, model::NoteRow, model::now_ms, store};

/// Insert a new note or update an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// A new note (fails softly when the id appeared meanwhile).
    Insert,
    /// An existing, locked note.
    Update,
}

/// Records the change of `note` for `visible` viewers and as a deletion for `lost` ones.
/// Sets `note.updated_at_ms` (server time, never below the previous value + 1). Returns the
/// events to publish after commit, or `None` when an insert found the id taken (roll back
/// and retry).
pub async fn record(
    conn: &impl ConnectionTrait,
    realtime: &RealtimeSettings,
    note: &mut NoteRow,
    previous_ms: Option<i64>,
    visible: &[i64],
    lost: &[i64],
    write: Write,
) -> Result<Option<Vec<user_event::Model>>, SyncError> {
    let mut everyone: Vec<i64> = visible.iter().chain(lost).copied().collect();
    everyone.sort_unstable();
    everyone.dedup();
    let seqs = store::next_seqs(conn, &everyone).await?;
    // Stamped while holding the viewers' head rows: per viewer, a later position never gets
    // an earlier time from the same clock.
    note.updated_at_ms = now_ms().max(previous_ms.map_or(i64::MIN, |p| p + 1));
    match write {
        Write::Insert => {
            note.created_at_ms = note.updated_at_ms;
            if !store::insert_note(conn, note).await? {
                return Ok(None);
            }
        }
        Write::Update => store::update_note(conn, note).await?,
    }
    let mut events = Vec::with_capacity(seqs.len());
    for (viewer, seq) in seqs {
        let shown = visible.contains(&viewer);
        store::upsert_feed(conn, viewer, &note.id, seq, shown, note.updated_at_ms).await?;
        let record = NotesChangedRecord { seq, note_ids: vec![note.id.clone()] };
        events.extend(append_event(conn, realtime, &[viewer], EventKind::NotesChanged, &record).await?);
    }
    Ok(Some(events))
}
