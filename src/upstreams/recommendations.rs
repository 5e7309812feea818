//! The recommendations service: who and what to suggest to a user, with scores. Its REST
//! contract (docs/upstreams.md) is one read-only batch endpoint:
//!
//! `POST {base_url}/v1/suggestions:batch` with `{"subjects": ["12", "34"], "limit": 20}` →
//! `{"results": [{"subject": "12", "users": [{"id": "56", "score": 0.93, "reason": "…"}],
//! "posts": [{"id": "789", "score": 0.71}]}]}`. Ids are the BFF's row ids as decimal strings;
//! subjects without suggestions may be left out; unknown fields are ignored.

use std::{collections::HashMap, sync::Arc};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::upstreams::{
    CallError, CallScope, EdgeCode, UpstreamFailure,
    cache::CacheableError,
    client::{Idempotency, UpstreamClient, read_limited},
};

/// Suggestions requested per subject (the most any field shows).
pub const SUGGESTIONS_PER_SUBJECT: usize = 20;
/// Largest response body accepted from the service.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Longest `reason` kept.
const MAX_REASON: usize = 64;

/// One suggested user or post.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Row id of the user or post.
    pub id: i64,
    /// Relevance, higher is better.
    pub score: f64,
    /// Why it is suggested (machine-readable, e.g. `FOLLOWED_BY_PEOPLE_YOU_FOLLOW`).
    pub reason: Option<String>,
}

/// The suggestions for one subject user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestions {
    /// Users to follow, best first.
    pub users: Vec<Scored>,
    /// Posts to read, best first.
    pub posts: Vec<Scored>,
}

/// Why suggestions could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecommendationsError {
    /// No `upstreams.recommendations.base_url` is set.
    #[error("the recommendations service is not configured")]
    NotConfigured,
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl UpstreamFailure for RecommendationsError {
    fn edge_code(&self) -> EdgeCode {
        match self {
            Self::Call(CallError::Timeout) => EdgeCode::Timeout,
            _ => EdgeCode::Unavailable,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::NotConfigured => "NOT_CONFIGURED",
            Self::Call(err) => err.reason(),
        }
    }
}

impl CacheableError for RecommendationsError {
    fn is_transient(&self) -> bool {
        match self {
            Self::NotConfigured => false,
            Self::Call(err) => err.is_transient() || matches!(err, CallError::InvalidResponse(_)),
        }
    }

    fn cancelled() -> Self {
        Self::Call(CallError::Cancelled)
    }
}

/// The recommendations service.
pub trait Recommendations: Send + Sync {
    /// Suggestions for each subject user (at most `max_batch_size` subjects per call);
    /// subjects the service has nothing for are absent.
    fn suggestions(
        self: Arc<Self>,
        scope: CallScope,
        subjects: Vec<i64>,
    ) -> BoxFuture<'static, Result<HashMap<i64, Suggestions>, RecommendationsError>>;

    /// Most subjects in one call.
    fn max_batch_size(&self) -> usize;
}

#[derive(Serialize)]
struct BatchRequest<'a> {
    subjects: &'a [String],
    limit: usize,
}

#[derive(Deserialize)]
struct BatchResponse {
    results: Vec<SubjectResult>,
}

#[derive(Deserialize)]
struct SubjectResult {
    subject: String,
    #[serde(default)]
    users: Vec<WireScored>,
    #[serde(default)]
    posts: Vec<WireScored>,
}

#[derive(Deserialize)]
struct WireScored {
    id: String,
    score: f64,
    #[serde(default)]
    reason: Option<String>,
}

/// The service over HTTP.
#[derive(Debug)]
pub struct HttpRecommendations {
    client: UpstreamClient,
    endpoint: Url,
    max_batch_size: usize,
}

impl HttpRecommendations {
    /// A client of the service at `settings.base_url`.
    pub fn new(
        base_url: &str,
        settings: &super::ServiceSettings,
        metrics: Arc<crate::kernel::infra::metrics::Metrics>,
    ) -> Result<Self, super::BuildError> {
        let base = Url::parse(base_url).map_err(|err| super::BuildError::Url(err.to_string()))?;
        let endpoint = base.join("v1/suggestions:batch").map_err(|err| super::BuildError::Url(err.to_string()))?;
        let client = UpstreamClient::new("recommendations", settings.policy(), metrics, |b| b)?;
        Ok(Self { client, endpoint, max_batch_size: settings.max_batch_size })
    }

    async fn call(
        &self,
        scope: &CallScope,
        subjects: &[i64],
    ) -> Result<HashMap<i64, Suggestions>, RecommendationsError> {
        let wire: Vec<String> = subjects.iter().map(i64::to_string).collect();
        let body = serde_json::to_vec(&BatchRequest { subjects: &wire, limit: SUGGESTIONS_PER_SUBJECT })
            .map_err(|err| CallError::InvalidResponse(err.to_string()))?;
        // The batch endpoint only reads: retrying it is safe.
        let response = self
            .client
            .send(scope, Idempotency::Idempotent, |http| {
                http.post(self.endpoint.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await?;
        let bytes = read_limited(response, MAX_RESPONSE_BYTES).await?;
        let parsed: BatchResponse =
            serde_json::from_slice(&bytes).map_err(|err| CallError::InvalidResponse(format!("body: {err}")))?;
        let asked: std::collections::HashSet<i64> = subjects.iter().copied().collect();
        let mut out = HashMap::with_capacity(parsed.results.len());
        for result in parsed.results {
            let subject = parse_id(&result.subject)?;
            if !asked.contains(&subject) {
                continue;
            }
            out.insert(subject, Suggestions { users: scored(result.users)?, posts: scored(result.posts)? });
        }
        Ok(out)
    }
}

fn parse_id(raw: &str) -> Result<i64, CallError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| CallError::InvalidResponse(format!("not an id: {:.20}", raw)))
}

/// Validates and bounds one list: ids must parse, scores be finite; at most
/// [`SUGGESTIONS_PER_SUBJECT`] kept, best first.
fn scored(items: Vec<WireScored>) -> Result<Vec<Scored>, CallError> {
    let mut out = Vec::with_capacity(items.len().min(SUGGESTIONS_PER_SUBJECT));
    for item in items {
        if !item.score.is_finite() {
            return Err(CallError::InvalidResponse("score is not a finite number".into()));
        }
        let reason =
            item.reason.filter(|r| !r.is_empty() && r.len() <= MAX_REASON && r.bytes().all(|b| b.is_ascii_graphic()));
        out.push(Scored { id: parse_id(&item.id)?, score: item.score, reason });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.dedup_by_key(|s| s.id);
    out.truncate(SUGGESTIONS_PER_SUBJECT);
    Ok(out)
}

impl Recommendations for HttpRecommendations {
    fn suggestions(
        self: Arc<Self>,
        scope: CallScope,
        subjects: Vec<i64>,
    ) -> BoxFuture<'static, Result<HashMap<i64, Suggestions>, RecommendationsError>> {
        Box::pin(async move {
            self.client.metrics().observe_upstream_batch(self.client.name(), subjects.len());
            self.call(&scope, &subjects).await
        })
    }

    fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }
}

/// No service configured: every call says so.
#[derive(Debug)]
pub struct NotConfigured;

impl Recommendations for NotConfigured {
    fn suggestions(
        self: Arc<Self>,
        _scope: CallScope,
        _subjects: Vec<i64>,
    ) -> BoxFuture<'static, Result<HashMap<i64, Suggestions>, RecommendationsError>> {
        Box::pin(async { Err(RecommendationsError::NotConfigured) })
    }

    fn max_batch_size(&self) -> usize {
        100
    }
}
