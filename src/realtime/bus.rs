//! The in-process notifier: wakes the subscribers of a user when their event log grows.
//!
//! The log in the database is the source of truth; a wake only says "user U has events up
//! to seq S" (and, when published on this replica, carries the events so that a subscriber
//! that is exactly caught up needs no read). A subscriber that sees a gap, lags behind the
//! channel, or gets a wake without events (from another replica through PostgreSQL
//! LISTEN/NOTIFY, see [`spawn_pg_listener`]) reads the log instead. Subscribing before
//! reading the replay and deduplicating by seq is what makes replay-then-live gapless.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::broadcast;

use crate::realtime::entities::user_event;

/// Wakes buffered per user before a slow subscriber lags (and falls back to a log read).
const CHANNEL_CAPACITY: usize = 64;

/// News about one user's log.
#[derive(Debug)]
pub struct Wake {
    /// Whose log grew.
    pub user_id: i64,
    /// The newest seq now in the log; `None` when unknown (after a lost notification
    /// connection: every subscriber re-reads).
    pub latest_seq: Option<i64>,
    /// The new events in seq order when published on this replica; empty otherwise.
    pub events: Vec<user_event::Model>,
}

/// Per-user broadcast channels of wakes.
#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<i64, broadcast::Sender<Arc<Wake>>>>,
    subscribes: AtomicU64,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, broadcast::Sender<Arc<Wake>>>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes for `user_id` from now on. Subscribe before reading the log.
    pub fn subscribe(&self, user_id: i64) -> broadcast::Receiver<Arc<Wake>> {
        let mut channels = self.lock();
        if self.subscribes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            channels.retain(|_, sender| sender.receiver_count() > 0);
        }
        channels.entry(user_id).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe()
    }

    /// Publishes committed events (any users, any order).
    pub fn publish(&self, mut events: Vec<user_event::Model>) {
        if events.is_empty() {
            return;
        }
        events.sort_by_key(|e| (e.user_id, e.seq));
        let mut by_user: Vec<Vec<user_event::Model>> = Vec::new();
        for event in events {
            match by_user.last_mut() {
                Some(group) if group[0].user_id == event.user_id => group.push(event),
                _ => by_user.push(vec![event]),
            }
        }
        let mut channels = self.lock();
        for group in by_user {
            let user_id = group[0].user_id;
            let latest_seq = group.last().map(|e| e.seq);
            Self::send(&mut channels, Wake { user_id, latest_seq, events: group });
        }
    }

    /// Wakes the subscribers of `user_id` without events (they read the log).
    pub fn wake(&self, user_id: i64, latest_seq: Option<i64>) {
        Self::send(&mut self.lock(), Wake { user_id, latest_seq, events: Vec::new() });
    }

    /// Wakes every subscriber on this replica (after notifications may have been lost).
    pub fn wake_all(&self) {
        let mut channels = self.lock();
        let users: Vec<i64> = channels.keys().copied().collect();
        for user_id in users {
            Self::send(&mut channels, Wake { user_id, latest_seq: None, events: Vec::new() });
        }
    }

    fn send(channels: &mut HashMap<i64, broadcast::Sender<Arc<Wake>>>, wake: Wake) {
        let user_id = wake.user_id;
        if let Some(sender) = channels.get(&user_id)
            && sender.send(Arc::new(wake)).is_err()
        {
            // Nobody listens any more.
            channels.remove(&user_id);
        }
    }

    /// Users with at least one subscriber on this replica.
    pub fn subscribed_users(&self) -> usize {
        self.lock().values().filter(|s| s.receiver_count() > 0).count()
    }
}

/// Listens on PostgreSQL channel `channel` and turns `user:seq,user:seq` notifications from
/// every replica (this one included) into wakes, and device ids on the revocations channel
/// next to it ([`crate::realtime::store::revoked_channel`]) into calls of `on_revoked` (which closes
/// that device's sockets on this replica). Reconnects with backoff; after a reconnect every
/// local subscriber re-reads its log, since notifications sent meanwhile are lost (a lost
/// revocation is still caught at the socket's next ping).
pub fn spawn_pg_listener(
    bus: Arc<EventBus>,
    url: String,
    channel: String,
    on_revoked: Box<dyn Fn(i64) + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    let revocations = crate::realtime::store::revoked_channel(&channel);
    use sea_orm::sqlx::postgres::PgListener;
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut listener = match PgListener::connect(&url).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "event listener cannot connect; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            if let Err(err) = listener.listen_all([channel.as_str(), revocations.as_str()]).await {
                tracing::warn!(error = %err, "LISTEN failed; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(200);
            bus.wake_all();
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) if notification.channel() == revocations => {
                        for device in notification.payload().split(',').filter_map(|d| d.parse::<i64>().ok()) {
                            on_revoked(device);
                        }
                    }
                    Ok(Some(notification)) => {
                        for pair in notification.payload().split(',') {
                            if let Some((user, seq)) = pair.split_once(':')
                                && let (Ok(user), Ok(seq)) = (user.parse::<i64>(), seq.parse::<i64>())
                            {
                                bus.wake(user, Some(seq));
                            }
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("event listener connection lost; reconnecting");
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "event listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
