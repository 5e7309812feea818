//! Replay-then-live streams: the user's whole log (`events`) and one conversation's messages
//! (`messageAdded`).
//!
//! Each stream subscribes to the bus first, then replays from the database, then follows
//! wakes. It remembers the last seq it delivered and drops anything at or below it, and it
//! reads the database whenever a wake does not continue exactly where it stands — so there
//! is no gap and no duplicate between replay and live, whatever the timing.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::messaging;
use crate::realtime::log::{self, EventKind, MessageRecord, Start};
use crate::realtime::store as events;
use crate::{
    kernel::{db::Db, error::DomainError},
    realtime::{
        bus::{EventBus, Wake},
        entities::user_event,
    },
};

// Database reads are awaited through `Box::pin`: a stream's state is as large as the largest
// future it awaits inline, and an idle subscription must not carry room for a query.

/// Rows read per replay statement.
const PAGE: usize = 200;

/// One item of the user stream.
#[derive(Clone, Debug)]
pub enum Item {
    /// The next event.
    Event(user_event::Model),
    /// The client's position is older than retention: refetch, then resubscribe from
    /// `latest`. The stream ends after this item.
    Resync {
        /// The newest seq of the log.
        latest: i64,
    },
}

/// The next wake, or `None` when the bus is gone. A lagged receiver gets a wake without
/// events (read the log).
async fn next_wake(wakes: &mut Receiver<Arc<Wake>>, user_id: i64) -> Option<Arc<Wake>> {
    match wakes.recv().await {
        Ok(wake) => Some(wake),
        Err(RecvError::Lagged(_)) => Some(Arc::new(Wake { user_id, latest_seq: None, events: Vec::new() })),
        Err(RecvError::Closed) => None,
    }
}

/// Events of `user_id` after `after` (only new ones when `None`), then live.
pub fn user_events(
    db: Db,
    bus: Arc<EventBus>,
    user_id: i64,
    after: Option<i64>,
) -> impl Stream<Item = Result<Item, DomainError>> + Send {
    async_stream::try_stream! {
        let mut wakes = bus.subscribe(user_id);
        let mut last = match Box::pin(log::start(db.conn(), user_id, after)).await? {
            Start::After(seq) => seq,
            Start::Resync { latest } => {
                yield Item::Resync { latest };
                return;
            }
        };
        let mut read_log = true;
        loop {
            if read_log {
                loop {
                    let page = Box::pin(events::after(db.conn(), user_id, last, PAGE)).await?;
                    let full = page.len() == PAGE;
                    for event in page {
                        last = event.seq;
                        yield Item::Event(event);
                    }
                    if !full {
                        break;
                    }
                }
            }
            let Some(wake) = next_wake(&mut wakes, user_id).await else { break };
            if wake.latest_seq.is_some_and(|latest| latest <= last) {
                read_log = false;
                continue;
            }
            // Fast path: the wake carries exactly the events that follow.
            let continues = wake.events.first().is_some_and(|e| e.seq <= last + 1)
                && wake.events.windows(2).all(|w| w[1].seq == w[0].seq + 1);
            if continues {
                for event in &wake.events {
                    if event.seq > last {
                        last = event.seq;
                        yield Item::Event(event.clone());
                    }
                }
                read_log = false;
            } else {
                read_log = true;
            }
        }
    }
}

/// Messages of one conversation after message seq `after` (only new ones when `None`),
/// then live, for a member `user_id` (the caller checks membership).
pub fn conversation_messages(
    db: Db,
    bus: Arc<EventBus>,
    user_id: i64,
    conversation_id: i64,
    after: Option<i64>,
) -> impl Stream<Item = Result<MessageRecord, DomainError>> + Send {
    async_stream::try_stream! {
        let mut wakes = bus.subscribe(user_id);
        let mut last = match after {
            Some(seq) if seq < 0 => Err(DomainError::invalid("afterSeq must not be negative"))?,
            Some(seq) => seq,
            None => {
                let conversation = Box::pin(messaging::conversations_by_ids(db.conn(), &[conversation_id])).await?;
                conversation.first().map(|c| c.last_seq).ok_or(DomainError::NotFound("conversation"))?
            }
        };
        let mut read_table = true;
        loop {
            if read_table {
                loop {
                    let page = Box::pin(messaging::messages_after(db.conn(), conversation_id, last, PAGE)).await?;
                    let full = page.len() > PAGE;
                    for message in page.into_iter().take(PAGE) {
                        last = message.seq;
                        yield MessageRecord::from(message);
                    }
                    if !full {
                        break;
                    }
                }
            }
            let Some(wake) = next_wake(&mut wakes, user_id).await else { break };
            if wake.events.is_empty() {
                // From another replica or after a lag: only the table can tell.
                read_table = true;
                continue;
            }
            let mut gap = false;
            for event in &wake.events {
                if EventKind::parse(&event.kind) != Some(EventKind::MessageAdded) {
                    continue;
                }
                let Ok(message) = serde_json::from_value::<MessageRecord>(event.payload.clone()) else {
                    gap = true;
                    continue;
                };
                if message.conversation_id != conversation_id || message.seq <= last {
                    continue;
                }
                if message.seq == last + 1 && !gap {
                    last = message.seq;
                    yield message;
                } else {
                    gap = true;
                }
            }
            read_table = gap;
        }
    }
}
