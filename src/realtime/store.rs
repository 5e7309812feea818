//! The per-user event log: sequence numbers taken from each user's head row inside the
//! writing transaction, replay reads, delivery acknowledgements and the retention sweep.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};

use crate::realtime::entities::{event_head, user_event};

/// Rows per multi-row statement (well below SQLite's and PostgreSQL's parameter limits).
const CHUNK: usize = 1_000;

/// Takes the next sequence number of each user (ascending ids, so concurrent writers lock
/// head rows in one order); returns `(user_id, seq)` pairs. The head rows stay locked until
/// the transaction ends, so sequence numbers commit in order and never leave a gap.
pub async fn next_seqs(conn: &impl ConnectionTrait, user_ids: &[i64]) -> Result<Vec<(i64, i64)>, DbErr> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = user_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    #[derive(FromQueryResult)]
    struct Row {
        user_id: i64,
        last_seq: i64,
    }
    let mut out = Vec::with_capacity(sorted.len());
    // Chunks in ascending order keep the lock order and the bound-parameter count in check.
    for chunk in sorted.chunks(CHUNK) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, 1)", i + 1)).collect();
        let sql = format!(
            "INSERT INTO event_heads (user_id, last_seq) VALUES {} \
             ON CONFLICT (user_id) DO UPDATE SET last_seq = event_heads.last_seq + 1 RETURNING user_id, last_seq",
            rows.join(", ")
        );
        let values: Vec<Value> = chunk.iter().map(|id| Value::from(*id)).collect();
        let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
        out.extend(Row::find_by_statement(stmt).all(conn).await?.into_iter().map(|r| (r.user_id, r.last_seq)));
    }
    out.sort_unstable();
    Ok(out)
}

/// Inserts logged events (in chunks: a message to a big group is many rows).
pub async fn insert(conn: &impl ConnectionTrait, rows: Vec<user_event::ActiveModel>) -> Result<(), DbErr> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        user_event::Entity::insert_many(chunk).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Asks PostgreSQL to tell every listening replica about new events when the transaction
/// commits (`user_id:seq` pairs; the log stays the source of truth).
pub async fn notify(conn: &impl ConnectionTrait, channel: &str, pairs: &[(i64, i64)]) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres || pairs.is_empty() {
        return Ok(());
    }
    // NOTIFY payloads are limited to 8000 bytes: chunk.
    for chunk in pairs.chunks(300) {
        let payload = chunk.iter().map(|(u, s)| format!("{u}:{s}")).collect::<Vec<_>>().join(",");
        let stmt = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [channel.into(), payload.into()],
        );
        conn.execute_raw(stmt).await?;
    }
    Ok(())
}

/// Asks PostgreSQL to tell every listening replica, when the transaction commits, that these
/// devices were signed out (so that their sockets close everywhere at once).
pub async fn notify_revoked(conn: &impl ConnectionTrait, channel: &str, devices: &[i64]) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres || devices.is_empty() {
        return Ok(());
    }
    for chunk in devices.chunks(400) {
        let payload = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let stmt = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [revoked_channel(channel).into(), payload.into()],
        );
        conn.execute_raw(stmt).await?;
    }
    Ok(())
}

/// The LISTEN/NOTIFY channel of device revocations next to the events channel `channel`.
pub fn revoked_channel(channel: &str) -> String {
    format!("{channel}_revoked")
}

/// Events of `user_id` with `seq > after`, in order, at most `limit`.
pub async fn after(
    conn: &impl ConnectionTrait,
    user_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<user_event::Model>, DbErr> {
    user_event::Entity::find()
        .filter(user_event::Column::UserId.eq(user_id))
        .filter(user_event::Column::Seq.gt(after))
        .order_by_asc(user_event::Column::Seq)
        .limit(limit as u64)
        .all(conn)
        .await
}

/// The head of a user's log (none before their first event).
pub async fn head(conn: &impl ConnectionTrait, user_id: i64) -> Result<Option<event_head::Model>, DbErr> {
    event_head::Entity::find_by_id(user_id).one(conn).await
}

/// Records that `device_id` of `user_id` has received everything up to `seq` (never moves
/// backwards); returns the stored position.
pub async fn ack(
    conn: &impl ConnectionTrait,
    user_id: i64,
    device_id: i64,
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        acked_seq: i64,
    }
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO event_acks (user_id, device_id, acked_seq, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, device_id) DO UPDATE SET \
           acked_seq = CASE WHEN excluded.acked_seq > event_acks.acked_seq THEN excluded.acked_seq ELSE event_acks.acked_seq END, \
           updated_at = excluded.updated_at \
         RETURNING acked_seq",
        [user_id.into(), device_id.into(), seq.into(), at.into()],
    );
    Ok(Row::find_by_statement(stmt).one(conn).await?.map(|r| r.acked_seq).unwrap_or(seq))
}

/// The oldest retained seq of a user's log (none when it holds no events).
pub async fn oldest(conn: &impl ConnectionTrait, user_id: i64) -> Result<Option<i64>, DbErr> {
    user_event::Entity::find()
        .select_only()
        .column(user_event::Column::Seq)
        .filter(user_event::Column::UserId.eq(user_id))
        .order_by_asc(user_event::Column::Seq)
        .limit(1)
        .into_tuple::<i64>()
        .one(conn)
        .await
}

/// Retention: forgets events older than `older_than` and all but the newest `keep` of each
/// user. Only ever a prefix of each log goes (by age: everything up to the newest old event,
/// so clock skew between replicas cannot punch a hole), and head rows are not locked, so
/// appends never wait for the sweep. Returns the deleted count.
pub async fn prune(
    conn: &impl ConnectionTrait,
    older_than: chrono::DateTime<chrono::Utc>,
    keep: i64,
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let by_age = "DELETE FROM user_events WHERE seq <= \
         (SELECT MAX(e.seq) FROM user_events e WHERE e.user_id = user_events.user_id AND e.created_at < $1)";
    let aged = conn.execute_raw(Statement::from_sql_and_values(backend, by_age, [older_than.into()])).await?;
    let by_count = "DELETE FROM user_events WHERE seq <= \
         (SELECT h.last_seq - $1 FROM event_heads h WHERE h.user_id = user_events.user_id)";
    let counted = conn.execute_raw(Statement::from_sql_and_values(backend, by_count, [keep.into()])).await?;
    Ok(aged.rows_affected() + counted.rows_affected())
}
