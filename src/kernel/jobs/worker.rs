//! Workers: one loop per registered job kind, running at most the handler's `concurrency`
//! attempts at a time (a per-provider limit), polling for due jobs every
//! `jobs.poll_interval_ms` and at once when this replica enqueues ([`JobQueue::wake`]).
//!
//! Workers run as background work ([`background`]): their statements are counted apart from
//! the requests' (`bff_db_background_statements_total`).
//!
//! An attempt is cut off at its lease: past it another worker may already have claimed the
//! job, so a late result would be a duplicate (it is counted as `lease_lost` and dropped).

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use tokio::{sync::Semaphore, task::JoinHandle};

use super::{Job, JobQueue};
use crate::kernel::db::background;

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// Transient (a timeout, 429, 5xx): try again after the backoff, or after `retry_after`
    /// when the other side said when.
    Retry {
        /// For the job row and the logs (no secrets).
        reason: String,
        /// The other side's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help (a bad token, a payload too large): dead-letter now.
    Permanent {
        /// For the job row and the logs (no secrets).
        reason: String,
    },
}

impl JobError {
    /// A transient failure with the default backoff.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry { reason: reason.into(), retry_after: None }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent { reason: reason.into() }
    }
}

/// What runs jobs of one kind; implemented by the concern that enqueues them.
pub trait JobHandler: Send + Sync + 'static {
    /// The kind this handler runs (`push.send`).
    fn kind(&self) -> &'static str;
    /// Attempts of this kind running at once on this replica.
    fn concurrency(&self) -> usize;
    /// Runs one attempt; the result is stored on the job row.
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<serde_json::Value, JobError>>;
}

/// Handlers by kind, filled by the composition root.
#[derive(Default)]
pub struct JobRegistry {
    handlers: Vec<Arc<dyn JobHandler>>,
}

impl JobRegistry {
    /// Adds a handler (a second handler for the same kind replaces the first).
    pub fn register(mut self, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.retain(|h| h.kind() != handler.kind());
        self.handlers.push(handler);
        self
    }

    /// The registered kinds.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|h| h.kind()).collect()
    }
}

/// Starts one worker loop per handler and the maintenance task (metrics, retention).
pub fn spawn_workers(queue: Arc<JobQueue>, registry: JobRegistry) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<JoinHandle<()>> = registry
        .handlers
        .into_iter()
        .map(|handler| tokio::spawn(background(run_kind(queue.clone(), handler))))
        .collect();
    tasks.push(tokio::spawn(background(maintain(queue))));
    tasks
}

/// Only the maintenance task (a replica that runs no workers still publishes the gauges).
pub fn spawn_maintenance(queue: Arc<JobQueue>) -> JoinHandle<()> {
    tokio::spawn(background(maintain(queue)))
}

async fn maintain(queue: Arc<JobQueue>) {
    let every = Duration::from_secs(queue.settings.maintenance_interval_seconds.max(1));
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        if let Err(err) = queue.maintain().await {
            tracing::warn!(error = %err, "job queue maintenance failed");
        }
    }
}

async fn run_kind(queue: Arc<JobQueue>, handler: Arc<dyn JobHandler>) {
    let kind = handler.kind();
    let slots = Arc::new(Semaphore::new(handler.concurrency().max(1)));
    let poll = Duration::from_millis(queue.settings.poll_interval_ms.max(10));
    let mut wakeups = queue.wakeups();
    loop {
        // Wait for a free slot, then claim as many jobs as there are free slots.
        let Ok(first) = slots.clone().acquire_owned().await else { return };
        let free = slots.available_permits() + 1;
        let jobs = match queue.claim(kind, free).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(kind, error = %err, "claiming jobs failed");
                drop(first);
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        if jobs.is_empty() {
            drop(first);
            tokio::select! {
                _ = wakeups.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let mut first = Some(first);
        for job in jobs {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let (queue, handler) = (queue.clone(), handler.clone());
            tokio::spawn(background(async move {
                run_one(&queue, handler.as_ref(), job).await;
                drop(permit);
            }));
        }
    }
}

/// Runs one attempt and records its end.
pub async fn run_one(queue: &JobQueue, handler: &dyn JobHandler, job: Job) {
    let outcome = if job.attempt > job.max_attempts {
        // The last attempt's worker died after claiming it.
        Err(JobError::permanent(format!("lease expired on the last of {} attempts", job.max_attempts)))
    } else {
        match tokio::time::timeout(queue.lease(), handler.run(&job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::retry("attempt exceeded its lease")),
        }
    };
    let recorded = match outcome {
        Ok(result) => queue.complete(&job, result).await,
        Err(error) => {
            tracing::info!(kind = %job.kind, job = job.id, attempt = job.attempt, ?error, "job attempt failed");
            queue.fail(&job, error).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(kind = %job.kind, job = job.id, "job result after its lease was lost: dropped"),
        Err(err) => tracing::warn!(kind = %job.kind, job = job.id, error = %err, "recording a job outcome failed"),
    }
}
