//! Real-time: the durable per-user event log ([`log`]), replay-then-live streams over it
//! ([`stream`]), presence ([`presence`]) and their settings.
//!
//! Every event a user should see is appended to their log with a per-user sequence number
//! in the same transaction as the change that causes it; after commit the events are
//! published on the [`crate::realtime::bus::EventBus`] (and, on PostgreSQL, announced to
//! other replicas by NOTIFY from inside the transaction). Subscriptions, SSE and long-poll
//! all read the same log, so a client that comes back with its last seq gets exactly what it
//! missed — or `RESYNC_REQUIRED` when retention has already forgotten it.

pub mod activity;
pub mod bus;
pub mod connections;
pub mod entities;
pub mod fanout;
pub mod graphql;
pub mod log;
pub mod presence;
pub mod settings;
pub mod shared;
pub mod store;
pub mod stream;

// The API other concerns use (they reach realtime only through these names).
pub use self::activity::{Activity, MediaRecord, media_processed, post_activity};
pub use self::bus::EventBus;
pub use self::entities::user_event;
pub use self::log::{
    ConversationRecord, EventKind, MessageRecord, NotesChangedRecord, ReadRecord, Start, SyncConflictRecord,
    append as append_event, start as log_start,
};
pub use self::settings::RealtimeSettings;
pub use self::store::notify_revoked;
pub use self::stream::{Item, user_events};
