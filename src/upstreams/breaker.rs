//! A circuit breaker per upstream: after `failures` failed calls within `window` it opens and
//! refuses calls at once (no waiting on a dead service) for `open`; then one probe call is let
//! through (half-open) and its outcome closes or re-opens the circuit.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// The breaker's state, as exported in metrics (`0` closed, `1` half-open, `2` open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// One probe call is allowed.
    HalfOpen,
    /// Calls are refused.
    Open,
}

impl BreakerState {
    /// The gauge value.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: VecDeque<Instant> },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    failures: usize,
    window: Duration,
    open: Duration,
    state: Mutex<State>,
}

/// Permission to make one call; report its outcome with [`Breaker::record`]. A probe that is
/// dropped without an outcome (the caller was cancelled) frees the half-open slot.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    /// A breaker that opens after `failures` failures within `window`, for `open`.
    pub fn new(failures: u32, window: Duration, open: Duration) -> Self {
        Self {
            failures: failures.max(1) as usize,
            window,
            open,
            state: Mutex::new(State::Closed { failures: VecDeque::new() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state invalid: recover it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current state (an expired open state reads as half-open).
    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= *until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// A permit for one call, or `None` while the circuit is open (or its probe is out).
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match &mut *state {
            State::Closed { .. } => false,
            State::Open { until } => {
                if Instant::now() < *until {
                    return None;
                }
                *state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing } => {
                if *probing {
                    return None;
                }
                *probing = true;
                true
            }
        };
        Some(Permit { breaker: self, probe, recorded: false })
    }

    /// Records the outcome of a permitted call.
    pub fn record(&self, mut permit: Permit<'_>, success: bool) {
        permit.recorded = true;
        let now = Instant::now();
        let mut state = self.lock();
        match &mut *state {
            State::Closed { failures } => {
                if success {
                    return;
                }
                failures.push_back(now);
                while failures.front().is_some_and(|t| now.duration_since(*t) > self.window) {
                    failures.pop_front();
                }
                if failures.len() >= self.failures {
                    *state = State::Open { until: now + self.open };
                }
            }
            // Only the probe's outcome moves a half-open breaker; late outcomes of calls
            // permitted before it opened do not.
            State::HalfOpen { .. } if permit.probe => {
                *state = if success {
                    State::Closed { failures: VecDeque::new() }
                } else {
                    State::Open { until: now + self.open }
                };
            }
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            let mut state = self.breaker.lock();
            if let State::HalfOpen { probing } = &mut *state {
                *probing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_the_window_then_probes_and_closes() {
        let breaker = Breaker::new(3, Duration::from_secs(10), Duration::from_secs(5));
        for _ in 0..2 {
            let permit = breaker.try_acquire().expect("closed");
            breaker.record(permit, false);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        let permit = breaker.try_acquire().expect("closed");
        breaker.record(permit, false);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_none(), "open refuses");

        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.try_acquire().expect("one probe");
        assert!(breaker.try_acquire().is_none(), "only one probe at a time");
        breaker.record(probe, true);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_and_a_dropped_probe_frees_the_slot() {
        let breaker = Breaker::new(1, Duration::from_secs(10), Duration::from_secs(5));
        let permit = breaker.try_acquire().expect("closed");
        breaker.record(permit, false);
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = breaker.try_acquire().expect("probe");
        breaker.record(probe, false);
        assert_eq!(breaker.state(), BreakerState::Open);

        tokio::time::advance(Duration::from_secs(5)).await;
        drop(breaker.try_acquire().expect("probe"));
        assert!(breaker.try_acquire().is_some(), "a cancelled probe does not wedge the breaker");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_are_forgotten() {
        let breaker = Breaker::new(2, Duration::from_secs(10), Duration::from_secs(5));
        let permit = breaker.try_acquire().expect("closed");
        breaker.record(permit, false);
        tokio::time::advance(Duration::from_secs(11)).await;
        let permit = breaker.try_acquire().expect("closed");
        breaker.record(permit, false);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
