//! The queue's statements. Every function takes the current time in Unix milliseconds, so the
//! tests can move the clock (a lease that expires, a retry that becomes due) without sleeping.
//!
//! Claiming is a `SELECT … FOR UPDATE SKIP LOCKED` then an `UPDATE` of the selected rows in one
//! transaction on PostgreSQL: concurrent workers (in this replica or another) skip each other's
//! rows instead of waiting on them, and never get the same row. SQLite has no row locks: the
//! same two statements run under the single-writer lock ([`Db::begin_write`]), which
//! serialises claims in this process (the embedded mode has one process).

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement,
    sea_query::{Expr, ExprTrait},
};

use super::entity::{self as job, Entity as Jobs};
use crate::kernel::db::Db;

/// `queued`: waiting for `run_at_ms`. `running`: claimed, leased until `lease_until_ms`.
pub const QUEUED: &str = "queued";
/// Claimed by a worker.
pub const RUNNING: &str = "running";
/// Completed.
pub const DONE: &str = "done";
/// Given up: permanent failure or out of attempts (`last_error` says why).
pub const DEAD: &str = "dead";

/// A job to insert.
#[derive(Clone, Debug)]
pub struct Insert<'a> {
    /// Handler kind.
    pub kind: &'a str,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Not before (Unix ms).
    pub run_at_ms: i64,
    /// Attempts before dead-lettering.
    pub max_attempts: i32,
}

/// Inserts a queued job on `conn` (a caller's transaction: the job exists iff it commits).
pub async fn insert(conn: &impl ConnectionTrait, new: Insert<'_>, now_ms: i64) -> Result<i64, DbErr> {
    let row = job::ActiveModel {
        kind: Set(new.kind.to_owned()),
        payload: Set(new.payload),
        status: Set(QUEUED.to_owned()),
        attempts: Set(0),
        max_attempts: Set(Ord::max(new.max_attempts, 1)),
        reclaims: Set(0),
        run_at_ms: Set(new.run_at_ms),
        lease_until_ms: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        result: Set(None),
        created_at_ms: Set(now_ms),
        finished_at_ms: Set(None),
        ..Default::default()
    };
    Ok(Jobs::insert(row).exec(conn).await?.last_insert_id)
}

/// A claimed row: the row as it was before the claim.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The row before the claim (its `status` says whether a lease had expired).
    pub before: job::Model,
}

/// Claims up to `limit` due jobs of `kind` for `token`, leased until `lease_until_ms`: queued
/// jobs whose `run_at_ms` has come, and running jobs whose lease expired (their worker died).
pub async fn claim(
    db: &Db,
    kind: &str,
    limit: u64,
    token: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Vec<Claimed>, DbErr> {
    let tx = db.begin_write().await?;
    let backend = tx.get_database_backend();
    let lock = if backend == DatabaseBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "SELECT * FROM jobs WHERE kind = $1 AND ((status = 'queued' AND run_at_ms <= $2) \
         OR (status = 'running' AND lease_until_ms <= $2)) ORDER BY run_at_ms, id LIMIT $3{lock}"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = Jobs::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, [kind.into(), now_ms.into(), limit.into()]))
        .all(&*tx)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let reclaimed: Vec<i64> = rows.iter().filter(|r| r.status == RUNNING).map(|r| r.id).collect();
    Jobs::update_many()
        .col_expr(job::Column::Status, Expr::value(RUNNING))
        .col_expr(job::Column::Attempts, Expr::col(job::Column::Attempts).add(1))
        .col_expr(job::Column::LeaseUntilMs, Expr::value(lease_until_ms))
        .col_expr(job::Column::LockedBy, Expr::value(token))
        .filter(job::Column::Id.is_in(ids))
        .exec(&*tx)
        .await?;
    if !reclaimed.is_empty() {
        Jobs::update_many()
            .col_expr(job::Column::Reclaims, Expr::col(job::Column::Reclaims).add(1))
            .filter(job::Column::Id.is_in(reclaimed))
            .exec(&*tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.into_iter().map(|before| Claimed { before }).collect())
}

/// The end of one attempt.
#[derive(Clone, Debug)]
pub enum Transition {
    /// Done, with the handler's result.
    Done(serde_json::Value),
    /// Back to the queue, due at `run_at_ms`.
    Retry {
        /// Why the attempt failed.
        reason: String,
        /// When to try again.
        run_at_ms: i64,
    },
    /// Dead-lettered.
    Dead {
        /// Why.
        reason: String,
    },
}

/// Applies `transition` to job `id` if `token` still holds its lease; false when the lease
/// was lost (it expired and another worker claimed the job).
pub async fn finish(db: &Db, id: i64, token: &str, transition: Transition, now_ms: i64) -> Result<bool, DbErr> {
    let update = Jobs::update_many()
        .col_expr(job::Column::LeaseUntilMs, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None));
    let update = match transition {
        Transition::Done(result) => update
            .col_expr(job::Column::Status, Expr::value(DONE))
            .col_expr(job::Column::Result, Expr::value(result))
            .col_expr(job::Column::FinishedAtMs, Expr::value(now_ms)),
        Transition::Retry { reason, run_at_ms } => update
            .col_expr(job::Column::Status, Expr::value(QUEUED))
            .col_expr(job::Column::LastError, Expr::value(truncate(reason)))
            .col_expr(job::Column::RunAtMs, Expr::value(run_at_ms)),
        Transition::Dead { reason } => update
            .col_expr(job::Column::Status, Expr::value(DEAD))
            .col_expr(job::Column::LastError, Expr::value(truncate(reason)))
            .col_expr(job::Column::FinishedAtMs, Expr::value(now_ms)),
    };
    let tx = db.begin_write().await?;
    let result = update
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::Status.eq(RUNNING))
        .filter(job::Column::LockedBy.eq(token))
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(result.rows_affected == 1)
}

fn truncate(mut reason: String) -> String {
    if reason.len() > 2000 {
        let mut cut = 2000;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

/// Jobs by id (for callers waiting on outcomes, and tests).
pub async fn by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<job::Model>, DbErr> {
    Jobs::find().filter(job::Column::Id.is_in(ids.iter().copied())).all(conn).await
}

/// Count and oldest due `run_at_ms` per (kind, status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCount {
    /// Handler kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Rows.
    pub count: i64,
    /// For `queued`: the earliest `run_at_ms` that is due (None when nothing is due).
    pub oldest_due_ms: Option<i64>,
}

/// The queue's shape, for the metrics.
pub async fn counts(conn: &impl ConnectionTrait, now_ms: i64) -> Result<Vec<StatusCount>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = "SELECT kind, status, COUNT(*) AS n, \
               MIN(CASE WHEN status = 'queued' AND run_at_ms <= $1 THEN run_at_ms END) AS oldest \
               FROM jobs GROUP BY kind, status";
    let rows = conn.query_all_raw(Statement::from_sql_and_values(backend, sql, [now_ms.into()])).await?;
    rows.into_iter()
        .map(|row| {
            Ok(StatusCount {
                kind: row.try_get("", "kind")?,
                status: row.try_get("", "status")?,
                count: row.try_get("", "n")?,
                oldest_due_ms: row.try_get("", "oldest")?,
            })
        })
        .collect()
}

/// Deletes `done` jobs finished before `before_ms` (dead ones stay for operators).
pub async fn sweep_done(db: &Db, before_ms: i64) -> Result<u64, DbErr> {
    let tx = db.begin_write().await?;
    let result = Jobs::delete_many()
        .filter(job::Column::Status.eq(DONE))
        .filter(job::Column::FinishedAtMs.lt(before_ms))
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(result.rows_affected)
}

/// The newest `limit` jobs with `status` (and `kind`, when given), for operators.
pub async fn list(
    conn: &impl ConnectionTrait,
    status: &str,
    kind: Option<&str>,
    limit: u64,
) -> Result<Vec<job::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Jobs::find().filter(job::Column::Status.eq(status));
    if let Some(kind) = kind {
        query = query.filter(job::Column::Kind.eq(kind));
    }
    query.order_by_desc(job::Column::Id).limit(limit).all(conn).await
}
