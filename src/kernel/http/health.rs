//! Operational endpoints: liveness, readiness, metrics, certificate pins and the schema SDL.

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::kernel::http::HttpState;

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Seconds a `503` from `/readyz` asks to wait (`Retry-After`, `retryAfterSeconds`).
pub const UNREADY_RETRY_SECONDS: u64 = 5;

/// Readiness: the database answers and the server is not shutting down (`draining`, 503, so
/// a load balancer stops sending new work while open requests and sockets finish).
pub async fn readyz(State(state): State<HttpState>) -> Response {
    if *state.kernel().closing.borrow() {
        let body = json!({ "status": "draining", "retryAfterSeconds": UNREADY_RETRY_SECONDS });
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNREADY_RETRY_SECONDS));
        return response;
    }
    match state.kernel().db.ping().await {
        Ok(()) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            let body = json!({ "status": "unavailable", "checks": { "database": "down" },
                               "retryAfterSeconds": UNREADY_RETRY_SECONDS });
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNREADY_RETRY_SECONDS));
            response
        }
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<HttpState>) -> Response {
    let mut response = state.kernel().metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The schema in SDL, for codegen tools.
pub async fn schema_sdl(State(state): State<HttpState>) -> Response {
    let mut response = state.sdl.to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Certificate pins for clients that pin (current and backup keys, with dates).
pub async fn pins(State(state): State<HttpState>) -> Response {
    let body = json!({ "pins": state.kernel().pins, "algorithm": "sha256-spki-base64" });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
