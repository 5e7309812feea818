//! Persisted documents: automatic persisted queries (APQ) and trusted manifests.
//!
//! A client sends a document id instead of the query text; the server looks the text up in a
//! moka cache in front of the `persisted_documents` table (so documents survive restarts and
//! are shared by every replica on the same database). APQ lets any client register a document
//! by sending its SHA-256 with the text once; trusted manifests — produced by client codegen
//! (graphql-codegen's `persisted-documents.json`, Apollo's `persisted-query-manifest.json`,
//! Relay's `persisted_queries.json`) — are imported ahead of time. With `redis_url` set,
//! Redis is a shared tier between the in-process cache and the database. In `trusted` mode only
//! manifest documents run, so a production deployment executes nothing but its apps' own
//! operations.

pub mod document_usage;
pub mod persisted_document;
pub mod store;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::kernel::documents::store as documents;
use crate::{
    kernel::settings::{PersistedMode, PersistedSettings},
    kernel::{
        db::{self, Db},
        idempotency::hex,
        infra::redis::Redis,
    },
};

/// Why a document could not be used or imported.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The id is unknown: the client should send the text along with it (APQ).
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// The server only runs documents from imported manifests.
    #[error("this server only runs persisted operations from the app's manifest")]
    Required,
    /// The SHA-256 sent does not match the query text.
    #[error("provided sha256Hash does not match the query")]
    HashMismatch,
    /// The id, manifest or document is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// A stored document.
#[derive(Clone, Debug)]
pub struct StoredDocument {
    /// The GraphQL text.
    pub query: Arc<str>,
    /// True when it came from an imported manifest.
    pub trusted: bool,
}

/// One operation of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The id clients send.
    pub id: String,
    /// The GraphQL text.
    pub body: String,
    /// The operation name, when the manifest says.
    pub name: Option<String>,
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Operations stored or confirmed.
    pub imported: usize,
}

fn redis_key(id: &str) -> String {
    format!("bff:doc:{id}")
}

/// Lower-case hex SHA-256 of `text` (the APQ document id).
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'))
}

/// Parses any of the three manifest formats.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestEntry>, DocumentError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DocumentError::Invalid(format!("manifest is not JSON: {e}")))?;
    let entries = if value.get("format").and_then(|f| f.as_str()) == Some("apollo-persisted-query-manifest") {
        let operations = value
            .get("operations")
            .and_then(|o| o.as_array())
            .ok_or_else(|| DocumentError::Invalid("Apollo manifest without operations".into()))?;
        operations
            .iter()
            .map(|op| {
                let field = |name: &str| op.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                match (field("id"), field("body")) {
                    (Some(id), Some(body)) => Ok(ManifestEntry { id, body, name: field("name") }),
                    _ => Err(DocumentError::Invalid("Apollo manifest operation without id or body".into())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?
    } else if let Some(map) = value.as_object() {
        // graphql-codegen's persisted-documents.json and Relay's persisted_queries.json: id → text.
        map.iter()
            .map(|(id, body)| match body.as_str() {
                Some(body) => Ok(ManifestEntry { id: id.clone(), body: body.to_owned(), name: None }),
                None => Err(DocumentError::Invalid(format!("manifest entry {id:?} is not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        return Err(DocumentError::Invalid("unknown manifest format".into()));
    };
    for entry in &entries {
        if !valid_id(&entry.id) {
            return Err(DocumentError::Invalid(format!("invalid document id {:?}", entry.id)));
        }
        async_graphql::parser::parse_query(&entry.body)
            .map_err(|e| DocumentError::Invalid(format!("document {} does not parse: {e}", entry.id)))?;
    }
    Ok(entries)
}

/// How long a document stays in Redis after it was last written there.
const REDIS_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The persisted-document store of one server: moka → Redis (when configured) → database.
pub struct DocumentStore {
    db: Db,
    redis: Option<Redis>,
    settings: PersistedSettings,
    cache: moka::sync::Cache<String, StoredDocument>,
    usage_recorded: moka::sync::Cache<(String, String), ()>,
}

impl std::fmt::Debug for DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentStore").field("mode", &self.settings.mode).finish_non_exhaustive()
    }
}

impl DocumentStore {
    /// A store over `db`, with `redis` as a shared tier when configured.
    pub fn new(db: Db, redis: Option<Redis>, settings: PersistedSettings) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(settings.cache_capacity)
            .weigher(|id: &String, doc: &StoredDocument| (id.len() + doc.query.len()).try_into().unwrap_or(u32::MAX))
            .build();
        let usage_recorded = moka::sync::Cache::builder().max_capacity(100_000).build();
        Self { db, redis, settings, cache, usage_recorded }
    }

    /// The configured mode.
    pub fn mode(&self) -> PersistedMode {
        self.settings.mode
    }

    /// Whether introspection is allowed: as configured, else in open mode only.
    pub fn introspection_allowed(&self) -> bool {
        self.settings.allow_introspection.unwrap_or(self.settings.mode != PersistedMode::Trusted)
    }

    /// The document with `id`, from the cache or the database.
    pub async fn lookup(&self, id: &str) -> Result<Option<StoredDocument>, DocumentError> {
        if !valid_id(id) {
            return Err(DocumentError::Invalid("invalid document id".into()));
        }
        if let Some(doc) = self.cache.get(id) {
            return Ok(Some(doc));
        }
        if let Some(doc) = self.redis_get(id).await {
            self.cache.insert(id.to_owned(), doc.clone());
            return Ok(Some(doc));
        }
        let Some(row) = documents::find(self.db.conn(), id).await? else {
            return Ok(None);
        };
        let doc = StoredDocument { query: row.query.into(), trusted: row.source == "manifest" };
        self.remember(id, &doc).await;
        Ok(Some(doc))
    }

    /// Caches `doc` in memory and in Redis.
    async fn remember(&self, id: &str, doc: &StoredDocument) {
        self.cache.insert(id.to_owned(), doc.clone());
        if let Some(redis) = &self.redis {
            let value = serde_json::json!({ "query": &*doc.query, "trusted": doc.trusted }).to_string();
            if let Err(err) = redis.set_ex(&redis_key(id), &value, REDIS_TTL).await {
                tracing::warn!(error = %err, "redis: could not cache a persisted document");
            }
        }
    }

    async fn redis_get(&self, id: &str) -> Option<StoredDocument> {
        let redis = self.redis.as_ref()?;
        let value = match redis.get(&redis_key(id)).await {
            Ok(value) => value?,
            Err(err) => {
                tracing::warn!(error = %err, "redis: lookup failed, using the database");
                return None;
            }
        };
        let parsed: serde_json::Value = serde_json::from_str(&value).ok()?;
        Some(StoredDocument {
            query: parsed.get("query")?.as_str()?.into(),
            trusted: parsed.get("trusted")?.as_bool()?,
        })
    }

    /// Registers an APQ document after checking that `hash` is the SHA-256 of `query`.
    pub async fn register(&self, hash: &str, query: &str) -> Result<StoredDocument, DocumentError> {
        if sha256_hex(query) != hash.to_ascii_lowercase() {
            return Err(DocumentError::HashMismatch);
        }
        if let Some(existing) = self.lookup(hash).await? {
            return Ok(existing);
        }
        if self.settings.mode == PersistedMode::Trusted {
            return Err(DocumentError::Required);
        }
        let row = persisted_document::Model {
            id: hash.to_ascii_lowercase(),
            query: query.to_owned(),
            operation_name: None,
            source: "apq".to_owned(),
            created_at: db::now(),
        };
        documents::upsert(self.db.conn(), row).await?;
        let doc = StoredDocument { query: query.into(), trusted: false };
        self.remember(&hash.to_ascii_lowercase(), &doc).await;
        Ok(doc)
    }

    /// Imports a manifest; with `app_version`, records that version as a user of every operation.
    pub async fn import(&self, bytes: &[u8], app_version: Option<&str>) -> Result<ImportReport, DocumentError> {
        let entries = parse_manifest(bytes)?;
        for entry in &entries {
            let row = persisted_document::Model {
                id: entry.id.clone(),
                query: entry.body.clone(),
                operation_name: entry.name.clone(),
                source: "manifest".to_owned(),
                created_at: db::now(),
            };
            documents::upsert(self.db.conn(), row).await?;
            self.remember(&entry.id, &StoredDocument { query: entry.body.as_str().into(), trusted: true }).await;
            if let Some(version) = app_version {
                documents::record_usage(self.db.conn(), &entry.id, version).await?;
            }
        }
        Ok(ImportReport { imported: entries.len() })
    }

    /// Imports every `*.json` manifest in the configured directory (at start).
    pub async fn import_dir(&self) -> Result<ImportReport, DocumentError> {
        let Some(dir) = &self.settings.manifest_dir else {
            return Ok(ImportReport::default());
        };
        let mut report = ImportReport::default();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| DocumentError::Invalid(format!("manifest directory {}: {e}", dir.display())))?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let bytes = std::fs::read(&path)
                .map_err(|e| DocumentError::Invalid(format!("manifest {}: {e}", path.display())))?;
            report.imported += self.import(&bytes, None).await?.imported;
        }
        Ok(report)
    }

    /// Records (once per process and pair, in the background) that `app_version` used `id`.
    pub fn record_usage(&self, id: &str, app_version: &str) {
        let key = (id.to_owned(), app_version.to_owned());
        if self.usage_recorded.contains_key(&key) {
            return;
        }
        self.usage_recorded.insert(key, ());
        let db = self.db.clone();
        let (id, version) = (id.to_owned(), app_version.to_owned());
        tokio::spawn(async move {
            if let Err(err) = documents::record_usage(db.conn(), &id, &version).await {
                tracing::warn!(error = %err, "could not record document usage");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_manifest_formats() {
        let codegen = br#"{ "b5a0c3": "query A { __typename }" }"#;
        assert_eq!(parse_manifest(codegen).expect("codegen")[0].id, "b5a0c3");
        let apollo = br#"{ "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
            { "id": "abc", "name": "A", "type": "query", "body": "query A { __typename }" } ] }"#;
        let parsed = parse_manifest(apollo).expect("apollo");
        assert_eq!(parsed[0].name.as_deref(), Some("A"));
        let relay = br#"{ "5f1a2b": "query B { __typename }" }"#;
        assert_eq!(parse_manifest(relay).expect("relay")[0].body, "query B { __typename }");
        assert!(parse_manifest(br#"{ "x": "query { " }"#).is_err(), "documents must parse");
        assert!(parse_manifest(br#"{ "bad id!": "{ a }" }"#).is_err());
        assert!(parse_manifest(b"[1]").is_err());
    }

    #[test]
    fn sha256_of_a_document() {
        // Checked with: python3 -c "import hashlib; print(hashlib.sha256(b'{ __typename }').hexdigest())"
        assert_eq!(sha256_hex("{ __typename }"), "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b");
    }
}
