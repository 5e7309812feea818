//! JSON error responses for the HTTP layer: every error a client can receive is
//! `{"errors":[{"message":…,"extensions":{"code":…}}]}`, never HTML or an empty body.

use std::any::Any;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::kernel::graphql::error::ErrorCode;

/// A JSON error response with one error.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `429`/`503` JSON error that says when to come back: `Retry-After: <seconds>` and
/// `extensions.retryAfterSeconds`, the machine-readable backoff every such answer carries.
pub fn retry_later(status: StatusCode, code: ErrorCode, message: &str, seconds: u64) -> Response {
    let body = json!({ "errors": [{ "message": message,
        "extensions": { "code": code.as_str(), "retryAfterSeconds": seconds } }] });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Unknown routes.
pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, ErrorCode::RouteNotFound, "no such route")
}

/// Known routes with the wrong method.
pub async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "method not allowed on this route")
}

/// A panic in a handler: logged by the request span, answered as `INTERNAL`.
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")
}

/// Replaces the body of any error response that is not JSON (for example a 415 from the
/// decompression layer for an unknown `Content-Encoding`) with a JSON error. Called by the
/// outermost middleware ([`super::observe::observe`]) on every response.
pub fn ensure_json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "unsupported Content-Type or Content-Encoding")
        }
        StatusCode::NOT_FOUND => (ErrorCode::RouteNotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed on this route"),
        StatusCode::NOT_ACCEPTABLE => (ErrorCode::NotAcceptable, "not acceptable"),
        s if s.is_client_error() => (ErrorCode::BadRequest, "bad request"),
        _ => (ErrorCode::Internal, "internal error"),
    };
    let mut replaced = error_response(status, code, message);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && name != header::CONTENT_ENCODING {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}
