//! OAuth2 endpoints: `/oauth/authorize` (a minimal sign-in page) and `/oauth/token`.
//!
//! Invalid clients or unregistered redirect URIs are answered here (JSON, never a redirect to
//! an unverified URI); other authorization errors go back to the app's redirect URI with
//! `error` and `state`, as RFC 6749 §4.1.2.1 says. The token endpoint speaks the standard form
//! encoding and JSON answers with `Cache-Control: no-store`.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde_json::json;

use std::sync::Arc;

use crate::app::App;
use crate::{
    auth::{
        oauth::{self, AuthorizationRequest, OAuthError},
        sessions,
    },
    kernel::error::DomainError,
};

type Params = HashMap<String, String>;

fn escape(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn oauth_json(status: StatusCode, error: &OAuthError) -> Response {
    let mut response =
        (status, axum::Json(json!({ "error": error.error, "error_description": error.description }))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_owned();
    url.push(if url.contains('?') { '&' } else { '?' });
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    url.push_str(&query);
    Redirect::to(&url).into_response()
}

/// Validates an authorization request; `Err` is the response to send.
fn validate(app: &App, params: &Params) -> Result<AuthorizationRequest, Box<Response>> {
    let get = |k: &str| params.get(k).map(String::as_str);
    let client_id = get("client_id").unwrap_or_default();
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    oauth::check_client(&app.settings.oauth_clients, client_id, redirect_uri)
        .map_err(|e| Box::new(oauth_json(StatusCode::BAD_REQUEST, &e)))?;
    let state_param = get("state").map(str::to_owned);
    let code_challenge =
        oauth::check_request(get("response_type"), get("code_challenge"), get("code_challenge_method")).map_err(
            |e| {
                let mut pairs = vec![("error", e.error), ("error_description", e.description)];
                if let Some(s) = state_param.as_deref() {
                    pairs.push(("state", s));
                }
                redirect_with(redirect_uri, &pairs)
            },
        )?;
    Ok(AuthorizationRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge,
        state: state_param,
    })
}

fn login_page(request: &AuthorizationRequest, message: Option<&str>) -> Response {
    let hidden = [
        ("response_type", "code"),
        ("client_id", request.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("code_challenge", request.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", request.state.as_deref().unwrap_or_default()),
    ]
    .iter()
    .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
    .collect::<String>();
    let message = message.map(|m| format!(r#"<p role="alert">{}</p>"#, escape(m))).unwrap_or_default();
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in</title></head><body><main><h1>Sign in to continue to {client}</h1>{message}
<form method="post" action="/oauth/authorize">{hidden}
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></main></body></html>"#,
        client = escape(&request.client_id)
    );
    let mut response = Html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

/// `GET /oauth/authorize`: the sign-in page.
pub async fn authorize_page(State(app): State<Arc<App>>, Query(params): Query<Params>) -> Response {
    match validate(&app, &params) {
        Ok(request) => login_page(&request, None),
        Err(response) => *response,
    }
}

/// `POST /oauth/authorize`: credentials → redirect with a code.
pub async fn authorize_submit(State(app): State<Arc<App>>, Form(params): Form<Params>) -> Response {
    let request = match validate(&app, &params) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let email = params.get("email").cloned().unwrap_or_default();
    let password = params.get("password").cloned().unwrap_or_default();
    if let Err(retry) =
        app.limits.check(crate::kernel::infra::rate_limit::Limit::LoginPerAccount, &email.to_lowercase()).await
    {
        let mut response = login_page(&request, Some("Too many attempts; try again shortly."));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry.seconds()));
        return response;
    }
    match oauth::authorize(&app.db, &request, &email, password).await {
        Ok(code) => {
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = request.state.as_deref() {
                pairs.push(("state", s));
            }
            redirect_with(&request.redirect_uri, &pairs)
        }
        Err(DomainError::Unauthenticated) => {
            let mut response = login_page(&request, Some("Wrong email or password."));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "oauth authorize failed");
            oauth_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &OAuthError { error: "server_error", description: "internal error" },
            )
        }
    }
}

fn token_response(pair: crate::auth::TokenPair, ttl: u64) -> Response {
    let body = json!({
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": pair.refresh_token,
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /oauth/token`: `authorization_code` (with `code_verifier`) and `refresh_token` grants.
pub async fn token(State(app): State<Arc<App>>, Form(params): Form<Params>) -> Response {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let ttl = app.keys.ttl_seconds();
    let invalid_grant = OAuthError { error: "invalid_grant", description: "the grant is invalid or expired" };
    let outcome = match get("grant_type") {
        "authorization_code" => {
            let client_id = get("client_id");
            if !app.settings.oauth_clients.iter().any(|c| c.client_id == client_id) {
                return oauth_json(
                    StatusCode::UNAUTHORIZED,
                    &OAuthError { error: "invalid_client", description: "unknown client_id" },
                );
            }
            oauth::exchange(
                &app.db,
                &app.keys,
                &app.settings.auth,
                client_id,
                get("redirect_uri"),
                get("code"),
                get("code_verifier"),
            )
            .await
        }
        // The refresh token is bound to the device session the client's code opened: the
        // client presents it with its `client_id` (RFC 6749 §6, public clients).
        "refresh_token" => match oauth::refresh_device(app.db.conn(), get("refresh_token"), get("client_id")).await {
            Ok(Some(device)) => {
                let raw = get("refresh_token");
                let signals = crate::auth::signals::Signals::default();
                sessions::refresh(&app.db, &app.keys, &app.settings.auth, &app.recent_pairs, raw, &device, &signals)
                    .await
                    .map(|r| r.outcome.map_err(|_| invalid_grant.clone()))
            }
            Ok(None) => Ok(Err(invalid_grant.clone())),
            Err(err) => Err(err),
        },
        _ => {
            return oauth_json(
                StatusCode::BAD_REQUEST,
                &OAuthError { error: "unsupported_grant_type", description: "use authorization_code or refresh_token" },
            );
        }
    };
    match outcome {
        Ok(Ok(pair)) => token_response(pair, ttl),
        Ok(Err(error)) => oauth_json(StatusCode::BAD_REQUEST, &error),
        Err(err) => {
            tracing::error!(error = %err, "oauth token failed");
            oauth_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &OAuthError { error: "server_error", description: "internal error" },
            )
        }
    }
}
