//! Offline-first sync of notes and tasks, compatible with RxDB's GraphQL replication
//! plugin (docs/sync-protocol.md).
//!
//! Clients create notes offline (client UUIDs), keep an outbox of rows
//! `{assumedMasterState, newDocumentState}`, and pull changes after a checkpoint. Each
//! viewer has their own change positions, taken under a per-viewer head-row lock so that a
//! pull never skips a change committed late ([`store`], [`pull`]). Rows are applied in order,
//! each in its own transaction, remembered by hash for idempotent re-pushes ([`push`]);
//! mismatching rows are merged field by field with per-field strategies and hybrid-logical
//! clocks ([`merge`], [`clock`]) and the conflicts are recorded and announced on the user's
//! event log. Tombstones are kept for `sync.tombstone_retention_days` ([`retention`]).
//!
//! - [`graphql`]: `pullNotes`, `pushNotes`, `syncNotes`, `streamNotes`, sharing, conflicts;
//!   [`types`]: their GraphQL types;
//! - [`changes`]: the one write path of a note change; [`share`], [`conflicts`]: use cases;
//! - [`stream`]: the live stream over the realtime log; [`model`]: the note and its fields;
//! - [`settings`]: `[sync]`; [`error`]: [`SyncError`].

pub mod changes;
pub mod clock;
pub mod conflicts;
pub mod error;
pub mod graphql;
pub mod merge;
pub mod model;
pub mod pull;
pub mod push;
pub mod retention;
pub mod settings;
pub mod share;
pub mod store;
pub mod stream;
pub mod types;

pub use error::SyncError;
