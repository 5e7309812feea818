//! One upstream's HTTP client: a reqwest client with the upstream's timeouts, a concurrency
//! limit, retries with jittered exponential backoff (idempotent calls only), a circuit
//! breaker, the screen's deadline, request-id and `traceparent` propagation, and metrics.

use std::{sync::Arc, time::Duration};

use rand::Rng as _;
use reqwest::{Client, RequestBuilder, Response};
use tokio::{sync::Semaphore, time::Instant};

use crate::kernel::infra::metrics::Metrics;
use crate::upstreams::{
    CallError, CallScope, ClientPolicy,
    breaker::{Breaker, BreakerState},
};

/// The HTTP client of one upstream.
#[derive(Debug)]
pub struct UpstreamClient {
    name: &'static str,
    http: Client,
    policy: ClientPolicy,
    limiter: Semaphore,
    breaker: Option<Breaker>,
    metrics: Arc<Metrics>,
}

/// Whether a call may be repeated without a second effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads (GET, or a POST the contract declares read-only): retried on transient failures.
    Idempotent,
    /// Everything else: one attempt.
    NonIdempotent,
}

impl UpstreamClient {
    /// A client for upstream `name` with `policy`; `builder` may add upstream-specific
    /// options (a DNS resolver, a redirect policy) to the reqwest client.
    pub fn new(
        name: &'static str,
        policy: ClientPolicy,
        metrics: Arc<Metrics>,
        builder: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, reqwest::Error> {
        let http = builder(
            Client::builder()
                .connect_timeout(policy.connect_timeout)
                .timeout(policy.request_timeout)
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true),
        )
        .build()?;
        let breaker = (policy.breaker_failures > 0)
            .then(|| Breaker::new(policy.breaker_failures, policy.breaker_window, policy.breaker_open));
        metrics.set_breaker_state(name, BreakerState::Closed.as_gauge());
        Ok(Self { name, http, limiter: Semaphore::new(policy.max_concurrent.max(1)), policy, breaker, metrics })
    }

    /// The upstream's name (metrics label).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The metrics registry calls are recorded in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The policy this client runs with.
    pub fn policy(&self) -> &ClientPolicy {
        &self.policy
    }

    /// The breaker's state (closed when the upstream has none).
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.as_ref().map_or(BreakerState::Closed, Breaker::state)
    }

    /// Sends the request `build` makes, with the scope's ids, and returns a response with a
    /// success status. Transient failures of idempotent calls are retried while the scope's
    /// deadline allows; an open breaker fails at once.
    pub async fn send(
        &self,
        scope: &CallScope,
        idempotency: Idempotency,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let mut attempt = 0u32;
        loop {
            let result = self.attempt(scope, &build).await;
            let error = match result {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            let retryable =
                idempotency == Idempotency::Idempotent && attempt < self.policy.retries && error.is_upstream_failure();
            if !retryable {
                return Err(error);
            }
            let backoff = self.backoff(attempt);
            if Instant::now() + backoff >= scope.deadline {
                return Err(error);
            }
            self.metrics.observe_upstream_call(self.name, "retried", None);
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// Full jitter: a random wait between 0 and `base · 2^attempt`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.policy.backoff_base.saturating_mul(1 << attempt.min(16)).min(self.policy.backoff_max);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    async fn attempt(
        &self,
        scope: &CallScope,
        build: &impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let permit = match &self.breaker {
            Some(breaker) => match breaker.try_acquire() {
                Some(permit) => Some(permit),
                None => {
                    self.metrics.observe_upstream_call(self.name, CallError::CircuitOpen.reason(), None);
                    self.publish_breaker();
                    return Err(CallError::CircuitOpen);
                }
            },
            None => None,
        };
        let started = Instant::now();
        let result = self.call(scope, build).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.reason(),
        };
        self.metrics.observe_upstream_call(self.name, outcome, Some(started.elapsed().as_secs_f64()));
        if let (Some(breaker), Some(permit)) = (&self.breaker, permit) {
            let failed = result.as_ref().err().is_some_and(CallError::is_upstream_failure);
            breaker.record(permit, !failed);
            self.publish_breaker();
        }
        result
    }

    async fn call(&self, scope: &CallScope, build: &impl Fn(&Client) -> RequestBuilder) -> Result<Response, CallError> {
        // Waiting for a slot counts against the attempt's own timeout.
        let slot = tokio::time::timeout(self.policy.request_timeout, self.limiter.acquire())
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(|_| CallError::Cancelled)?;
        let mut request = build(&self.http).header("traceparent", scope.trace.child_header());
        if let Some(id) = &scope.request_id {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.map_err(classify)?;
        drop(slot);
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            Ok(response)
        } else {
            Err(CallError::Status(status.as_u16()))
        }
    }

    fn publish_breaker(&self) {
        self.metrics.set_breaker_state(self.name, self.breaker_state().as_gauge());
    }
}

/// A reqwest failure as a [`CallError`] (the cause text never reaches a client).
pub fn classify(error: reqwest::Error) -> CallError {
    if super::link_preview::ssrf::refused_in(&error) {
        CallError::Refused
    } else if error.is_timeout() {
        CallError::Timeout
    } else if error.is_decode() || error.is_body() {
        CallError::InvalidResponse(error.to_string())
    } else {
        CallError::Connect(error.to_string())
    }
}

/// Reads a response body up to `max` bytes (more: [`CallError::TooLarge`]), within the
/// client's request timeout.
pub async fn read_limited(mut response: Response, max: usize) -> Result<Vec<u8>, CallError> {
    if response.content_length().is_some_and(|len| len > max as u64) {
        return Err(CallError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(CallError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
