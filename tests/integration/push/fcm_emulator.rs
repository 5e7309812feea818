//! An FCM HTTP v1 emulator on loopback: the OAuth token endpoint (verifying the RS256
//! JWT-bearer assertion with the service account's public key; `expires_in` set by the test)
//! and `messages:send` (checking the access token, the message shape and string data values),
//! answering by script per registration token with FCM's error format.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// How the emulator answers for a registration token.
#[derive(Clone, Debug)]
pub enum Script {
    /// `404 NOT_FOUND` / `UNREGISTERED`.
    Unregistered,
    /// `400 INVALID_ARGUMENT` about the token.
    InvalidToken,
    /// `429 QUOTA_EXCEEDED` with `Retry-After` the first time, then 200.
    Quota { retry_after: u64 },
}

/// One `messages:send` request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The `message` object.
    pub message: Value,
    /// The access token used.
    pub access_token: String,
    /// Status answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    scripts: HashMap<String, Script>,
    served: HashMap<String, usize>,
    issued: HashMap<String, Instant>,
    token_requests: usize,
    expires_in: u64,
}

/// A running emulator.
#[derive(Clone)]
pub struct FcmEmulator {
    /// `http://127.0.0.1:port`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    public_key: Arc<DecodingKey>,
    client_email: Arc<str>,
}

impl FcmEmulator {
    /// Starts an emulator accepting assertions signed by `public_key_pem` from `client_email`.
    pub async fn start(public_key_pem: &str, client_email: &str, expires_in: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let emulator = Self {
            url: format!("http://{addr}"),
            inner: Arc::new(Mutex::new(Inner { expires_in, ..Default::default() })),
            public_key: Arc::new(DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("public key")),
            client_email: client_email.into(),
        };
        let router = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(emulator.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        emulator
    }

    /// Answers requests for `token` by `script`.
    pub fn script(&self, token: &str, script: Script) {
        self.lock().scripts.insert(token.to_owned(), script);
    }

    /// Requests so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Access tokens issued so far.
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn error(status: StatusCode, state: &str, code: Option<&str>, message: &str) -> Response {
    let mut details = vec![];
    if let Some(code) = code {
        details.push(json!({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code }));
    }
    let body = json!({ "error": { "code": status.as_u16(), "message": message, "status": state, "details": details } });
    (status, Json(body)).into_response()
}

async fn token(State(emulator): State<FcmEmulator>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "unsupported_grant_type" }))).into_response();
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", emulator.url)]);
    validation.set_issuer(&[&*emulator.client_email]);
    validation.required_spec_claims = HashSet::from(["exp".to_owned(), "iat".to_owned(), "aud".to_owned()]);
    let assertion = form.get("assertion").map(String::as_str).unwrap_or_default();
    let Ok(decoded) = jsonwebtoken::decode::<Value>(assertion, &emulator.public_key, &validation) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    };
    if decoded.claims["scope"] != json!("https://www.googleapis.com/auth/firebase.messaging") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_scope" }))).into_response();
    }
    let mut inner = emulator.lock();
    inner.token_requests += 1;
    let access = format!("ya29.test-{}", inner.token_requests);
    inner.issued.insert(access.clone(), Instant::now());
    let expires_in = inner.expires_in;
    Json(json!({ "access_token": access, "expires_in": expires_in, "token_type": "Bearer" })).into_response()
}

fn check_message(message: &Value) -> Result<(), &'static str> {
    let android = &message["android"];
    if !matches!(android["priority"].as_str(), Some("HIGH" | "NORMAL")) {
        return Err("android.priority must be HIGH or NORMAL");
    }
    if !android["ttl"].as_str().is_some_and(|t| t.ends_with('s')) {
        return Err("android.ttl must be a duration like 3600s");
    }
    if let Some(data) = message["data"].as_object()
        && data.values().any(|v| !v.is_string())
    {
        return Err("data values must be strings");
    }
    Ok(())
}

async fn send(
    State(emulator): State<FcmEmulator>,
    Path(_project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let access = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let message = body["message"].clone();
    let mut inner = emulator.lock();
    let lifetime = Duration::from_secs(inner.expires_in);
    let valid = inner.issued.get(&access).is_some_and(|at| at.elapsed() < lifetime);
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    let response = if !valid {
        error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None, "Request had invalid authentication credentials.")
    } else if let Err(problem) = check_message(&message) {
        error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), problem)
    } else {
        let served = inner.served.entry(token.clone()).or_default();
        *served += 1;
        let n = *served;
        match inner.scripts.get(&token).cloned() {
            Some(Script::Unregistered) => {
                error(StatusCode::NOT_FOUND, "NOT_FOUND", Some("UNREGISTERED"), "Requested entity was not found.")
            }
            Some(Script::InvalidToken) => error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                Some("INVALID_ARGUMENT"),
                "The registration token is not a valid FCM registration token",
            ),
            Some(Script::Quota { retry_after }) if n == 1 => {
                let mut response =
                    error(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), "quota");
                response.headers_mut().insert("retry-after", retry_after.into());
                response
            }
            _ => {
                Json(json!({ "name": format!("projects/test/messages/{}", inner.received.len() + 1) })).into_response()
            }
        }
    };
    inner.received.push(Received { message, access_token: access, status: response.status().as_u16() });
    response
}
