//! Parsed documents, cached by query text. Apps send the same few screen queries over and
//! over; parsing one (pest) costs about as much as resolving a small screen, so each distinct
//! text is parsed and checked against the field limit once, and its syntax tree reused by
//! every transport (HTTP, WebSocket, SSE). Bounded by total query bytes; refused documents
//! are not cached (their error is cheap to produce again).

use std::sync::Arc;

use async_graphql::{
    ServerError,
    parser::{parse_query, types::ExecutableDocument},
};

use crate::kernel::graphql::{
    error::ErrorCode,
    error_codes::{check_field_count, with_code},
};

/// Bytes of query text whose parsed documents are kept.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

/// A bounded cache of parsed documents.
#[derive(Clone)]
pub struct ParsedDocuments {
    cache: moka::sync::Cache<Arc<str>, Arc<ExecutableDocument>>,
}

impl std::fmt::Debug for ParsedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedDocuments").field("entries", &self.cache.entry_count()).finish()
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self::new(CAPACITY_BYTES)
    }
}

impl ParsedDocuments {
    /// A cache holding the documents of up to `capacity_bytes` of query text.
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|text: &Arc<str>, _: &Arc<ExecutableDocument>| {
                u32::try_from(text.len().saturating_mul(4)).unwrap_or(u32::MAX)
            })
            .build();
        Self { cache }
    }

    /// The parsed document of `query` (parsed and checked now if it is not cached), or the
    /// error that refuses it: `GRAPHQL_PARSE_FAILED`, or `QUERY_TOO_COMPLEX` above
    /// `max_fields` selections (the limit is the server's own, so a cached document passed it).
    pub fn admit(&self, query: &str, max_fields: usize) -> Result<Arc<ExecutableDocument>, ServerError> {
        if let Some(document) = self.cache.get(query) {
            return Ok(document);
        }
        let document =
            parse_query(query).map_err(|err| with_code(ServerError::from(err), ErrorCode::GraphqlParseFailed))?;
        check_field_count(&document, max_fields)?;
        let document = Arc::new(document);
        self.cache.insert(Arc::from(query), document.clone());
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: &ServerError) -> Option<&str> {
        match err.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.as_str()),
            _ => None,
        }
    }

    #[test]
    fn parses_once_and_does_not_cache_failures() {
        let documents = ParsedDocuments::new(1024 * 1024);
        let a = documents.admit("{ viewer { id } }", 10).expect("parses");
        let b = documents.admit("{ viewer { id } }", 10).expect("parses");
        assert!(Arc::ptr_eq(&a, &b), "the second lookup is the cached tree");
        for _ in 0..2 {
            let err = documents.admit("{ viewer { ", 10).expect_err("does not parse");
            assert_eq!(code(&err), Some("GRAPHQL_PARSE_FAILED"), "failures stay failures");
            let err = documents.admit("{ viewer { id handle bio } }", 3).expect_err("too many fields");
            assert_eq!(code(&err), Some("QUERY_TOO_COMPLEX"));
        }
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);
    }
}
