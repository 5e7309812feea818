//! Presence: `online`, `away` or `offline` per user, from open connections and heartbeats.
//!
//! Every open WebSocket/SSE connection counts as a sign of life: each replica refreshes
//! `last_seen_at` of its connected users once per heartbeat interval (one statement per 500
//! users), and the `heartbeat` mutation does the same for clients on long-poll (and sets
//! `away`). A user becomes `offline` only once nothing was heard for the grace period
//! (90 s by default), by a sweep any replica may run (the conditional `UPDATE` makes each
//! transition happen once). Changes are appended to the event logs of the user's contacts
//! (members of a shared conversation). That is the coalescing: a connection that flaps
//! within the grace period produces no event at all, and only real transitions are sent.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::kernel::db::sql::head_and_ids;
use crate::messaging;
use crate::realtime::{
    log::{self, EventKind, PresenceRecord},
    settings::RealtimeSettings,
};
use crate::{
    kernel::{
        db::{self, Db, sql::placeholders},
        error::DomainError,
    },
    realtime::{bus::EventBus, entities::user_event},
};

/// A user's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Connected or heard from within the grace period.
    Online,
    /// Connected but the app said it is in the background / idle.
    Away,
    /// Not heard from for the grace period.
    Offline,
}

impl Status {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }

    /// Parses the stored form (unknown values read as offline).
    pub fn parse(value: &str) -> Self {
        match value {
            "online" => Self::Online,
            "away" => Self::Away,
            _ => Self::Offline,
        }
    }
}

/// Presence tracking of this replica.
pub struct Presence {
    db: Db,
    bus: Arc<EventBus>,
    settings: RealtimeSettings,
    connected: Mutex<HashMap<i64, usize>>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").finish_non_exhaustive()
    }
}

/// Held while a connection of a user is open.
pub struct Connected {
    presence: Arc<Presence>,
    user_id: i64,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let mut connected = self.presence.lock();
        if let Some(count) = connected.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                connected.remove(&self.user_id);
            }
        }
    }
}

#[derive(FromQueryResult)]
struct Changed {
    user_id: i64,
    last_seen_at: chrono::DateTime<chrono::Utc>,
    changed_at: chrono::DateTime<chrono::Utc>,
}

impl Presence {
    /// Presence over `db`, publishing on `bus`.
    pub fn new(db: Db, bus: Arc<EventBus>, settings: RealtimeSettings) -> Arc<Self> {
        Arc::new(Self { db, bus, settings, connected: Mutex::new(HashMap::new()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, usize>> {
        self.connected.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Open connections of `user_id` on this replica.
    pub fn connections_of(&self, user_id: i64) -> usize {
        self.lock().get(&user_id).copied().unwrap_or(0)
    }

    /// Counts a new connection of `user_id` (marking them online) until the guard drops.
    pub async fn connect(self: &Arc<Self>, user_id: i64) -> Connected {
        *self.lock().entry(user_id).or_insert(0) += 1;
        if let Err(err) = self.set(user_id, Status::Online).await {
            tracing::warn!(error = %err, "could not record presence");
        }
        Connected { presence: self.clone(), user_id }
    }

    /// Records a sign of life with `status` (`online` or `away`); tells contacts if it changed.
    pub async fn set(&self, user_id: i64, status: Status) -> Result<PresenceRecord, DomainError> {
        let now = db::now();
        let tx = self.db.begin_write().await?;
        let stmt = Statement::from_sql_and_values(
            tx.get_database_backend(),
            "INSERT INTO user_presence (user_id, status, last_seen_at, changed_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, last_seen_at = excluded.last_seen_at, \
               changed_at = CASE WHEN user_presence.status = excluded.status THEN user_presence.changed_at \
                 ELSE excluded.changed_at END \
             RETURNING user_id, last_seen_at, changed_at",
            [user_id.into(), status.as_str().into(), now.into()],
        );
        let changed = Changed::find_by_statement(stmt).one(&*tx).await?;
        let record = PresenceRecord { user_id, status: status.as_str().to_owned(), last_seen_at: now };
        let mut events = Vec::new();
        if changed.is_some_and(|c| c.changed_at == now) {
            events = self.announce(&*tx, &record).await?;
        }
        tx.commit().await?;
        self.bus.publish(events);
        Ok(record)
    }

    async fn announce(
        &self,
        conn: &impl ConnectionTrait,
        record: &PresenceRecord,
    ) -> Result<Vec<user_event::Model>, DomainError> {
        let contacts = messaging::contacts(conn, record.user_id, self.settings.presence_max_group_members).await?;
        log::append(conn, &self.settings, &contacts, EventKind::PresenceChanged, record).await
    }

    /// The presence of the given users (never heard of: offline).
    pub async fn of(&self, user_ids: &[i64]) -> Result<Vec<PresenceRecord>, DomainError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(FromQueryResult)]
        struct Row {
            user_id: i64,
            status: String,
            last_seen_at: chrono::DateTime<chrono::Utc>,
        }
        let sql = format!(
            "SELECT user_id, status, last_seen_at FROM user_presence WHERE user_id IN ({})",
            placeholders(1, user_ids.len())
        );
        let values: Vec<Value> = user_ids.iter().map(|id| Value::from(*id)).collect();
        let stmt = Statement::from_sql_and_values(self.db.backend(), sql, values);
        let rows = Row::find_by_statement(stmt).all(self.db.conn()).await?;
        let grace = self.grace();
        let now = db::now();
        let mut found: HashMap<i64, PresenceRecord> = rows
            .into_iter()
            .map(|r| {
                let status = if r.last_seen_at < now - grace { "offline".to_owned() } else { r.status };
                (r.user_id, PresenceRecord { user_id: r.user_id, status, last_seen_at: r.last_seen_at })
            })
            .collect();
        Ok(user_ids
            .iter()
            .map(|id| {
                found.remove(id).unwrap_or(PresenceRecord {
                    user_id: *id,
                    status: "offline".to_owned(),
                    last_seen_at: chrono::DateTime::UNIX_EPOCH,
                })
            })
            .collect())
    }

    fn grace(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.settings.presence_grace_seconds).unwrap_or(90))
    }

    /// One tick: refresh connected users, then turn silent users offline.
    pub async fn tick(&self) -> Result<(), DomainError> {
        let now = db::now();
        let users: Vec<i64> = self.lock().keys().copied().collect();
        for chunk in users.chunks(500) {
            let sql = format!(
                "UPDATE user_presence SET last_seen_at = $1 WHERE user_id IN ({})",
                placeholders(2, chunk.len())
            );
            let stmt = Statement::from_sql_and_values(self.db.backend(), sql, head_and_ids(now, chunk));
            let tx = self.db.begin_write().await?;
            tx.execute_raw(stmt).await?;
            tx.commit().await?;
        }
        let tx = self.db.begin_write().await?;
        let stmt = Statement::from_sql_and_values(
            tx.get_database_backend(),
            "UPDATE user_presence SET status = 'offline', changed_at = $1 \
             WHERE status <> 'offline' AND last_seen_at < $2 RETURNING user_id, last_seen_at, changed_at",
            [now.into(), (now - self.grace()).into()],
        );
        let gone = Changed::find_by_statement(stmt).all(&*tx).await?;
        let mut events = Vec::new();
        for row in gone {
            let record =
                PresenceRecord { user_id: row.user_id, status: "offline".to_owned(), last_seen_at: row.last_seen_at };
            events.extend(self.announce(&*tx, &record).await?);
        }
        tx.commit().await?;
        self.bus.publish(events);
        Ok(())
    }

    /// Runs [`Presence::tick`] every heartbeat interval until the process ends.
    pub fn spawn_ticker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let presence = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(presence.settings.presence_heartbeat_seconds.max(1));
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                interval.tick().await;
                if let Err(err) = presence.tick().await {
                    tracing::warn!(error = %err, "presence tick failed");
                }
            }
        })
    }
}
