//! The auth concern's HTTP routes: the JWKS that verifies access tokens and the OAuth2
//! authorization-code + PKCE endpoints ([`super::oauth_routes`]).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::oauth_routes;
use crate::app::App;

/// `/.well-known/jwks.json`, `/oauth/authorize` and `/oauth/token`.
pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/authorize", get(oauth_routes::authorize_page).post(oauth_routes::authorize_submit))
        .route("/oauth/token", post(oauth_routes::token))
        .with_state(app)
}

/// Public keys that verify access tokens.
async fn jwks(State(app): State<Arc<App>>) -> Response {
    let mut response = axum::Json(app.keys.jwks()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
