//! Tombstone retention: deleted notes and lost-access rows are kept
//! `sync.tombstone_retention_days` after their last change so that every client syncing
//! within that window learns of them; then they are forgotten and each affected viewer's
//! `purged_seq` rises, so an older checkpoint answers `RESYNC_REQUIRED`.

use std::time::Duration;

use crate::kernel::db::Db;
use crate::sync::{error::SyncError, model::now_ms, settings::SyncSettings, store};

/// One pass; returns the feed rows and notes forgotten.
pub async fn sweep(db: &Db, settings: &SyncSettings) -> Result<u64, SyncError> {
    let days = i64::try_from(settings.tombstone_retention_days).unwrap_or(3650);
    let cutoff = now_ms().saturating_sub(days.saturating_mul(86_400_000));
    let mut forgotten = 0;
    for viewer in store::viewers_with_expired(db.conn(), cutoff).await? {
        // One viewer per transaction: the head row is the only lock taken.
        let tx = db.begin_write().await?;
        forgotten += store::purge_viewer(&*tx, viewer, cutoff).await?;
        tx.commit().await?;
    }
    let tx = db.begin_write().await?;
    forgotten += store::purge_notes(&*tx, cutoff).await?;
    tx.commit().await?;
    Ok(forgotten)
}

/// Runs [`sweep`] every `retention_sweep_seconds` until the process ends.
pub fn spawn_sweeper(db: Db, settings: SyncSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::kernel::db::background(async move {
        let every = Duration::from_secs(settings.retention_sweep_seconds.max(1));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            interval.tick().await;
            match sweep(&db, &settings).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(forgotten = n, "forgot expired note tombstones"),
                Err(err) => tracing::warn!(error = %err, "note tombstone sweep failed"),
            }
        }
    }))
}
