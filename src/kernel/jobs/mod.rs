//! The durable job queue shared by every concern (push sends now, media processing next):
//! jobs are rows in the database, enqueued inside the caller's transaction (a job exists
//! exactly when the change that asked for it commits) and run by workers in every replica.
//!
//! Delivery is at-least-once. A worker claims due jobs of one kind with a lease
//! (`jobs.lease_seconds`); a worker that dies leaves its jobs `running` until the lease
//! expires, then any worker claims them again (counted as `reclaimed`: the only way a job runs
//! twice). An attempt ends done (with a JSON result the enqueuer can read), failed with a
//! retry (exponential backoff with jitter, or the handler's `retry_after`), or dead-lettered
//! with its reason (a permanent failure, or no attempts left). Concerns plug in through
//! [`worker::JobHandler`], registered by kind in a [`worker::JobRegistry`]: the kernel never
//! knows what a job does.

pub mod entity;
pub mod store;
pub mod worker;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

pub use self::worker::{JobError, JobHandler, JobRegistry};
use crate::kernel::{db::Db, infra::metrics::Metrics, settings::JobSettings};

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The handler kind (`push.send`).
    pub kind: &'static str,
    /// What the handler needs, as JSON (ids, not copies of rows that may change).
    pub payload: serde_json::Value,
    /// Not before this time (scheduled jobs); `None` runs it as soon as a worker is free.
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before dead-lettering; `None` takes `jobs.max_attempts`.
    pub max_attempts: Option<u32>,
}

/// A claimed job, handed to its handler.
#[derive(Clone, Debug)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Handler kind.
    pub kind: String,
    /// The payload given at enqueue.
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// True when an earlier attempt's lease expired (that attempt may have had effects).
    pub reclaimed: bool,
    token: String,
}

/// The queue: enqueue, claim, finish, and the wake-up signal for this replica's workers.
pub struct JobQueue {
    db: Db,
    settings: JobSettings,
    metrics: Arc<Metrics>,
    wake: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

impl JobQueue {
    /// A queue over `db`.
    pub fn new(db: Db, settings: JobSettings, metrics: Arc<Metrics>) -> Self {
        Self { db, settings, metrics, wake: tokio::sync::watch::Sender::new(0) }
    }

    /// The queue's settings.
    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// Inserts `job` on `conn` — normally the caller's write transaction — and returns its id.
    /// Call [`JobQueue::wake`] after the commit so this replica's workers start at once.
    pub async fn enqueue(&self, conn: &impl ConnectionTrait, job: NewJob) -> Result<i64, DbErr> {
        let now = now_ms();
        let insert = store::Insert {
            kind: job.kind,
            payload: job.payload,
            run_at_ms: job.run_at.map_or(now, |at| at.timestamp_millis()),
            max_attempts: i32::try_from(job.max_attempts.unwrap_or(self.settings.max_attempts)).unwrap_or(i32::MAX),
        };
        store::insert(conn, insert, now).await
    }

    /// Tells this replica's idle workers that jobs were committed.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver of [`JobQueue::wake`] signals.
    pub fn wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Claims up to `limit` due jobs of `kind` now.
    pub async fn claim(&self, kind: &str, limit: usize) -> Result<Vec<Job>, DbErr> {
        self.claim_at(kind, limit, now_ms()).await
    }

    /// Claims as if the time were `now_ms` (tests move the clock with it).
    pub async fn claim_at(&self, kind: &str, limit: usize, now_ms: i64) -> Result<Vec<Job>, DbErr> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease_until = now_ms.saturating_add(millis(self.lease()));
        let claimed = store::claim(&self.db, kind, limit as u64, &token, now_ms, lease_until).await?;
        Ok(claimed
            .into_iter()
            .map(|c| {
                let row = c.before;
                let reclaimed = row.status == store::RUNNING;
                if reclaimed {
                    self.metrics.jobs.outcome(&row.kind, "reclaimed");
                }
                Job {
                    id: row.id,
                    kind: row.kind,
                    payload: row.payload,
                    attempt: u32::try_from(row.attempts.saturating_add(1)).unwrap_or(1),
                    max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
                    reclaimed,
                    token: token.clone(),
                }
            })
            .collect())
    }

    /// The lease of one attempt.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.lease_seconds.max(1))
    }

    /// Marks `job` done with `result`. False when its lease was lost (another worker has it).
    pub async fn complete(&self, job: &Job, result: serde_json::Value) -> Result<bool, DbErr> {
        let done = store::finish(&self.db, job.id, &job.token, store::Transition::Done(result), now_ms()).await?;
        self.count(job, if done { "done" } else { "lease_lost" });
        Ok(done)
    }

    /// Records a failed attempt: a retry after the backoff (or `error`'s `retry_after`), or the
    /// dead letter when the failure is permanent or this was the last attempt.
    pub async fn fail(&self, job: &Job, error: JobError) -> Result<bool, DbErr> {
        self.fail_at(job, error, now_ms()).await
    }

    /// [`JobQueue::fail`] as if the time were `now_ms`.
    pub async fn fail_at(&self, job: &Job, error: JobError, now_ms: i64) -> Result<bool, DbErr> {
        let (transition, outcome) = match error {
            JobError::Permanent { reason } => (store::Transition::Dead { reason }, "dead"),
            JobError::Retry { reason, .. } if job.attempt >= job.max_attempts => (
                store::Transition::Dead { reason: format!("gave up after {} attempts: {reason}", job.attempt) },
                "dead",
            ),
            JobError::Retry { reason, retry_after } => {
                let delay = retry_after.map_or_else(|| self.backoff(job.attempt), |after| after.min(MAX_RETRY_AFTER));
                (store::Transition::Retry { reason, run_at_ms: now_ms.saturating_add(millis(delay)) }, "failed")
            }
        };
        let applied = store::finish(&self.db, job.id, &job.token, transition, now_ms).await?;
        self.count(job, if applied { outcome } else { "lease_lost" });
        Ok(applied)
    }

    fn count(&self, job: &Job, outcome: &str) {
        self.metrics.jobs.outcome(&job.kind, outcome);
    }

    /// The delay before the retry that follows failed attempt `attempt` ([`backoff`]).
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(&self.settings, attempt)
    }

    /// Refreshes the queue gauges from the table and deletes done jobs past retention.
    pub async fn maintain(&self) -> Result<(), DbErr> {
        let now = now_ms();
        let counts = store::counts(self.db.conn(), now).await?;
        let jobs = &self.metrics.jobs;
        jobs.rows.clear();
        jobs.oldest_due_seconds.clear();
        for row in counts {
            let labels = crate::kernel::infra::metrics::JobLabels { kind: row.kind.clone(), status: row.status };
            jobs.rows.get_or_create(&labels).set(row.count);
            if let Some(oldest) = row.oldest_due_ms {
                let kind = crate::kernel::infra::metrics::JobKindLabels { kind: row.kind };
                jobs.oldest_due_seconds.get_or_create(&kind).set(now.saturating_sub(oldest) / 1000);
            }
        }
        let retention = i64::try_from(self.settings.done_retention_seconds).unwrap_or(i64::MAX / 2000);
        store::sweep_done(&self.db, now.saturating_sub(retention.saturating_mul(1000))).await?;
        Ok(())
    }

    /// The jobs with these ids (for callers waiting on outcomes).
    pub async fn jobs(&self, ids: &[i64]) -> Result<Vec<entity::Model>, DbErr> {
        store::by_ids(self.db.conn(), ids).await
    }
}

/// The longest `Retry-After` honoured (a misbehaving provider cannot park a job for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The delay after failed attempt `attempt`: `backoff_base_ms · 2^(attempt-1)`, capped at
/// `backoff_max_ms`, then a random point in its upper half (so retries of many jobs that
/// failed together spread out).
pub fn backoff(settings: &JobSettings, attempt: u32) -> Duration {
    let base = settings.backoff_base_ms.max(1);
    let exponent = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u64 << exponent).min(settings.backoff_max_ms.max(base));
    let jittered = full / 2 + rand::random_range(0..=full / 2);
    Duration::from_millis(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let settings = JobSettings { backoff_base_ms: 1_000, backoff_max_ms: 8_000, ..Default::default() };
        for (attempt, full) in [(1u32, 1_000u128), (2, 2_000), (3, 4_000), (4, 8_000), (9, 8_000), (200, 8_000)] {
            for _ in 0..50 {
                let delay = backoff(&settings, attempt).as_millis();
                assert!((full / 2..=full).contains(&delay), "attempt {attempt}: {delay} ms");
            }
        }
    }
}
