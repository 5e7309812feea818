//! The kernel's job queue against a real database (SQLite, or PostgreSQL with
//! `BFF_TEST_DATABASE_URL`): scheduling, leases, retries with backoff, the dead letter,
//! concurrent claims from two "replicas", and the worker loop. The clock is passed
//! explicitly (`claim_at`, `fail_at`): no test waits for time to pass.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use mobile_bff::kernel::{
    db::Db,
    infra::metrics::Metrics,
    jobs::{
        Job, JobError, JobHandler, JobQueue, JobRegistry, NewJob, now_ms,
        store::{DEAD, DONE, QUEUED},
        worker,
    },
    settings::JobSettings,
};
use serde_json::{Value, json};

use crate::common::TestDatabase;

struct Fixture {
    database: TestDatabase,
    db: Db,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = TestDatabase::create(dir.path()).await;
        let db = Db::connect(&database.url, 8, Arc::new(Metrics::new())).await.expect("connect");
        db.migrate().await.expect("migrate");
        Self { database, db, _dir: dir }
    }

    fn queue(&self, settings: JobSettings) -> JobQueue {
        JobQueue::new(self.db.clone(), settings, Arc::new(Metrics::new()))
    }

    async fn enqueue(&self, queue: &JobQueue, kind: &'static str, payload: Value, run_at_ms: Option<i64>) -> i64 {
        let tx = self.db.begin_write().await.expect("tx");
        let run_at = run_at_ms.and_then(chrono::DateTime::from_timestamp_millis);
        let id = queue.enqueue(&*tx, NewJob { kind, payload, run_at, max_attempts: None }).await.expect("enqueue");
        tx.commit().await.expect("commit");
        id
    }

    async fn row(&self, queue: &JobQueue, id: i64) -> mobile_bff::kernel::jobs::entity::Model {
        queue.jobs(&[id]).await.expect("read").pop().expect("job exists")
    }
}

fn settings() -> JobSettings {
    JobSettings {
        lease_seconds: 60,
        max_attempts: 3,
        backoff_base_ms: 1_000,
        backoff_max_ms: 60_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn scheduled_jobs_wait_for_run_at_and_a_dead_workers_job_runs_again_after_its_lease() {
    let fx = Fixture::new().await;
    let queue = fx.queue(settings());
    let t0 = now_ms();
    let id = fx.enqueue(&queue, "test.lease", json!({ "n": 1 }), Some(t0 + 60_000)).await;
    // Scheduled: nothing is due before run_at.
    assert!(queue.claim_at("test.lease", 10, t0).await.expect("claim").is_empty());
    assert!(queue.claim_at("test.lease", 10, t0 + 59_999).await.expect("claim").is_empty());
    let first = queue.claim_at("test.lease", 10, t0 + 60_000).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].id, first[0].attempt, first[0].reclaimed), (id, 1, false));
    assert_eq!(first[0].payload, json!({ "n": 1 }));
    // The worker "dies": no complete. Within the lease nobody else gets the job.
    assert!(queue.claim_at("test.lease", 10, t0 + 60_000 + 59_999).await.expect("claim").is_empty());
    // After the lease it runs again (counted as reclaimed: a possible duplicate).
    let again = queue.claim_at("test.lease", 10, t0 + 60_000 + 60_000).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempt, again[0].reclaimed), (id, 2, true));
    // The dead worker's late result is refused; the new holder's result counts.
    assert!(!queue.complete(&first[0], json!("late")).await.expect("complete"));
    assert!(queue.complete(&again[0], json!({ "ok": true })).await.expect("complete"));
    let row = fx.row(&queue, id).await;
    assert_eq!(row.status, DONE);
    assert_eq!(row.result, Some(json!({ "ok": true })));
    assert_eq!((row.attempts, row.reclaims), (2, 1));
    // Done jobs are never claimed again.
    assert!(queue.claim_at("test.lease", 10, t0 + 10_000_000).await.expect("claim").is_empty());
    fx.database.destroy().await;
}

#[tokio::test]
async fn failures_back_off_honour_retry_after_and_end_in_the_dead_letter() {
    let fx = Fixture::new().await;
    let queue = fx.queue(settings());
    let id = fx.enqueue(&queue, "test.retry", json!({}), None).await;
    let t0 = now_ms() + 1;
    let job = queue.claim_at("test.retry", 1, t0).await.expect("claim").pop().expect("due");
    assert!(queue.fail_at(&job, JobError::retry("HTTP 500"), t0).await.expect("fail"));
    let row = fx.row(&queue, id).await;
    assert_eq!(row.status, QUEUED);
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500"));
    // First retry: base 1 s with jitter in its upper half.
    let delay = row.run_at_ms - t0;
    assert!((500..=1_000).contains(&delay), "first backoff {delay} ms");
    assert!(queue.claim_at("test.retry", 1, row.run_at_ms - 1).await.expect("claim").is_empty());
    let job = queue.claim_at("test.retry", 1, row.run_at_ms).await.expect("claim").pop().expect("due");
    assert_eq!(job.attempt, 2);
    // A Retry-After from the other side is honoured exactly.
    let t1 = row.run_at_ms;
    let retry = JobError::Retry { reason: "429".into(), retry_after: Some(Duration::from_secs(30)) };
    assert!(queue.fail_at(&job, retry, t1).await.expect("fail"));
    let row = fx.row(&queue, id).await;
    assert_eq!(row.run_at_ms, t1 + 30_000);
    let job = queue.claim_at("test.retry", 1, t1 + 30_000).await.expect("claim").pop().expect("due");
    assert_eq!(job.attempt, 3);
    // The last attempt fails: dead-lettered with the reason.
    assert!(queue.fail_at(&job, JobError::retry("HTTP 503"), t1 + 30_000).await.expect("fail"));
    let row = fx.row(&queue, id).await;
    assert_eq!(row.status, DEAD);
    assert_eq!(row.last_error.as_deref(), Some("gave up after 3 attempts: HTTP 503"));
    assert!(queue.claim_at("test.retry", 1, t1 + 10_000_000).await.expect("claim").is_empty());

    // A permanent failure is dead at once, whatever attempts are left.
    let id = fx.enqueue(&queue, "test.retry", json!({}), None).await;
    let job = queue.claim_at("test.retry", 1, now_ms() + 1).await.expect("claim").pop().expect("due");
    assert!(queue.fail_at(&job, JobError::permanent("BadDeviceToken"), now_ms()).await.expect("fail"));
    let row = fx.row(&queue, id).await;
    assert_eq!((row.status.as_str(), row.attempts, row.last_error.as_deref()), (DEAD, 1, Some("BadDeviceToken")));
    fx.database.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_hand_one_job_to_two_workers() {
    let fx = Fixture::new().await;
    // Two "replicas": on PostgreSQL two pools (row locks, SKIP LOCKED); on SQLite one process.
    let second = if fx.db.backend() == sea_orm::DatabaseBackend::Postgres {
        Db::connect(&fx.database.url, 8, Arc::new(Metrics::new())).await.expect("second pool")
    } else {
        fx.db.clone()
    };
    let queues =
        [Arc::new(fx.queue(settings())), Arc::new(JobQueue::new(second, settings(), Arc::new(Metrics::new())))];
    let tx = fx.db.begin_write().await.expect("tx");
    for n in 0..300 {
        let job = NewJob { kind: "test.race", payload: json!({ "n": n }), run_at: None, max_attempts: None };
        queues[0].enqueue(&*tx, job).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
    let mut workers = Vec::new();
    for w in 0..8 {
        let queue = queues[w % 2].clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = queue.claim("test.race", 7).await.expect("claim");
                if jobs.is_empty() {
                    return mine;
                }
                for job in jobs {
                    assert!(queue.complete(&job, json!(w)).await.expect("complete"), "lease lost");
                    mine.push(job.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "every job claimed exactly once");
    assert_eq!(distinct.len(), 300);
    fx.database.destroy().await;
}

struct Flaky {
    runs: Arc<AtomicUsize>,
}

impl JobHandler for Flaky {
    fn kind(&self) -> &'static str {
        "test.flaky"
    }

    fn concurrency(&self) -> usize {
        2
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if job.attempt == 1 { Err(JobError::retry("first attempt fails")) } else { Ok(json!(job.attempt)) }
        })
    }
}

#[tokio::test]
async fn workers_run_each_job_at_least_once_and_retry_failures() {
    let fx = Fixture::new().await;
    let queue =
        Arc::new(fx.queue(JobSettings { poll_interval_ms: 20, backoff_base_ms: 10, backoff_max_ms: 20, ..settings() }));
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = JobRegistry::default().register(Arc::new(Flaky { runs: runs.clone() }));
    assert_eq!(registry.kinds(), vec!["test.flaky"]);
    let tasks = worker::spawn_workers(queue.clone(), registry);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(fx.enqueue(&queue, "test.flaky", json!(n), None).await);
    }
    queue.wake();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = queue.jobs(&ids).await.expect("read");
        if rows.iter().all(|r| r.status == DONE) {
            assert!(rows.iter().all(|r| r.attempts == 2 && r.result == Some(json!(2))), "{rows:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "jobs not done in time: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    queue.maintain().await.expect("maintain");
    for task in tasks {
        task.abort();
    }
    fx.database.destroy().await;
}
