//! Parsed documents, cached by query text. Apps send the same few screen queries over and
//! over; parsing one (pest) costs about as much as resolving a small screen, so each distinct
//! text is parsed once and its syntax tree reused. Bounded by total query bytes; documents
//! that fail to parse are not cached (their error is cheap to produce again).

use std::sync::Arc;

use async_graphql::parser::{Error as ParseError, parse_query, types::ExecutableDocument};

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

    /// The parsed document of `query`, parsed now if it is not cached.
    pub fn get_or_parse(&self, query: &str) -> Result<Arc<ExecutableDocument>, ParseError> {
        if let Some(document) = self.cache.get(query) {
            return Ok(document);
        }
        let document = Arc::new(parse_query(query)?);
        self.cache.insert(Arc::from(query), document.clone());
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_does_not_cache_failures() {
        let documents = ParsedDocuments::new(1024 * 1024);
        let a = documents.get_or_parse("{ viewer { id } }").expect("parses");
        let b = documents.get_or_parse("{ viewer { id } }").expect("parses");
        assert!(Arc::ptr_eq(&a, &b), "the second lookup is the cached tree");
        assert!(documents.get_or_parse("{ viewer { ").is_err());
        assert!(documents.get_or_parse("{ viewer { ").is_err(), "failures stay failures");
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);
    }
}
