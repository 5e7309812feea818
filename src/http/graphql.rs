//! The GraphQL-over-HTTP transport: `POST /graphql` (single or batched JSON) and
//! `GET /graphql` (queries only).
//!
//! Media types follow the GraphQL-over-HTTP specification: `Accept:
//! application/graphql-response+json` gets that type, and a request error (the document does
//! not parse or validate) is answered with 400 and no `data`; `application/json` (also the
//! default when `Accept` is absent) always gets 200 for a well-formed request. Each operation
//! runs with its own loaders, driven by [`crate::graphql::batch_driver`].

use async_graphql::{BatchRequest, Request, ServerError, parser::types::OperationType};
use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use bytes::BytesMut;
use futures_util::StreamExt;

use super::{HttpState, auth::authenticate, errors::error_response, observe::OperationLabel};
use crate::{
    graphql::{
        batch_driver,
        error::ErrorCode,
        error_codes::{OperationName, check_field_count, with_code},
        loaders::Loaders,
        ordering::order_response,
    },
    request::{ClientInfo, Viewer},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The response media type chosen from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response media type; `None` when `Accept` allows neither.
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Format::Json);
    };
    let mut best: Option<(f32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        let format = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => Format::GraphqlResponseJson,
            APPLICATION_JSON | "application/*" | "*/*" => Format::Json,
            _ => continue,
        };
        // Prefer the higher quality; at equal quality prefer graphql-response+json.
        let better = match best {
            None => true,
            Some((q, f)) => quality > q || (quality == q && f == Format::Json && format == Format::GraphqlResponseJson),
        };
        if better {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        ErrorCode::NotAcceptable,
        "Accept must allow application/graphql-response+json or application/json",
    )
}

/// How much of an oversized body is read and discarded before answering, so that a client
/// still sending gets the 413 instead of a reset connection (bounded in bytes and time).
const DRAIN_FACTOR: usize = 16;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the (already decompressed) body, refusing more than `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    let mut seen = 0usize;
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ())?;
            seen = seen.saturating_add(chunk.len());
            if seen <= limit {
                buffer.extend_from_slice(&chunk);
            } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
        Ok::<(), ()>(())
    };
    let outcome = tokio::time::timeout(DRAIN_TIME, read).await;
    if seen > limit {
        return Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            &format!("request body exceeds {limit} bytes"),
        ));
    }
    match outcome {
        Ok(Ok(())) => Ok(buffer.freeze()),
        Ok(Err(())) | Err(_) => {
            Err(error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "could not read the request body"))
        }
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().eq_ignore_ascii_case(APPLICATION_JSON))
        .unwrap_or(false)
}

/// `POST /graphql`.
pub async fn post_handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(format) = negotiate(&headers) else {
        return not_acceptable();
    };
    if !is_json_content_type(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json",
        );
    }
    let limits = &state.app.settings.limits;
    let bytes = match read_body(body, limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    // A JSON array is a batch, an object one operation (serde would also read an array as a
    // struct, so the shape is decided here).
    let is_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let parsed = if is_array {
        serde_json::from_slice::<Vec<Request>>(&bytes).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice::<Request>(&bytes).map(BatchRequest::Single)
    };
    let batch: BatchRequest = match parsed {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the body is not a GraphQL request in JSON: {err}"),
            );
        }
    };
    if let BatchRequest::Batch(items) = &batch {
        if items.is_empty() {
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "empty batch");
        }
        if items.len() > limits.max_batch_size {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BatchTooLarge,
                &format!("a batch holds at most {} operations", limits.max_batch_size),
            );
        }
    }
    let viewer = match authenticate(&headers, &state.app.keys) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    match batch {
        BatchRequest::Single(request) => {
            let (response, label) = execute(&state, request, viewer, &client).await;
            respond_single(response, format, label)
        }
        BatchRequest::Batch(requests) => {
            // In order, one after another: a query after a mutation sees its effect.
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(execute(&state, request, viewer, &client).await.0);
            }
            respond_batch(responses, format)
        }
    }
}

/// `GET /graphql?query=...&variables=...&operationName=...` — queries only.
pub async fn get_handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(format) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("invalid query string: {err}"),
            );
        }
    };
    if request.query.is_empty() {
        return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "the `query` parameter is required");
    }
    if refuses_get(&request, state.app.settings.limits.max_query_bytes) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "only queries may be sent with GET; use POST for mutations",
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let viewer = match authenticate(&headers, &state.app.keys) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let (response, label) = execute(&state, request, viewer, &client).await;
    respond_single(response, format, label)
}

/// True when the selected operation of a GET request is not a query. Documents that do not
/// parse are left to the executor, which answers with the parse error.
fn refuses_get(request: &Request, max_query_bytes: usize) -> bool {
    if request.query.len() > max_query_bytes {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let selected = match request.operation_name.as_deref() {
        Some(name) => document.operations.iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name)),
        None => document.operations.iter().next(),
    };
    selected.is_some_and(|(_, operation)| operation.node.ty != OperationType::Query)
}

/// Runs one operation with fresh loaders; returns the response and its metric label.
async fn execute(
    state: &HttpState,
    request: Request,
    viewer: Viewer,
    client: &ClientInfo,
) -> (async_graphql::Response, String) {
    let settings = &state.app.settings;
    let fallback_label = request.operation_name.clone().unwrap_or_else(|| "anonymous".to_owned());
    if request.query.len() > settings.limits.max_query_bytes {
        let error = with_code(
            ServerError::new(format!("the query document exceeds {} bytes", settings.limits.max_query_bytes), None),
            ErrorCode::PayloadTooLarge,
        );
        return (async_graphql::Response::from_errors(vec![error]), fallback_label);
    }
    // Parse once here: the document is needed again to order the response.
    let mut request = request;
    let document = match async_graphql::parser::parse_query(&request.query) {
        Ok(document) => document,
        Err(err) => {
            let error = with_code(ServerError::from(err), ErrorCode::GraphqlParseFailed);
            return (async_graphql::Response::from_errors(vec![error]), fallback_label);
        }
    };
    if let Err(error) = check_field_count(&document, settings.limits.max_fields) {
        return (async_graphql::Response::from_errors(vec![error]), fallback_label);
    }
    request.set_parsed_query(document.clone());
    let requested_operation = request.operation_name.clone();
    let (spawner, queue) = batch_driver::channel();
    let loaders = Loaders::new(
        state.app.db.clone(),
        state.app.metrics.clone(),
        viewer.id_or_zero(),
        &spawner,
        &settings.dataloader,
    );
    let operation_name = OperationName::default();
    let request = request.data(loaders).data(viewer).data(client.clone()).data(operation_name.clone());
    let mut response = batch_driver::drive(state.schema.execute(request), queue).await;
    order_response(&mut response.data, &document, requested_operation.as_deref());
    (response, operation_name.get().unwrap_or(fallback_label))
}

const REQUEST_ERROR_CODES: [ErrorCode; 5] = [
    ErrorCode::GraphqlParseFailed,
    ErrorCode::GraphqlValidationFailed,
    ErrorCode::QueryTooDeep,
    ErrorCode::QueryTooComplex,
    ErrorCode::PayloadTooLarge,
];

/// True when the operation never executed (it did not parse, validate or fit the limits).
fn is_request_error(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| {
            let code = e.extensions.as_ref().and_then(|ext| ext.get("code"));
            REQUEST_ERROR_CODES.iter().any(|c| matches!(code, Some(async_graphql::Value::String(s)) if s == c.as_str()))
        })
}

/// Serialises one response; a request error has no `data` entry.
fn response_body(response: &async_graphql::Response) -> Result<Vec<u8>, serde_json::Error> {
    if is_request_error(response) {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(response)
    }
}

fn respond_single(response: async_graphql::Response, format: Format, label: String) -> Response {
    let status = if format == Format::GraphqlResponseJson && is_request_error(&response) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut http = match response_body(&response) {
        Ok(body) => (status, body).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a response");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
        }
    };
    http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    http.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http.extensions_mut().insert(OperationLabel(label));
    http
}

fn respond_batch(responses: Vec<async_graphql::Response>, format: Format) -> Response {
    let mut body = Vec::with_capacity(256 * responses.len());
    body.push(b'[');
    for (i, response) in responses.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        match response_body(response) {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(err) => {
                tracing::error!(error = %err, "could not serialise a response");
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
            }
        }
    }
    body.push(b']');
    let mut http = (StatusCode::OK, body).into_response();
    http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    http.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http.extensions_mut().insert(OperationLabel("batch".to_owned()));
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Format> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        negotiate(&headers)
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Format::Json));
        assert_eq!(accept("application/graphql-response+json"), Some(Format::GraphqlResponseJson));
        assert_eq!(accept("application/json, application/graphql-response+json"), Some(Format::GraphqlResponseJson));
        assert_eq!(accept("application/graphql-response+json;q=0.5, application/json"), Some(Format::Json));
        assert_eq!(accept("*/*"), Some(Format::Json));
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
    }
}
