//! The server's hybrid logical clock (`uhlc`): stamps every field write and takes in the
//! stamps clients send, refusing those too far ahead of the server's physical clock.
//!
//! A stamp is `<NTP64 time>/<hex id>`: 32 bits of seconds and 32 bits of fraction since the
//! Unix epoch, then the id of the clock that made it. Stamps are totally ordered (time, then
//! id), and after the server has seen a stamp every stamp it makes is greater, so an edit
//! made after seeing another edit is always ordered after it.

use std::time::Duration;

use uhlc::{HLC, HLCBuilder, Timestamp};

use crate::sync::error::SyncError;

/// The server's clock.
pub struct Clock {
    hlc: HLC,
    max_ahead_ms: u64,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("id", &self.hlc.get_id().to_string()).finish()
    }
}

impl Clock {
    /// A clock that refuses remote stamps more than `max_ahead_ms` ahead.
    pub fn new(max_ahead_ms: u64) -> Self {
        let hlc = HLCBuilder::new().with_max_delta(Duration::from_millis(max_ahead_ms)).build();
        Self { hlc, max_ahead_ms }
    }

    /// A new stamp, greater than every stamp made or seen so far.
    pub fn stamp(&self) -> Timestamp {
        self.hlc.new_timestamp()
    }

    /// Takes in a client's stamp (text form): `Invalid` when it does not parse, `ClockAhead`
    /// when it is too far ahead of the server's physical clock.
    pub fn observe(&self, text: &str) -> Result<Timestamp, SyncError> {
        let stamp = parse(text)?;
        self.hlc.update_with_timestamp(&stamp).map_err(|_| {
            let now = uhlc::system_time_clock();
            let ahead_ms = stamp.get_time().as_u64().saturating_sub(now.as_u64()) >> 32;
            SyncError::ClockAhead { ahead_ms: ahead_ms.saturating_mul(1000), max_ms: self.max_ahead_ms }
        })?;
        Ok(stamp)
    }
}

/// Parses a stamp's text form.
pub fn parse(text: &str) -> Result<Timestamp, SyncError> {
    if text.len() > 80 {
        return Err(SyncError::Invalid("hlc is too long".into()));
    }
    text.parse::<Timestamp>()
        .map_err(|_| SyncError::Invalid("hlc must be `<NTP64 time>/<hex clock id>` (uhlc format)".into()))
}

/// Orders two stored stamps (a stamp that does not parse is older than any).
pub fn newer(a: &Timestamp, b: Option<&str>) -> bool {
    match b.and_then(|b| b.parse::<Timestamp>().ok()) {
        Some(b) => *a > b,
        None => true,
    }
}
