//! Idempotent mutations: the same client key from the same user returns the first result and
//! has no second effect, also when the retry races the first attempt.
//!
//! The key is claimed by inserting its row inside the mutation's own write transaction. A
//! concurrent attempt with the same key blocks on that row (PostgreSQL's unique index) or on
//! the writer lock (SQLite) until the first commits, then finds the row and replays its stored
//! result. If the first attempt fails, its transaction rolls back and the key is free again.
//! A key reused for a different operation or input is a `CONFLICT`.

pub mod idempotency_key;
pub mod store;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::kernel::idempotency::store as idempotency;
use crate::kernel::{error::DomainError, validate};
use crate::{
    kernel::settings::IdempotencySettings,
    kernel::{
        db::{self, Db, WriteTx},
        idempotency::store::Claim,
    },
};

/// An open write transaction for a mutation, remembering the claimed key (if any).
pub struct IdempotentTx {
    tx: WriteTx,
    claimed: Option<(i64, String)>,
}

/// Either the first attempt (run the effect in the transaction) or a replayed result.
pub enum Attempt<T> {
    /// No earlier attempt: perform the effect, then [`IdempotentTx::finish`].
    First(IdempotentTx),
    /// An earlier attempt with the same key and input already produced this result.
    Replay(T),
}

impl IdempotentTx {
    /// The transaction to perform the effect in.
    pub fn tx(&self) -> &WriteTx {
        &self.tx
    }

    /// Stores `result` under the key (if any) and commits.
    pub async fn finish<T: Serialize>(self, result: &T) -> Result<(), DomainError> {
        if let Some((user_id, key)) = &self.claimed {
            idempotency::complete(&*self.tx, *user_id, key, serde_json::to_value(result)?).await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Starts a mutation `operation` by `user_id` with input `input` and optional client `key`.
pub async fn begin<T: DeserializeOwned>(
    db: &Db,
    settings: &IdempotencySettings,
    user_id: i64,
    key: Option<&str>,
    operation: &str,
    input: &impl Serialize,
) -> Result<Attempt<T>, DomainError> {
    let tx = db.begin_write().await?;
    let Some(key) = key else {
        return Ok(Attempt::First(IdempotentTx { tx, claimed: None }));
    };
    let request_hash = fingerprint(operation, input)?;
    let now = db::now();
    let retention = chrono::Duration::seconds(i64::try_from(settings.retention_seconds).unwrap_or(i64::MAX / 4));
    let claim = Claim { user_id, key, operation, request_hash: &request_hash, expires_at: now + retention };
    if idempotency::try_claim(&*tx, &claim, now).await? {
        return Ok(Attempt::First(IdempotentTx { tx, claimed: Some((user_id, key.to_owned())) }));
    }
    drop(tx);
    replay(db, settings, &claim).await.map(Attempt::Replay)
}

/// What a use case hands back after its transaction committed: its result and what must be
/// published now (events for the bus, devices to cut off). A replayed attempt has nothing to
/// publish: the first attempt already did.
pub type Committed<T, P> = (T, Vec<P>);

/// Runs `effect` at most once per client `key` (validated here) for `user_id`: the first
/// attempt performs it in a write transaction, stores its result under the key and commits;
/// a retry gets the stored result back and an empty list of things to publish.
pub async fn once<T, P, I>(
    db: &Db,
    settings: &IdempotencySettings,
    user_id: i64,
    key: Option<&str>,
    operation: &str,
    input: &I,
    effect: impl for<'t> FnOnce(&'t WriteTx) -> BoxFuture<'t, Result<Committed<T, P>, DomainError>>,
) -> Result<Committed<T, P>, DomainError>
where
    T: Serialize + DeserializeOwned,
    I: Serialize,
{
    let key = key.map(validate::idempotency_key).transpose()?;
    match begin(db, settings, user_id, key.as_deref(), operation, input).await? {
        Attempt::Replay(result) => Ok((result, Vec::new())),
        Attempt::First(tx) => {
            let (result, publish) = effect(tx.tx()).await?;
            tx.finish(&result).await?;
            Ok((result, publish))
        }
    }
}

/// Waits (bounded) for the stored result of the attempt that holds the key.
async fn replay<T: DeserializeOwned>(
    db: &Db,
    settings: &IdempotencySettings,
    claim: &Claim<'_>,
) -> Result<T, DomainError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(settings.wait_for_inflight_ms);
    loop {
        if let Some(row) = idempotency::find(db.conn(), claim.user_id, claim.key).await? {
            if row.operation != claim.operation || row.request_hash != claim.request_hash {
                return Err(DomainError::Conflict("idempotencyKey was already used for a different request"));
            }
            if let Some(response) = row.response {
                return Ok(serde_json::from_value(response)?);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DomainError::Conflict("a request with this idempotencyKey is still in progress; retry later"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fingerprint(operation: &str, input: &impl Serialize) -> Result<String, DomainError> {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(input)?);
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Deletes expired keys every `every` until the process ends.
pub fn spawn_sweeper(db: Db, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            interval.tick().await;
            match idempotency::sweep(db.conn(), db::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "swept expired idempotency keys"),
                Err(err) => tracing::warn!(error = %err, "idempotency sweep failed"),
            }
        }
    })
}
