//! `[sync]`: bounds on notes and batches, tombstone retention, the clock-skew limit and the
//! conflict strategy of each field (docs/sync-protocol.md).

use serde::{Deserialize, Serialize};

/// How a field whose value both sides changed is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The server's value stays.
    ServerWins,
    /// The value stamped with the later hybrid-logical-clock time wins.
    LastWriterWins,
    /// Text fields keep both versions (the server's, a separator, the client's); other
    /// fields fall back to last-writer-wins.
    KeepBoth,
}

impl Strategy {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerWins => "server_wins",
            Self::LastWriterWins => "last_writer_wins",
            Self::KeepBoth => "keep_both",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "server_wins" => Self::ServerWins,
            "last_writer_wins" => Self::LastWriterWins,
            "keep_both" => Self::KeepBoth,
            _ => return None,
        })
    }
}

/// What happens to a pushed row whose `assumedMasterState` is not the server's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictMode {
    /// Field-level three-way merge with `assumedMasterState` as the base: fields changed on
    /// one side only take that side; fields changed on both follow their [`Strategy`].
    Merge,
    /// Nothing of the row is applied; the server's state comes back and the client resolves
    /// (RxDB's default protocol).
    ServerWins,
}

/// The strategy of each field.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldStrategies {
    /// `title`.
    pub title: Strategy,
    /// `body`.
    pub body: Strategy,
    /// `done`.
    pub done: Strategy,
    /// `position`.
    pub position: Strategy,
    /// `tags`.
    pub tags: Strategy,
    /// `deleted`.
    pub deleted: Strategy,
}

impl Default for FieldStrategies {
    fn default() -> Self {
        Self {
            title: Strategy::LastWriterWins,
            body: Strategy::KeepBoth,
            done: Strategy::LastWriterWins,
            position: Strategy::ServerWins,
            tags: Strategy::LastWriterWins,
            deleted: Strategy::LastWriterWins,
        }
    }
}

/// `[sync]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Rows per `pushNotes` / `syncNotes` call.
    pub max_push_rows: usize,
    /// Largest `limit` of `pullNotes`.
    pub max_pull_limit: i32,
    /// Characters of a title.
    pub max_title_chars: usize,
    /// Characters of a body.
    pub max_body_chars: usize,
    /// Tags per note.
    pub max_tags: usize,
    /// Characters per tag.
    pub max_tag_chars: usize,
    /// Collaborators per note.
    pub max_collaborators: usize,
    /// How long tombstones (deleted notes, lost access) and applied-row records are kept; a
    /// checkpoint older than that answers `RESYNC_REQUIRED`.
    pub tombstone_retention_days: u64,
    /// How often the retention sweep runs.
    pub retention_sweep_seconds: u64,
    /// How far a row's clock stamp may be ahead of the server's clock.
    pub max_clock_ahead_ms: u64,
    /// Merge or server-wins for mismatching rows.
    pub conflict_mode: ConflictMode,
    /// The strategy of each field.
    pub strategies: FieldStrategies,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            max_push_rows: 100,
            max_pull_limit: 1000,
            max_title_chars: 500,
            max_body_chars: 100_000,
            max_tags: 32,
            max_tag_chars: 64,
            max_collaborators: 50,
            tombstone_retention_days: 30,
            retention_sweep_seconds: 3600,
            max_clock_ahead_ms: 60_000,
            conflict_mode: ConflictMode::Merge,
            strategies: FieldStrategies::default(),
        }
    }
}

impl SyncSettings {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_push_rows == 0 || self.max_push_rows > 1000 {
            return Err("sync.max_push_rows must be between 1 and 1000".into());
        }
        if !(1..=10_000).contains(&self.max_pull_limit) {
            return Err("sync.max_pull_limit must be between 1 and 10000".into());
        }
        if self.tombstone_retention_days == 0 {
            return Err("sync.tombstone_retention_days must be at least 1".into());
        }
        if self.max_clock_ahead_ms == 0 || self.max_clock_ahead_ms > 86_400_000 {
            return Err("sync.max_clock_ahead_ms must be between 1 and 86400000".into());
        }
        Ok(())
    }
}
