//! The cache in front of an upstream: values for `cache_ttl`, misses and permanent failures
//! for `negative_cache_ttl` (a dead link or an unknown id is not asked again on every
//! screen), and coalescing: keys already being fetched by another request are not fetched
//! again — the second request waits for the first call.
//!
//! A batch of missing keys is fetched on its own task, so a screen that stops waiting at its
//! deadline does not cancel the call: the answer still lands in the cache for the next screen
//! (each call is bounded by its own timeouts).

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::kernel::infra::metrics::Metrics;
use crate::upstreams::CallError;

/// The answer for one key: a value, nothing (the upstream knows no such key), or a failure.
pub type Outcome<V, E> = Result<Option<V>, E>;

type BatchResult<K, V, E> = Arc<HashMap<K, Outcome<V, E>>>;
type InFlight<K, V, E> = Shared<BoxFuture<'static, BatchResult<K, V, E>>>;
type InFlightMap<K, V, E> = Arc<Mutex<HashMap<K, InFlight<K, V, E>>>>;

#[derive(Clone)]
struct Entry<V, E> {
    outcome: Outcome<V, E>,
    ttl: Duration,
}

struct EntryExpiry;

impl<K, V, E> moka::Expiry<K, Entry<V, E>> for EntryExpiry {
    fn expire_after_create(&self, _key: &K, entry: &Entry<V, E>, _now: std::time::Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Errors an upstream cache can hold.
pub trait CacheableError: Clone + Send + Sync + 'static {
    /// Whether the failure is worth caching as a miss (permanent) or must be retried
    /// (transient: timeouts, 5xx, an open breaker).
    fn is_transient(&self) -> bool;
    /// The error given to waiters when the fetching task died.
    fn cancelled() -> Self;
}

impl CacheableError for CallError {
    fn is_transient(&self) -> bool {
        CallError::is_transient(self)
    }

    fn cancelled() -> Self {
        CallError::Cancelled
    }
}

/// A cache with negative entries and request coalescing in front of one upstream.
pub struct UpstreamCache<K, V, E> {
    name: &'static str,
    entries: moka::sync::Cache<K, Entry<V, E>>,
    in_flight: InFlightMap<K, V, E>,
    ttl: Duration,
    negative_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl<K, V, E> std::fmt::Debug for UpstreamCache<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCache").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<K, V, E> UpstreamCache<K, V, E>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: CacheableError,
{
    /// An empty cache for the upstream `name`.
    pub fn new(
        name: &'static str,
        capacity: u64,
        ttl: Duration,
        negative_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let entries = moka::sync::Cache::builder().max_capacity(capacity).expire_after(EntryExpiry).build();
        Self { name, entries, in_flight: Arc::new(Mutex::new(HashMap::new())), ttl, negative_ttl, metrics }
    }

    /// The outcome for every key: cached ones at once, keys another request is fetching from
    /// that call, and the rest from one call of `fetch` (which gets them in order, without
    /// duplicates, and answers per key — a value or a failure — leaving out keys it has
    /// nothing for; [`per_key`] adapts a batch call that fails as a whole).
    pub async fn load_many<F, Fut>(&self, keys: &[K], fetch: F) -> HashMap<K, Outcome<V, E>>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, Result<V, E>>> + Send + 'static,
    {
        let mut out = HashMap::with_capacity(keys.len());
        let mut waits: Vec<InFlight<K, V, E>> = Vec::new();
        let mut missing: Vec<K> = Vec::new();
        let (mut hits, mut coalesced) = (0u64, 0u64);
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            for key in keys {
                if out.contains_key(key) || missing.contains(key) {
                    continue;
                }
                if let Some(entry) = self.entries.get(key) {
                    hits += 1;
                    out.insert(key.clone(), entry.outcome);
                } else if let Some(call) = in_flight.get(key) {
                    coalesced += 1;
                    waits.push(call.clone());
                } else {
                    missing.push(key.clone());
                }
            }
            if !missing.is_empty() {
                let call = self.spawn_fetch(missing.clone(), fetch(missing.clone()));
                for key in &missing {
                    in_flight.insert(key.clone(), call.clone());
                }
                waits.push(call);
            }
        }
        self.metrics.observe_upstream_cache(self.name, hits, coalesced, missing.len() as u64);
        for call in dedupe(waits) {
            let results = call.await;
            for key in keys {
                if !out.contains_key(key)
                    && let Some(outcome) = results.get(key)
                {
                    out.insert(key.clone(), outcome.clone());
                }
            }
        }
        // A fetching task that panicked answered nothing: its keys fail like a cancelled call.
        for key in keys {
            if !out.contains_key(key) {
                out.insert(key.clone(), Err(E::cancelled()));
            }
        }
        out
    }

    fn spawn_fetch<Fut>(&self, keys: Vec<K>, call: Fut) -> InFlight<K, V, E>
    where
        Fut: Future<Output = HashMap<K, Result<V, E>>> + Send + 'static,
    {
        let entries = self.entries.clone();
        let (ttl, negative_ttl) = (self.ttl, self.negative_ttl);
        let done = Finished { in_flight: self.in_flight.clone(), keys: keys.clone() };
        let task = tokio::spawn(async move {
            // Dropped last (also on panic): later requests find the cache entries instead.
            let _done = done;
            let mut results = call.await;
            let mut outcomes: HashMap<K, Outcome<V, E>> = HashMap::with_capacity(keys.len());
            for key in keys {
                let outcome = results.remove(&key).transpose();
                let ttl = match &outcome {
                    Ok(Some(_)) => Some(ttl),
                    Ok(None) => Some(negative_ttl),
                    Err(error) if error.is_transient() => None,
                    Err(_) => Some(negative_ttl),
                };
                if let Some(ttl) = ttl {
                    entries.insert(key.clone(), Entry { outcome: outcome.clone(), ttl });
                }
                outcomes.insert(key, outcome);
            }
            Arc::new(outcomes)
        });
        task.map(|joined| joined.unwrap_or_else(|_| Arc::new(HashMap::new()))).boxed().shared()
    }
}

/// Spreads the result of a batch call over its keys: every key fails when the call failed.
pub fn per_key<K, V, E>(keys: &[K], result: Result<HashMap<K, V>, E>) -> HashMap<K, Result<V, E>>
where
    K: Clone + Eq + Hash,
    E: Clone,
{
    match result {
        Ok(values) => values.into_iter().map(|(k, v)| (k, Ok(v))).collect(),
        Err(error) => keys.iter().map(|k| (k.clone(), Err(error.clone()))).collect(),
    }
}

/// Removes a finished call's keys from the in-flight map.
struct Finished<K: Eq + Hash, T> {
    in_flight: Arc<Mutex<HashMap<K, T>>>,
    keys: Vec<K>,
}

impl<K: Eq + Hash, T> Drop for Finished<K, T> {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            in_flight.remove(key);
        }
    }
}

/// One await per distinct call (several keys may share one).
fn dedupe<T: Future>(calls: Vec<Shared<T>>) -> Vec<Shared<T>>
where
    T::Output: Clone,
{
    let mut out: Vec<Shared<T>> = Vec::with_capacity(calls.len());
    for call in calls {
        if !out.iter().any(|seen| seen.ptr_eq(&call)) {
            out.push(call);
        }
    }
    out
}
