//! The baseline server: what a careful engineer would hand-write for the same screens with
//! axum and sqlx, no GraphQL and no middleware. It runs as its own process (`bench
//! baseline-server`), pinned like the product, with the product's runtime (tokio's default
//! multi-threaded runtime, whose worker count follows the pinned CPU set) and pool size.
//!
//! - `POST /feed` — the HomeFeed screen (B1): reads `variables.first` from the same request
//!   body the product gets, takes the viewer from the bearer token's `sub` claim **without
//!   verifying the signature** (the product verifies an Ed25519 JWT on every request), runs
//!   the hand-written SQL of [`store`] and serialises [`shape`] with serde.
//! - `POST /typename` — the bytes `{"data":{"__typename":"Query"}}` (B3).
//! - `GET /readyz` — 200 when the database answers.

mod shape;
mod store;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde::Deserialize;

use store::Store;

/// The product's answer to `{ __typename }`, byte for byte.
pub const TYPENAME_RESPONSE: &[u8] = br#"{"data":{"__typename":"Query"}}"#;

/// Runs the baseline server until SIGTERM or Ctrl-C.
pub fn serve(database_url: &str, listen: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(listen.ip().is_loopback(), "the baseline listens on loopback only, not {listen}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = Arc::new(Store::connect(database_url).await.context("connecting the baseline to the database")?);
        let app = Router::new()
            .route("/feed", post(feed))
            .route("/typename", post(typename))
            .route("/readyz", get(readyz))
            .with_state(store);
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[derive(Deserialize)]
struct GraphqlBody {
    variables: Option<FeedVariables>,
}

#[derive(Deserialize)]
struct FeedVariables {
    first: Option<i64>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The user id in the bearer token's `sub` claim; the signature is NOT verified.
fn unverified_subject(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Claims>(&json).ok()?.sub.parse().ok()
}

async fn feed(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(viewer) = unverified_subject(&headers) else {
        return (StatusCode::UNAUTHORIZED, "bearer token required").into_response();
    };
    let first = match serde_json::from_slice::<GraphqlBody>(&body) {
        Ok(request) => request.variables.and_then(|v| v.first).unwrap_or(20),
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let Some(first) = usize::try_from(first).ok().filter(|n| (1..=100).contains(n)) else {
        return (StatusCode::BAD_REQUEST, "first must be between 1 and 100").into_response();
    };
    let screen = match store.feed_screen(viewer, first).await {
        Ok(screen) => screen,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}")).into_response(),
    };
    match serde_json::to_vec(&screen) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn typename(_body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], TYPENAME_RESPONSE).into_response()
}

async fn readyz(State(store): State<Arc<Store>>) -> StatusCode {
    if store.ready().await { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sub_without_verifying() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"42","exp":1}"#);
        let mut headers = HeaderMap::new();
        let value = format!("Bearer e30.{payload}.c2ln");
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        assert_eq!(unverified_subject(&headers), Some(42));
        headers.insert(header::AUTHORIZATION, "Basic x".parse().expect("header"));
        assert_eq!(unverified_subject(&headers), None);
    }
}
