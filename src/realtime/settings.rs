//! Real-time settings (`[realtime]` in the TOML file, `BFF_REALTIME__*` in the environment):
//! event-log retention, long-poll and socket limits, WebSocket keepalive and buffers, presence
//! timings and cluster fan-out.

use serde::{Deserialize, Serialize};

/// Real-time settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSettings {
    /// Events older than this many days are pruned from each user's log.
    pub event_retention_days: u64,
    /// At most this many newest events are kept per user.
    pub event_retention_count: i64,
    /// How often the retention sweep runs, in seconds.
    pub retention_sweep_seconds: u64,
    /// Longest `pollEvents(waitSeconds:)` accepted.
    pub max_poll_wait_seconds: u64,
    /// Most events returned by one `pollEvents` or replayed per read.
    pub max_events_per_poll: usize,
    /// Longest message body, in characters.
    pub max_message_chars: usize,
    /// Most members of a group conversation.
    pub max_group_members: usize,
    /// Most concurrent WebSocket/SSE connections of one user on one replica.
    pub max_connections_per_user: usize,
    /// Most concurrent subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// Seconds a client has to send `connection_init` after the upgrade.
    pub ws_init_timeout_seconds: u64,
    /// Interval of the server's WebSocket pings (and of SSE keepalive comments), in seconds.
    pub ws_ping_interval_seconds: u64,
    /// A connection from which nothing (not even a pong) arrived for this long is dropped.
    pub ws_idle_timeout_seconds: u64,
    /// WebSocket read buffer per connection, in bytes (small keeps idle sockets cheap; client
    /// messages are small, and a bigger one only takes more reads).
    pub ws_read_buffer_bytes: usize,
    /// WebSocket write buffer per connection, in bytes (0 writes each frame at once).
    pub ws_write_buffer_bytes: usize,
    /// Largest WebSocket message accepted from a client, in bytes.
    pub ws_max_message_bytes: usize,
    /// Expected interval of client heartbeats (socket activity or the `heartbeat` mutation).
    pub presence_heartbeat_seconds: u64,
    /// A user with no sign of life for this long becomes `offline`.
    pub presence_grace_seconds: u64,
    /// Presence changes go to the other members of the user's direct conversations and of
    /// groups with at most this many members (a change would otherwise append an event to
    /// the log of every member of every big group the user is in).
    pub presence_max_group_members: usize,
    /// On PostgreSQL, wake subscribers on other replicas through LISTEN/NOTIFY.
    pub pg_notify: bool,
    /// The LISTEN/NOTIFY channel.
    pub pg_notify_channel: String,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            event_retention_days: 7,
            event_retention_count: 10_000,
            retention_sweep_seconds: 300,
            max_poll_wait_seconds: 30,
            max_events_per_poll: 500,
            max_message_chars: 4_000,
            max_group_members: 100,
            max_connections_per_user: 10,
            max_subscriptions_per_connection: 20,
            ws_init_timeout_seconds: 10,
            ws_ping_interval_seconds: 25,
            ws_idle_timeout_seconds: 70,
            ws_read_buffer_bytes: 1024,
            ws_write_buffer_bytes: 0,
            ws_max_message_bytes: 64 * 1024,
            presence_heartbeat_seconds: 30,
            presence_grace_seconds: 90,
            presence_max_group_members: 32,
            pg_notify: true,
            pg_notify_channel: "bff_events".to_owned(),
        }
    }
}

impl RealtimeSettings {
    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.event_retention_days == 0 || self.event_retention_count < 1 {
            return Err("realtime.event_retention_days and event_retention_count must be positive".into());
        }
        if self.max_poll_wait_seconds > 120 || self.max_events_per_poll == 0 || self.max_events_per_poll > 5_000 {
            return Err("realtime.max_poll_wait_seconds ≤ 120 and max_events_per_poll in 1..=5000".into());
        }
        if self.ws_ping_interval_seconds == 0 || self.ws_idle_timeout_seconds <= self.ws_ping_interval_seconds {
            return Err("realtime.ws_ping_interval_seconds must be positive and below ws_idle_timeout_seconds".into());
        }
        if self.presence_heartbeat_seconds == 0 || self.presence_grace_seconds < self.presence_heartbeat_seconds {
            return Err("realtime.presence_grace_seconds must be at least presence_heartbeat_seconds".into());
        }
        if !(2..=100_000).contains(&self.max_group_members)
            || !(1..=100_000).contains(&self.max_message_chars)
            || self.ws_read_buffer_bytes < 256
        {
            return Err(
                "realtime.max_group_members in 2..=100000, max_message_chars in 1..=100000, ws_read_buffer_bytes ≥ 256"
                    .into(),
            );
        }
        if self.pg_notify_channel.is_empty()
            || self.pg_notify_channel.len() > 63
            || !self.pg_notify_channel.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err("realtime.pg_notify_channel must be 1..=63 characters of [a-z_]".into());
        }
        Ok(())
    }
}
