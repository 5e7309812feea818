//! The GraphQL-over-HTTP transport: `POST /graphql` (single or batched JSON) and
//! `GET /graphql` (queries only).
//!
//! Media types follow the GraphQL-over-HTTP specification: `Accept:
//! application/graphql-response+json` gets that type, and a request error (the document does
//! not parse or validate) is answered with 400 and no `data`; `application/json` (also the
//! default when `Accept` is absent) always gets 200 for a well-formed request. Each operation
//! runs through the one [`crate::kernel::graphql::pipeline::Pipeline`].

use async_graphql::{
    Request, ServerError,
    parser::types::{ExecutableDocument, OperationType},
};
use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::kernel::{
    graphql::{
        error::ErrorCode,
        error_codes::with_code,
        ordering::order_response,
        pipeline::{Admitted, Caller},
    },
    hooks::Refusal,
    http::{
        HttpState,
        auth::authenticate,
        caching,
        errors::error_response,
        gate,
        observe::{ClientIp, OperationLabel, RawBodyBytes, RawRequestBytes, RequestId},
        wire::{self, WireRequest},
    },
    infra::trace::TraceContext,
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
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
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
    let limits = &state.kernel().settings.limits;
    let bytes = match read_body(body, limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let raw_request = RawRequestBytes(bytes.len());
    // A JSON array is a batch, an object one operation.
    let is_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let parsed = if is_array {
        serde_json::from_slice::<Vec<WireRequest>>(&bytes).map(Batch::Many)
    } else {
        serde_json::from_slice::<WireRequest>(&bytes).map(Batch::One)
    };
    let batch = match parsed {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the body is not a GraphQL request in JSON: {err}"),
            );
        }
    };
    if let Batch::Many(items) = &batch {
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
    let viewer = match authenticate(&headers, state.pipeline.hooks().verifier.as_ref()).await {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let trace = Trace::of(&headers, request_id);
    let ctx = Exchange { state: &state, viewer, client: &client, ip, method: Method::POST, trace };
    let mut response = match batch {
        Batch::One(request) => match execute(&ctx, request).await {
            Ok(executed) => respond_single(executed, format, None),
            Err(refused) => refused.into_response(),
        },
        Batch::Many(requests) => {
            // In order, one after another: a query after a mutation sees its effect.
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                match execute(&ctx, request).await {
                    Ok(executed) => responses.push(executed.response),
                    Err(refused) => return refused.into_response(),
                }
            }
            respond_batch(responses, format)
        }
    };
    response.extensions_mut().insert(raw_request);
    response
}

/// `GET /graphql?query=...` (or a persisted document id) — queries only, cacheable.
pub async fn get_handler(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientInfo>,
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(format) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match WireRequest::from_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("invalid query string: {err}"),
            );
        }
    };
    let viewer = match authenticate(&headers, state.pipeline.hooks().verifier.as_ref()).await {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let trace = Trace::of(&headers, request_id);
    let ctx = Exchange { state: &state, viewer, client: &client, ip, method: Method::GET, trace };
    match execute(&ctx, request).await {
        Ok(executed) => respond_single(executed, format, Some(&headers)),
        Err(refused) => refused.into_response(),
    }
}

/// A POST body: one operation or a batch.
enum Batch {
    One(WireRequest),
    Many(Vec<WireRequest>),
}

/// What every operation of one HTTP request shares.
struct Exchange<'a> {
    state: &'a HttpState,
    viewer: Viewer,
    client: &'a ClientInfo,
    ip: ClientIp,
    method: Method,
    trace: Trace,
}

/// The ids an operation's upstream calls carry.
struct Trace {
    request_id: Option<String>,
    context: TraceContext,
}

impl Trace {
    fn of(headers: &HeaderMap, request_id: Option<Extension<RequestId>>) -> Self {
        let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
        Self { request_id: request_id.map(|Extension(id)| id.0), context: TraceContext::from_header(traceparent) }
    }
}

/// An operation refused before execution at the HTTP level (a batch is refused whole).
enum Refused {
    /// A mutation (or subscription) sent with GET.
    MutationOverGet,
    /// The app version is below the minimum, or maintenance (the bootstrap is exempt).
    Gate(Refusal),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::MutationOverGet => {
                let mut response = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorCode::MethodNotAllowed,
                    "only queries may be sent with GET; use POST for mutations",
                );
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                response
            }
            Self::Gate(refusal) => gate::refusal_response(&refusal),
        }
    }
}

/// An executed operation.
struct Executed {
    response: async_graphql::Response,
    /// Metric label: the operation name, or `anonymous`.
    label: String,
    /// False for mutations: never cacheable.
    is_query: bool,
}

impl Executed {
    fn failed(error: ServerError, label: String) -> Self {
        Self { response: async_graphql::Response::from_errors(vec![error]), label, is_query: false }
    }
}

/// The name of the document's operation when it has exactly one and it is named.
fn single_operation_name(document: &ExecutableDocument) -> Option<String> {
    let mut operations = document.operations.iter();
    match (operations.next(), operations.next()) {
        (Some((Some(name), _)), None) => Some(name.to_string()),
        _ => None,
    }
}

/// Resolves the document, then runs it through the pipeline and orders the result.
async fn execute(ctx: &Exchange<'_>, wire: WireRequest) -> Result<Executed, Refused> {
    let kernel = ctx.state.kernel();
    let label = wire.operation_name.clone().unwrap_or_else(|| "anonymous".to_owned());
    let resolved = match wire::resolve(&wire, &kernel.documents).await {
        Ok(resolved) => resolved,
        Err(error) => {
            if wire::is_not_found(&error) {
                kernel.metrics.observe_document("miss");
            }
            return Ok(Executed::failed(error, label));
        }
    };
    kernel.metrics.observe_document(match (&resolved.document_id, &wire.query) {
        (Some(_), None) => "hit",
        (Some(_), Some(_)) => "registered",
        (None, _) => "text",
    });
    if let (Some(id), Some(version)) = (&resolved.document_id, &ctx.client.app_version) {
        kernel.documents.record_usage(id, &version.to_string());
    }
    let max_query_bytes = kernel.settings.limits.max_query_bytes;
    if resolved.query.len() > max_query_bytes {
        let message = format!("the query document exceeds {max_query_bytes} bytes");
        return Ok(Executed::failed(with_code(ServerError::new(message, None), ErrorCode::PayloadTooLarge), label));
    }
    let variables = match wire.variables() {
        Ok(variables) => variables,
        Err(error) => return Ok(Executed::failed(error, label)),
    };
    let mut request = Request::new(resolved.query).variables(variables);
    if let Some(name) = &wire.operation_name {
        request = request.operation_name(name);
    }
    let pipeline = &ctx.state.pipeline;
    // The document is needed again to check the method and order the result.
    let admitted: Admitted = match pipeline.admit(request) {
        Ok(admitted) => admitted,
        Err(error) => return Ok(Executed::failed(error, label)),
    };
    let label = match (&wire.operation_name, single_operation_name(&admitted.document)) {
        (None, Some(name)) => name,
        _ => label,
    };
    if ctx.method == Method::GET && admitted.kind.is_some_and(|k| k != OperationType::Query) {
        return Err(Refused::MutationOverGet);
    }
    let gate = pipeline.hooks().gate.as_ref();
    gate::admit(gate, ctx.client, &admitted.document, wire.operation_name.as_deref()).map_err(Refused::Gate)?;
    let caller = Caller {
        viewer: ctx.viewer,
        client: ctx.client,
        ip: ctx.ip.0,
        request_id: ctx.trace.request_id.as_deref(),
        trace: ctx.trace.context,
        resume: None,
    };
    if let Err(error) = pipeline.throttle(&admitted, &caller).await {
        return Ok(Executed::failed(error, label));
    }
    let (document, is_query) = (admitted.document.clone(), admitted.kind == Some(OperationType::Query));
    let mut response = pipeline.execute(admitted, &caller).await;
    order_response(&mut response.data, &document, wire.operation_name.as_deref());
    Ok(Executed { response, label, is_query })
}

const REQUEST_ERROR_CODES: [ErrorCode; 10] = [
    ErrorCode::RateLimited,
    ErrorCode::GraphqlParseFailed,
    ErrorCode::GraphqlValidationFailed,
    ErrorCode::QueryTooDeep,
    ErrorCode::QueryTooComplex,
    ErrorCode::PayloadTooLarge,
    ErrorCode::PersistedQueryNotFound,
    ErrorCode::PersistedQueryRequired,
    ErrorCode::BadRequest,
    ErrorCode::BadUserInput,
];

fn has_code(error: &ServerError, code: ErrorCode) -> bool {
    matches!(error.extensions.as_ref().and_then(|ext| ext.get("code")), Some(async_graphql::Value::String(s)) if s == code.as_str())
}

/// True when the operation never executed (it did not resolve, parse, validate or fit the
/// limits): such a response has no `data` entry.
fn is_request_error(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty() && REQUEST_ERROR_CODES.iter().any(|c| has_code(e, *c)))
}

/// Serialises one response; a request error has no `data` entry.
fn response_body(response: &async_graphql::Response) -> Result<Vec<u8>, serde_json::Error> {
    if is_request_error(response) {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(response)
    }
}

/// The HTTP response for one operation. `get` carries the request headers of a GET, whose
/// successful query responses get cache headers, an ETag, and 304 on a matching
/// `If-None-Match`.
fn respond_single(executed: Executed, format: Format, get: Option<&HeaderMap>) -> Response {
    let Executed { response, label, is_query } = executed;
    let request_error = is_request_error(&response);
    // A request that is not a GraphQL request at all (no query, no document id) is 400 in any
    // media type; other request errors are 400 only with graphql-response+json.
    let malformed = request_error && response.errors.iter().all(|e| has_code(e, ErrorCode::BadRequest));
    let retry_after = response
        .errors
        .iter()
        .filter(|e| has_code(e, ErrorCode::RateLimited))
        .filter_map(|e| e.extensions.as_ref().and_then(|ext| ext.get("retryAfterSeconds")).cloned())
        .filter_map(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    let status = if retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if malformed || (format == Format::GraphqlResponseJson && request_error) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = match response_body(&response) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a response");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
        }
    };
    let policy = match get {
        Some(headers) if is_query && response.errors.is_empty() => {
            caching::policy(&response.cache_control, &body, headers)
        }
        _ => caching::Policy::no_store(),
    };
    let raw_bytes = body.len();
    let mut http = if policy.not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut http = (status, body).into_response();
        http.extensions_mut().insert(RawBodyBytes(raw_bytes));
        http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
        http
    };
    policy.apply(http.headers_mut());
    if let Some(seconds) = retry_after {
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    http.extensions_mut().insert(OperationLabel(label));
    if policy.not_modified {
        http.extensions_mut().insert(caching::NotModified);
    }
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
    let raw_bytes = body.len();
    let mut http = (StatusCode::OK, body).into_response();
    http.extensions_mut().insert(RawBodyBytes(raw_bytes));
    http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    caching::Policy::no_store().apply(http.headers_mut());
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
