//! Request context middleware: request id, client info, tracing span, metrics, access log.
//!
//! A client may send its own `X-Request-Id` (to correlate with app logs); it is kept only if
//! it is short and plain (≤ 64 of `[A-Za-z0-9._-]`), otherwise a UUID is generated, so client
//! input can never forge log lines. The id is echoed on every response.

use std::time::Instant;

use axum::{
    extract::{Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue,
        header::{ACCEPT_LANGUAGE, CONTENT_LENGTH},
    },
    middleware::Next,
    response::Response,
};
use http_body_util::BodyExt;
use tracing::Instrument;

use crate::kernel::http::{HttpState, errors::ensure_json_errors};
use crate::kernel::{
    infra::{
        labels::Label,
        metrics::{BytesLabels, LatencyLabels, RequestLabels},
    },
    request::{AppVersion, ClientInfo, Platform, valid_locale, valid_timezone},
};

/// The id of one request, in request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The operation label a handler wants recorded (set in response extensions).
#[derive(Clone, Debug)]
pub struct OperationLabel(pub String);

/// The client's IP address (the socket peer, or the first `X-Forwarded-For` hop when
/// `trust_forwarded_for` is set), in request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

fn client_ip(request: &Request, trust_forwarded_for: bool) -> ClientIp {
    let forwarded = trust_forwarded_for
        .then(|| header(request.headers(), &X_FORWARDED_FOR))
        .flatten()
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    ClientIp(forwarded.unwrap_or(peer))
}

/// The size of a response body before compression (set in response extensions).
#[derive(Clone, Copy, Debug)]
pub struct RawBodyBytes(pub usize);

/// The size of the request body after decompression (set in response extensions).
#[derive(Clone, Copy, Debug)]
pub struct RawRequestBytes(pub usize);

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_APP_VERSION: HeaderName = HeaderName::from_static("x-app-version");
const X_APP_BUILD: HeaderName = HeaderName::from_static("x-app-build");
const X_PLATFORM: HeaderName = HeaderName::from_static("x-platform");
const X_OS_VERSION: HeaderName = HeaderName::from_static("x-os-version");
const X_DEVICE_ID: HeaderName = HeaderName::from_static("x-device-id");
const X_TIMEZONE: HeaderName = HeaderName::from_static("x-timezone");

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Parses the client-info headers; malformed values are dropped.
pub fn client_info(headers: &HeaderMap) -> ClientInfo {
    let version = header(headers, &X_APP_VERSION).and_then(AppVersion::parse);
    let app_build = header(headers, &X_APP_BUILD)
        .filter(|v| v.len() <= 32 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        .map(str::to_owned);
    let header_build = app_build
        .as_deref()
        .filter(|b| b.len() <= 18 && b.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|b| b.parse().ok());
    let (app_version, version_build) = match version {
        Some(AppVersion { version, build }) => (Some(version), build),
        None => (None, None),
    };
    ClientInfo {
        app_version,
        app_build_number: header_build.or(version_build),
        app_build,
        platform: header(headers, &X_PLATFORM).and_then(Platform::parse),
        device_id: header(headers, &X_DEVICE_ID).and_then(|v| uuid::Uuid::parse_str(v).ok()),
        timezone: header(headers, &X_TIMEZONE).filter(|v| valid_timezone(v)).map(str::to_owned),
        locale: header(headers, &ACCEPT_LANGUAGE)
            .and_then(|v| v.split([',', ';']).next())
            .map(str::trim)
            .filter(|v| valid_locale(v))
            .map(str::to_owned),
        os_version: header(headers, &X_OS_VERSION)
            .filter(|v| v.len() <= 32 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            .map(str::to_owned),
        ip: None,
    }
}

/// The client's own id when it is short and plain, otherwise a fresh random UUID (v4) from
/// the thread's generator (`Uuid::new_v4` would ask the kernel for randomness on every
/// request).
fn request_id(headers: &HeaderMap) -> String {
    header(headers, &X_REQUEST_ID)
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
            uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
        })
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/v1/graphql" => "/v1/graphql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/schema.graphql" => "/schema.graphql",
        "/.well-known/jwks.json" => "/.well-known/jwks.json",
        "/.well-known/pins.json" => "/.well-known/pins.json",
        p if p.starts_with("/playground") => "/playground",
        "/oauth/authorize" => "/oauth/authorize",
        "/oauth/token" => "/oauth/token",
        p if p.starts_with("/ofrep/") => "/ofrep",
        _ => "unmatched",
    }
}

/// The middleware. It also makes every error response JSON
/// ([`super::errors::ensure_json_errors`]), which is one more layer's work done without one
/// more boxed future per request.
pub async fn observe(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let client = client_info(request.headers());
    let route = route_label(request.uri().path());
    // Fields are only formatted when the span is enabled (the access log is at info).
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    let ip = client_ip(&request, state.kernel().settings.trust_forwarded_for);
    let platform = client.platform;
    let app_version = client.app_version.as_ref().map(|_| client.version_label());
    let wire_request_bytes =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let id_header = HeaderValue::from_str(&id).ok();
    let min_version = state.pipeline.hooks().gate.min_version(&client);
    let extensions = request.extensions_mut();
    extensions.insert(ip);
    extensions.insert(RequestId(id));
    extensions.insert(client);

    let response = next.run(request).instrument(span.clone()).await;
    let mut response = ensure_json_errors(response);

    let elapsed = started.elapsed();
    if let Some(value) = id_header {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    if let Some(value) = min_version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(super::gate::X_MIN_APP_VERSION, value);
    }
    let metrics = &state.kernel().metrics;
    let operation = match response.extensions().get::<OperationLabel>() {
        Some(OperationLabel(name)) => metrics.operation_labels.admit(name),
        None => Label::Static(route),
    };
    let app_version = match app_version {
        Some(version) => metrics.app_version_labels.admit(&version),
        None => Label::Static("unknown"),
    };
    let status = response.status();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            operation: operation.clone(),
            status: status.as_u16(),
            platform: Platform::label(platform),
            app_version,
        })
        .inc();
    metrics
        .request_seconds
        .get_or_create(&LatencyLabels { operation: operation.clone() })
        .observe(elapsed.as_secs_f64());
    if let Some(RawRequestBytes(raw)) = response.extensions().get::<RawRequestBytes>().copied() {
        let labels = |stage| BytesLabels { operation: operation.clone(), stage };
        metrics.request_bytes.get_or_create(&labels("raw")).inc_by(raw as u64);
        metrics.request_bytes.get_or_create(&labels("wire")).inc_by(wire_request_bytes.unwrap_or(raw as u64));
    }
    if let Some(RawBodyBytes(raw)) = response.extensions().get::<RawBodyBytes>().copied() {
        metrics
            .response_bytes
            .get_or_create(&BytesLabels { operation: operation.clone(), stage: "raw" })
            .inc_by(raw as u64);
        // Count what actually goes out, after the compression layer, as the body streams.
        let counter =
            metrics.response_bytes.get_or_create(&BytesLabels { operation: operation.clone(), stage: "wire" }).clone();
        let (parts, body) = response.into_parts();
        let body = body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counter.inc_by(data.len() as u64);
            }
            frame
        });
        response = Response::from_parts(parts, axum::body::Body::new(body));
    }
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), operation = %operation.as_str(), ms = elapsed.as_secs_f64() * 1000.0, "served");
    });
    response
}
