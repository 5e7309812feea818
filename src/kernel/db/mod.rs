//! The database: connection setup for SQLite and PostgreSQL, the statement counter, write
//! transactions, and the queries the domain needs (one module per table group).
//!
//! SQLite allows one writer at a time. Rather than let concurrent write transactions fail
//! with `SQLITE_BUSY`, [`Db::begin_write`] serialises them in-process with a mutex in the
//! embedded mode; PostgreSQL needs no such lock.

pub mod keyset;
pub mod sql;

use std::{ops::Deref, path::Path, sync::Arc, time::Duration};

use migration::MigratorTrait;
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::kernel::infra::metrics::Metrics;

tokio::task_local! {
    /// Set while background work (job workers) runs: its statements are counted apart.
    static BACKGROUND: ();
}

/// Runs `work` as background work: its statements count into
/// `bff_db_background_statements_total`, not `bff_db_statements_total`, so the per-request
/// statement counts stay exact while job workers poll and send.
pub fn background<F: std::future::Future>(work: F) -> impl std::future::Future<Output = F::Output> {
    BACKGROUND.scope((), work)
}

/// The application's database handle.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    /// Serialises write transactions on SQLite; `None` on PostgreSQL.
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction; on SQLite it also holds the single-writer lock until it ends.
pub struct WriteTx {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits the transaction and releases the writer lock.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl Db {
    /// Connects, counting every executed statement into `metrics`.
    pub async fn connect(url: &str, max_connections: u32, metrics: Arc<Metrics>) -> Result<Self, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            ensure_sqlite_parent_dir(url);
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
        let mut conn = Database::connect(options).await?;
        conn.set_metric_callback(move |info| {
            tracing::trace!(target: "mobile_bff::sql", sql = %info.statement.sql, elapsed_us = info.elapsed.as_micros() as u64, "statement");
            if BACKGROUND.try_with(|_| ()).is_ok() {
                metrics.db_background_statements.inc();
            } else {
                metrics.db_statements.inc();
            }
            if info.failed {
                metrics.db_statement_errors.inc();
            }
        });
        let write_lock = sqlite.then(|| Arc::new(Mutex::new(())));
        Ok(Self { conn, write_lock })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migration::Migrator::up(&self.conn, None).await
    }

    /// The connection for reads (and single-statement writes on PostgreSQL).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The backend, to build backend-specific SQL.
    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// Begins a write transaction (taking the single-writer lock on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, DbErr> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = self.conn.begin().await?;
        Ok(WriteTx { txn, _guard: guard })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}

/// `sqlite://data/x.db?mode=rwc` creates the file but not its directory: create it.
fn ensure_sqlite_parent_dir(url: &str) {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(err) = std::fs::create_dir_all(parent)
    {
        tracing::warn!(error = %err, "could not create the SQLite directory");
    }
}

/// The current time truncated to microseconds, the precision both databases store.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
