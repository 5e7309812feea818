//! The load generator: a fixed number of keep-alive connections, each sending the same request
//! back to back (closed loop, like `wrk`), on this process's single-threaded runtime.
//!
//! Every response is checked: a status other than 200, a GraphQL `errors` member or a failed
//! connection is counted, and a run with any of them is reported as failed, never as fast.
//! Latency is measured from sending to the last body byte and kept for every request in the
//! measured window (after the warm-up); the server's CPU time and peak RSS come from `/proc`.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    http::{self, Connection, RequestSpec},
    machine,
};

/// How long and how hard to load a server.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    /// Concurrent connections.
    pub concurrency: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
}

/// Upper bound of requests on one connection (the deadline ends a run long before).
const MAX_REQUESTS_PER_CONNECTION: u64 = 50_000_000;
/// Upper bound of connections a worker opens after the server closed one.
const MAX_RECONNECTS: u32 = 100;

/// The outcome of one load run.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Successful requests completed inside the measured window.
    pub requests: u64,
    /// Length of the measured window.
    pub window: Duration,
    /// Latencies of those requests in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Responses with a status other than 200 (whole run, warm-up included).
    pub non_200: u64,
    /// 200 responses carrying GraphQL `errors` (whole run).
    pub graphql_errors: u64,
    /// Connections that failed or requests that timed out (whole run).
    pub transport_errors: u64,
    /// Server CPU seconds (user + system) during the window.
    pub server_cpu_seconds: f64,
    /// Server peak RSS in KiB during the run (warm-up included), if readable.
    pub server_peak_rss_kib: Option<u64>,
    /// Whether the peak could be reset before the run (otherwise it is the process lifetime's).
    pub peak_rss_reset: bool,
    /// CPU seconds of the load generator itself during the window.
    pub generator_cpu_seconds: f64,
    /// The first failed response or connection (status and start of the body), for diagnosis.
    pub first_failure: Option<String>,
}

impl LoadResult {
    /// Every error of the run.
    pub fn errors(&self) -> u64 {
        self.non_200 + self.graphql_errors + self.transport_errors
    }

    /// True when the numbers must not be used.
    pub fn failed(&self) -> bool {
        self.errors() > 0 || self.requests == 0
    }

    /// Requests per second over the window.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q` (0 < q <= 1), nearest rank.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies_ns.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.latencies_ns.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_ns.len()) - 1;
        Duration::from_nanos(self.latencies_ns[index])
    }

    /// Server CPU seconds per 1000 requests.
    pub fn cpu_per_1k(&self) -> f64 {
        self.server_cpu_seconds * 1000.0 / (self.requests.max(1) as f64)
    }

    /// Share of one core the load generator used; near 1.0 means the client was the bottleneck.
    pub fn generator_utilisation(&self) -> f64 {
        self.generator_cpu_seconds / self.window.as_secs_f64().max(1e-9)
    }
}

#[derive(Default)]
struct WorkerStats {
    /// (completion time since the run's start, latency), both in nanoseconds.
    samples: Vec<(u64, u64)>,
    non_200: u64,
    graphql_errors: u64,
    transport_errors: u64,
    first_failure: Option<String>,
}

impl WorkerStats {
    fn remember(&mut self, failure: impl FnOnce() -> String) {
        if self.first_failure.is_none() {
            self.first_failure = Some(failure());
        }
    }
}

/// Loads the server at `addr` (process `pid`) with `spec` and measures it.
pub async fn run(addr: SocketAddr, pid: u32, spec: &RequestSpec, config: LoadConfig) -> anyhow::Result<LoadResult> {
    let spec = Arc::new(spec.clone());
    let peak_rss_reset = machine::reset_peak_rss(pid);
    let start = Instant::now();
    let window_start = start + config.warmup;
    let stop_at = window_start + config.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency {
        workers.spawn(worker(addr, Arc::clone(&spec), start, stop_at));
    }

    let ticks = machine::clock_ticks_per_second();
    let me = std::process::id();
    tokio::time::sleep_until(window_start.into()).await;
    let (server_before, own_before, measured_from) =
        (machine::cpu_ticks(pid)?, machine::cpu_ticks(me)?, Instant::now());
    tokio::time::sleep_until(stop_at.into()).await;
    let (server_after, own_after, measured_to) = (machine::cpu_ticks(pid)?, machine::cpu_ticks(me)?, Instant::now());
    let server_peak_rss_kib = machine::peak_rss_kib(pid);

    let mut result = LoadResult {
        window: measured_to - measured_from,
        server_cpu_seconds: server_after.saturating_sub(server_before) as f64 / ticks,
        generator_cpu_seconds: own_after.saturating_sub(own_before) as f64 / ticks,
        server_peak_rss_kib,
        peak_rss_reset,
        ..LoadResult::default()
    };
    let from = nanos_since(start, measured_from);
    let to = nanos_since(start, measured_to);
    while let Some(joined) = workers.join_next().await {
        let stats = joined?;
        result.non_200 += stats.non_200;
        result.graphql_errors += stats.graphql_errors;
        result.transport_errors += stats.transport_errors;
        result.first_failure = result.first_failure.or(stats.first_failure);
        result.latencies_ns.extend(stats.samples.iter().filter(|(done, _)| (from..to).contains(done)).map(|s| s.1));
    }
    result.latencies_ns.sort_unstable();
    result.requests = result.latencies_ns.len() as u64;
    Ok(result)
}

fn nanos_since(start: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}

/// One connection sending `spec` back to back until `stop_at`; reconnects (bounded) when the
/// server closes it.
async fn worker(addr: SocketAddr, spec: Arc<RequestSpec>, start: Instant, stop_at: Instant) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let Ok(host) = http::host_header(addr) else {
        stats.transport_errors += 1;
        return stats;
    };
    let mut reconnects = 0;
    'connections: while Instant::now() < stop_at && reconnects <= MAX_RECONNECTS {
        reconnects += 1;
        let mut connection = match Connection::open(addr).await {
            Ok(connection) => connection,
            Err(err) => {
                stats.transport_errors += 1;
                stats.remember(|| format!("connect: {err:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        for _ in 0..MAX_REQUESTS_PER_CONNECTION {
            if Instant::now() >= stop_at {
                break 'connections;
            }
            if !connection.ready().await {
                // Closed between requests (keep-alive ended): open another, no request lost.
                continue 'connections;
            }
            let request = match spec.to_request(&host) {
                Ok(request) => request,
                Err(err) => {
                    stats.transport_errors += 1;
                    stats.remember(|| format!("request: {err:#}"));
                    break 'connections;
                }
            };
            let sent = Instant::now();
            let outcome = connection.send(request).await;
            let done = Instant::now();
            match outcome {
                Ok((status, body)) => {
                    if status != hyper::StatusCode::OK {
                        stats.non_200 += 1;
                        stats.remember(|| format!("{status}: {}", http::preview(&body)));
                    } else if has_graphql_errors(&body) {
                        stats.graphql_errors += 1;
                        stats.remember(|| format!("GraphQL errors: {}", http::preview(&body)));
                    } else {
                        stats.samples.push((nanos_since(start, done), nanos_since(sent, done)));
                    }
                }
                Err(err) => {
                    stats.transport_errors += 1;
                    stats.remember(|| format!("exchange: {err:#}"));
                    continue 'connections;
                }
            }
        }
    }
    stats
}

/// True when a JSON response has an `errors` member. Inside JSON strings a quote is always
/// escaped, so `"errors"` followed by a colon can only be a key; none of the benchmarked
/// selections has a field of that name.
pub fn has_graphql_errors(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(at) = memchr::memmem::find(rest, b"\"errors\"") {
        let after = &rest[at + 8..];
        if after.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':') {
            return true;
        }
        rest = after;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_errors_member_but_not_the_word_in_data() {
        assert!(has_graphql_errors(br#"{"errors":[{"message":"x"}]}"#));
        assert!(has_graphql_errors(br#"{"data":null, "errors" : []}"#));
        assert!(!has_graphql_errors(br#"{"data":{"body":"no \"errors\" here"}}"#));
        assert!(!has_graphql_errors(br#"{"data":{"__typename":"Query"}}"#));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let result = LoadResult { latencies_ns: (1..=100).collect(), ..LoadResult::default() };
        assert_eq!(result.percentile(0.5), Duration::from_nanos(50));
        assert_eq!(result.percentile(0.99), Duration::from_nanos(99));
        assert_eq!(result.percentile(1.0), Duration::from_nanos(100));
    }
}
