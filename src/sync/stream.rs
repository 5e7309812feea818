//! `streamNotes`: the viewer's note changes, live, riding the per-user event log.
//!
//! The stream remembers a change position. It reads the log's head first and the notes
//! head second, then follows the log from that log position: a change committed after the
//! first read has its `NOTES_CHANGED` event after it (so it is seen), and one committed before
//! the second read is already below the notes position. On every `NOTES_CHANGED` event (and
//! after a lagging or cross-replica wake, which the log stream turns into a re-read) it pulls
//! from its position until nothing is new and yields each page. With a checkpoint it first
//! yields what changed after it.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use crate::kernel::db::Db;
use crate::realtime::{EventBus, EventKind, Item, Start, log_start, user_events};
use crate::sync::{
    error::SyncError,
    pull::{self, Bulk, Checkpoint, CheckpointIn},
    store,
};

/// Documents per streamed page.
const PAGE: u64 = 200;

/// The viewer's note changes after `checkpoint` (only new ones when `None`), then live.
pub fn notes(
    db: Db,
    bus: Arc<EventBus>,
    viewer: i64,
    checkpoint: Option<CheckpointIn>,
) -> impl Stream<Item = Result<Bulk, SyncError>> + Send {
    async_stream::try_stream! {
        let log_position = match Box::pin(log_start(db.conn(), viewer, None)).await? {
            Start::After(seq) => seq,
            Start::Resync { latest } => latest,
        };
        let (mut position, floor) = match &checkpoint {
            Some(cp) => {
                let start = Box::pin(pull::position(db.conn(), viewer, Some(cp))).await?;
                (start.after, start.floor)
            }
            None => {
                let head = Box::pin(store::head(db.conn(), viewer)).await?;
                (head.last_seq, head.purged_seq)
            }
        };
        let mut catch_up = checkpoint.is_some();
        let events = user_events(db.clone(), bus, viewer, Some(log_position));
        futures_util::pin_mut!(events);
        loop {
            if catch_up {
                loop {
                    let items = Box::pin(pull::page(db.conn(), viewer, position, PAGE)).await?;
                    let full = items.len() as u64 == PAGE;
                    let Some((seq, last)) = items.last() else { break };
                    let checkpoint = Checkpoint { id: last.row.id.clone(), updated_at: last.row.updated_at_ms as f64, seq: *seq, floor };
                    position = *seq;
                    yield Bulk { documents: items.into_iter().map(|(_, v)| v).collect(), checkpoint: Some(checkpoint) };
                    if !full {
                        break;
                    }
                }
            }
            let Some(item) = events.next().await else { break };
            catch_up = match item.map_err(SyncError::from)? {
                Item::Event(event) => {
                    EventKind::parse(&event.kind) == Some(EventKind::NotesChanged)
                }
                // The log forgot events: re-read the notes, then follow from the log's head.
                Item::Resync { .. } => true,
            };
        }
    }
}
