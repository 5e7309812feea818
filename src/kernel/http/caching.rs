//! HTTP caching of GraphQL GET responses: `Cache-Control` from the schema's cache hints,
//! `Vary`, a strong `ETag`, and `304 Not Modified` on a matching `If-None-Match`.
//!
//! Hints come from `cache_control` on types and fields (async-graphql merges them: the
//! smallest `max-age` wins, any `private` field makes the response private, `no_cache` (-1)
//! forbids storing). Rules:
//! - only successful GET queries are cacheable; POST, mutations and responses with errors are
//!   `no-store`;
//! - a response with a `no_cache` field is `no-store`;
//! - otherwise `public` or `private` with `max-age=N`, or `no-cache` (store, but revalidate
//!   every time) when no field gave a max-age; with the ETag that revalidation is a 304 with
//!   no body when nothing changed;
//! - `Vary: Authorization` always (the same URL answers differently per user), and the
//!   compression layer adds `Accept-Encoding`.
//!
//! The ETag is computed over the uncompressed body, so it is the same whatever encoding the
//! client negotiated.

use async_graphql::CacheControl;
use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

use crate::kernel::idempotency::hex;

/// Marks a 304 response (for metrics).
#[derive(Clone, Copy, Debug)]
pub struct NotModified;

/// The cache headers of one response.
#[derive(Clone, Debug)]
pub struct Policy {
    cache_control: String,
    etag: Option<String>,
    vary_authorization: bool,
    /// The client's copy is current: answer 304 with no body.
    pub not_modified: bool,
}

impl Policy {
    /// Not cacheable.
    pub fn no_store() -> Self {
        Self { cache_control: "no-store".to_owned(), etag: None, vary_authorization: false, not_modified: false }
    }

    /// Writes `Cache-Control`, `ETag` and `Vary`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if let Ok(value) = HeaderValue::from_str(&self.cache_control) {
            headers.insert(header::CACHE_CONTROL, value);
        }
        if let Some(etag) = self.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(header::ETAG, etag);
        }
        if self.vary_authorization {
            headers.append(header::VARY, HeaderValue::from_static("Authorization"));
        }
        // A 304 has no body, so the compression layer adds nothing: repeat the `Vary` the 200
        // carried (RFC 9110 §15.4.5), or caches keyed on it would diverge.
        if self.not_modified {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
}

/// The `Cache-Control` value for hints `hints` (None: must not be stored).
pub fn cache_control(hints: &CacheControl) -> Option<String> {
    if hints.max_age < 0 {
        return None;
    }
    let scope = if hints.public { "public" } else { "private" };
    Some(if hints.max_age > 0 { format!("{scope}, max-age={}", hints.max_age) } else { format!("{scope}, no-cache") })
}

/// A strong ETag over `body`.
pub fn etag(body: &[u8]) -> String {
    format!("\"{}\"", &hex(&Sha256::digest(body))[..32])
}

/// Whether `If-None-Match` in `headers` matches `etag` (weak comparison, `*` matches).
pub fn matches_if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
    })
}

/// The policy of a successful GET query response with `body`.
pub fn policy(hints: &CacheControl, body: &[u8], request: &HeaderMap) -> Policy {
    // Viewer fields are hinted `private` even when the request is anonymous: their null/false
    // answer must not be shared with signed-in users either.
    let Some(cache_control) = cache_control(hints) else {
        return Policy::no_store();
    };
    let etag = etag(body);
    let not_modified = matches_if_none_match(request, &etag);
    Policy { cache_control, etag: Some(etag), vary_authorization: true, not_modified }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_values() {
        let hint = |public, max_age| CacheControl { public, max_age };
        assert_eq!(cache_control(&hint(true, 60)).as_deref(), Some("public, max-age=60"));
        assert_eq!(cache_control(&hint(false, 60)).as_deref(), Some("private, max-age=60"));
        assert_eq!(cache_control(&hint(true, 0)).as_deref(), Some("public, no-cache"));
        assert_eq!(cache_control(&hint(true, -1)), None);
    }

    #[test]
    fn if_none_match() {
        let tag = etag(b"{}");
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{tag}")).expect("header"));
        assert!(matches_if_none_match(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!matches_if_none_match(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_if_none_match(&headers, &tag));
    }
}
