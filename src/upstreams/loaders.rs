//! Upstream data on the graph: DataLoaders that send one upstream call per batch (split at
//! the upstream's batch limit) through the upstream's cache, bounded by the operation's
//! deadline, and the mapping of upstream failures to `UPSTREAM_UNAVAILABLE` /
//! `UPSTREAM_TIMEOUT` with `extensions.reason` and `extensions.upstream`. A failed upstream
//! only nulls its own fields: the rest of the screen is answered.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Error, ErrorExtensions, dataloader::Loader};

use crate::kernel::graphql::error::ErrorCode;
use crate::upstreams::{
    CallError, CallScope, EdgeCode, UpstreamFailure, Upstreams,
    cache::{Outcome, per_key},
    link_preview::{LinkPreview, LinkPreviewError},
    recommendations::{RecommendationsError, Suggestions},
};

/// What the upstream loaders of one operation share.
#[derive(Clone)]
pub struct UpstreamContext {
    /// The server's upstreams.
    pub upstreams: Arc<Upstreams>,
    /// The operation's deadline and trace.
    pub scope: CallScope,
}

/// Suggestions by subject user id, from the recommendations service.
pub struct SuggestionsLoader(pub UpstreamContext);

/// Link previews by URL.
pub struct LinkPreviewLoader(pub UpstreamContext);

/// Never produced: upstream loaders report failures per key, inside their values.
#[derive(Clone, Copy, Debug)]
pub enum NoError {}

impl Loader<i64> for SuggestionsLoader {
    type Value = Outcome<Suggestions, RecommendationsError>;
    type Error = NoError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let UpstreamContext { upstreams, scope } = &self.0;
        let service = upstreams.recommendations.clone();
        let call_scope = scope.clone();
        let lookup = upstreams.suggestions_cache.load_many(keys, move |missing| async move {
            let result = service.suggestions(call_scope, missing.clone()).await;
            per_key(&missing, result)
        });
        Ok(within_deadline(scope, keys, lookup, || RecommendationsError::Call(CallError::Timeout)).await)
    }
}

impl Loader<String> for LinkPreviewLoader {
    type Value = Outcome<LinkPreview, LinkPreviewError>;
    type Error = NoError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let UpstreamContext { upstreams, scope } = &self.0;
        let fetcher = upstreams.link_previews.clone();
        let call_scope = scope.clone();
        // Pages have no batch endpoint: one fetch per URL, concurrently (bounded by the
        // fetcher's own concurrency limit), as one cache call.
        let metrics = upstreams.metrics.clone();
        let lookup = upstreams.preview_cache.load_many(keys, move |missing| async move {
            metrics.observe_upstream_batch("link_previews", missing.len());
            let fetches = missing.into_iter().map(|url| {
                let fetcher = fetcher.clone();
                let scope = call_scope.clone();
                async move { (url.clone(), fetcher.preview(scope, url).await) }
            });
            // A page without a preview is left out (cached as a miss).
            futures_util::future::join_all(fetches)
                .await
                .into_iter()
                .filter_map(|(url, result)| result.transpose().map(|r| (url, r)))
                .collect()
        });
        Ok(within_deadline(scope, keys, lookup, || LinkPreviewError::Call(CallError::Timeout)).await)
    }
}

/// Waits for `lookup` until the operation's deadline; keys not answered by then time out.
async fn within_deadline<K, V, E>(
    scope: &CallScope,
    keys: &[K],
    lookup: impl Future<Output = HashMap<K, Outcome<V, E>>>,
    timeout: impl Fn() -> E,
) -> HashMap<K, Outcome<V, E>>
where
    K: Clone + Eq + std::hash::Hash,
{
    match tokio::time::timeout_at(scope.deadline, lookup).await {
        Ok(outcomes) => outcomes,
        Err(_) => keys.iter().map(|key| (key.clone(), Err(timeout()))).collect(),
    }
}

/// The GraphQL error for a failed upstream: code, `reason`, and which upstream.
pub fn upstream_error(upstream: &'static str, err: &impl UpstreamFailure) -> Error {
    let code = match err.edge_code() {
        EdgeCode::Unavailable => ErrorCode::UpstreamUnavailable,
        EdgeCode::Timeout => ErrorCode::UpstreamTimeout,
    };
    let reason = err.reason();
    let message = match err.edge_code() {
        EdgeCode::Timeout => format!("{upstream} did not answer in time"),
        EdgeCode::Unavailable => format!("{upstream} is unavailable ({reason})"),
    };
    Error::new(message).extend_with(move |_, ext| {
        ext.set("code", code.as_str());
        ext.set("reason", reason);
        ext.set("upstream", upstream);
    })
}
