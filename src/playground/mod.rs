//! The GraphiQL playground at `/playground`: vendored assets compiled into the binary (no
//! CDN), the screen queries from `playground/queries/` as named tabs, and an optional
//! one-click development login. Its routes exist only when `playground.enabled` is set.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;

use crate::{
    app::App,
    kernel::{
        graphql::{
            error::ErrorCode,
            ids::{self, NodeType},
        },
        http::errors::error_response,
    },
    social::{first_user, latest_post_id},
};

/// The playground's routes (none when it is disabled).
pub fn routes(app: Arc<App>) -> Router {
    if !app.settings.playground.enabled {
        return Router::new();
    }
    Router::new()
        .route("/playground", get(page))
        .route("/playground/", get(page))
        .route("/playground/app.js", get(app_js))
        .route("/playground/vendor/{file}", get(vendor))
        .route("/playground/queries.json", get(queries))
        .route("/playground/config.json", get(config))
        .route("/playground/dev-login", post(dev_login))
        .with_state(app)
}

const INDEX_HTML: &str = include_str!("../../playground/index.html");
const APP_JS: &str = include_str!("../../playground/app.js");
const REACT: &str = include_str!("../../playground/vendor/react.production.min.js");
const REACT_DOM: &str = include_str!("../../playground/vendor/react-dom.production.min.js");
const GRAPHIQL_JS: &str = include_str!("../../playground/vendor/graphiql.min.js");
const GRAPHIQL_CSS: &str = include_str!("../../playground/vendor/graphiql.min.css");

/// The screen queries shipped as playground tabs.
pub const SCREEN_QUERIES: [(&str, &str); 4] = [
    ("HomeFeed", include_str!("../../playground/queries/HomeFeed.graphql")),
    ("HomeScreen", include_str!("../../playground/queries/HomeScreen.graphql")),
    ("Profile", include_str!("../../playground/queries/Profile.graphql")),
    ("PostDetail", include_str!("../../playground/queries/PostDetail.graphql")),
];

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /playground`.
pub async fn page() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /playground/app.js`.
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /playground/vendor/{file}`: only the four vendored files.
pub async fn vendor(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "react.production.min.js" => asset("text/javascript; charset=utf-8", REACT),
        "react-dom.production.min.js" => asset("text/javascript; charset=utf-8", REACT_DOM),
        "graphiql.min.js" => asset("text/javascript; charset=utf-8", GRAPHIQL_JS),
        "graphiql.min.css" => asset("text/css; charset=utf-8", GRAPHIQL_CSS),
        _ => error_response(StatusCode::NOT_FOUND, ErrorCode::RouteNotFound, "no such file"),
    }
}

/// `GET /playground/config.json`.
pub async fn config(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({ "devLogin": app.settings.playground.dev_login, "endpoint": "/graphql" })).into_response()
}

/// `GET /playground/queries.json`: the screen queries with variables pointing at demo data.
pub async fn queries(State(app): State<Arc<App>>) -> Response {
    let conn = app.db.conn();
    let handle = match first_user(conn).await {
        Ok(Some(user)) => user.handle,
        _ => "alice".to_owned(),
    };
    let post_id = match latest_post_id(conn).await {
        Ok(Some(id)) => ids::encode(NodeType::Post, id).0,
        _ => String::new(),
    };
    let tabs: Vec<_> = SCREEN_QUERIES
        .iter()
        .map(|(name, query)| {
            let variables = match *name {
                "Profile" => json!({ "handle": handle }),
                "PostDetail" => json!({ "id": post_id }),
                _ => json!({}),
            };
            json!({ "name": name, "query": query, "variables": variables })
        })
        .collect();
    axum::Json(tabs).into_response()
}

/// `POST /playground/dev-login`: a token for the demo user, when enabled.
pub async fn dev_login(State(app): State<Arc<App>>) -> Response {
    if !app.settings.playground.dev_login {
        return error_response(StatusCode::NOT_FOUND, ErrorCode::RouteNotFound, "dev login is disabled");
    }
    let user = match first_user(app.db.conn()).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return error_response(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no demo user: start the server with --seed",
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "dev login lookup failed");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
        }
    };
    match app.keys.mint(user.id, None) {
        Ok(token) => {
            let mut response = axum::Json(json!({ "token": token, "handle": user.handle })).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "dev login mint failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")
        }
    }
}
