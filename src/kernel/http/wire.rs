//! The GraphQL request as it arrives on the wire, and how its document is found.
//!
//! Besides `query`, a request may name a persisted document in any of the forms clients use:
//! `extensions.persistedQuery.sha256Hash` (Apollo APQ and persisted queries, graphql-codegen),
//! `documentId` (GraphQL-over-HTTP, optionally `sha256:`-prefixed) or `doc_id` / `id`
//! (Relay). The same fields are read from a JSON body or from GET query parameters.

use std::collections::HashMap;

use async_graphql::{ServerError, Variables};
use serde::Deserialize;

use crate::{
    kernel::settings::PersistedMode,
    kernel::{
        documents::{DocumentError, DocumentStore, sha256_hex},
        graphql::{error::ErrorCode, error_codes::with_code},
    },
};

/// One GraphQL request as sent.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WireRequest {
    /// The document text.
    #[serde(default)]
    pub query: Option<String>,
    /// Which operation of the document to run.
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    /// Variables (an object, or null).
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
    /// Protocol extensions (`persistedQuery`).
    #[serde(default)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
    /// A persisted document id.
    #[serde(default, rename = "documentId", alias = "doc_id", alias = "id")]
    pub document_id: Option<String>,
}

/// The document of a request, once resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The text to execute.
    pub query: String,
    /// The persisted id it was addressed by, if any.
    pub document_id: Option<String>,
}

impl WireRequest {
    /// Reads GET parameters (`query`, `operationName`, `variables` and `extensions` as JSON,
    /// `documentId`/`doc_id`/`id`).
    pub fn from_query_string(raw: &str) -> Result<Self, String> {
        let params: HashMap<String, String> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
        let json = |name: &str| -> Result<Option<serde_json::Value>, String> {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| serde_json::from_str(v).map_err(|e| format!("`{name}` is not JSON: {e}")))
                .transpose()
        };
        let extensions = match json("extensions")? {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(map)) => Some(map),
            Some(_) => return Err("`extensions` must be a JSON object".into()),
        };
        Ok(Self {
            query: params.get("query").cloned().filter(|q| !q.is_empty()),
            operation_name: params.get("operationName").cloned().filter(|q| !q.is_empty()),
            variables: json("variables")?,
            extensions,
            document_id: ["documentId", "doc_id", "id"].iter().find_map(|k| params.get(*k).cloned()),
        })
    }

    /// The variables, checked to be an object.
    pub fn variables(&self) -> Result<Variables, ServerError> {
        match &self.variables {
            None | Some(serde_json::Value::Null) => Ok(Variables::default()),
            Some(value @ serde_json::Value::Object(_)) => Ok(Variables::from_json(value.clone())),
            Some(_) => {
                Err(with_code(ServerError::new("`variables` must be a JSON object", None), ErrorCode::BadRequest))
            }
        }
    }

    /// The persisted id the request names, and whether it is a SHA-256 (APQ-style).
    fn persisted_id(&self) -> Result<Option<(String, bool)>, ServerError> {
        if let Some(pq) = self.extensions.as_ref().and_then(|e| e.get("persistedQuery")) {
            let version = pq.get("version").and_then(|v| v.as_i64()).unwrap_or(1);
            if version != 1 {
                return Err(bad_input("unsupported persistedQuery version (only 1)"));
            }
            let hash = pq
                .get("sha256Hash")
                .and_then(|h| h.as_str())
                .ok_or_else(|| bad_input("persistedQuery without sha256Hash"))?;
            return Ok(Some((hash.to_ascii_lowercase(), true)));
        }
        Ok(self.document_id.as_ref().map(|id| match id.strip_prefix("sha256:") {
            Some(hash) => (hash.to_ascii_lowercase(), true),
            None => (id.clone(), false),
        }))
    }
}

/// Whether `error` says the persisted document is unknown.
pub fn is_not_found(error: &ServerError) -> bool {
    error.extensions.as_ref().and_then(|e| e.get("code"))
        == Some(&async_graphql::Value::String(ErrorCode::PersistedQueryNotFound.as_str().to_owned()))
}

fn bad_input(message: &str) -> ServerError {
    with_code(ServerError::new(message, None), ErrorCode::BadUserInput)
}

fn document_error(err: DocumentError) -> ServerError {
    let code = match &err {
        DocumentError::NotFound => ErrorCode::PersistedQueryNotFound,
        DocumentError::Required => ErrorCode::PersistedQueryRequired,
        DocumentError::HashMismatch | DocumentError::Invalid(_) => ErrorCode::BadUserInput,
        DocumentError::Database(_) => {
            tracing::error!(error = %err, "persisted document store failed");
            return with_code(ServerError::new("internal error", None), ErrorCode::Internal);
        }
    };
    with_code(ServerError::new(err.to_string(), None), code)
}

/// Finds the text to execute: the request's own `query`, or a persisted document. The store's
/// futures are boxed: they are kilobytes, and a request with only `query` never awaits them.
pub async fn resolve(request: &WireRequest, store: &DocumentStore) -> Result<Resolved, ServerError> {
    let trusted_only = store.mode() == PersistedMode::Trusted;
    match (request.persisted_id()?, &request.query) {
        // APQ registration: id and text together.
        (Some((id, true)), Some(query)) => {
            Box::pin(store.register(&id, query)).await.map_err(document_error)?;
            Ok(Resolved { query: query.clone(), document_id: Some(id) })
        }
        (Some((id, false)), Some(_)) => {
            Err(bad_input(&format!("send either the query or the document id {id:?}, not both")))
        }
        (Some((id, _)), None) => match Box::pin(store.lookup(&id)).await.map_err(document_error)? {
            Some(doc) if trusted_only && !doc.trusted => Err(document_error(DocumentError::Required)),
            Some(doc) => Ok(Resolved { query: doc.query.to_string(), document_id: Some(id) }),
            None => Err(document_error(DocumentError::NotFound)),
        },
        (None, Some(query)) if trusted_only => {
            let id = sha256_hex(query);
            match Box::pin(store.lookup(&id)).await.map_err(document_error)? {
                Some(doc) if doc.trusted => Ok(Resolved { query: query.clone(), document_id: Some(id) }),
                _ => Err(document_error(DocumentError::Required)),
            }
        }
        (None, Some(query)) => Ok(Resolved { query: query.clone(), document_id: None }),
        (None, None) => Err(with_code(
            ServerError::new("the request has no `query` (or persisted document id)", None),
            ErrorCode::BadRequest,
        )),
    }
}
