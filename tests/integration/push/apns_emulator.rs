//! An APNs emulator on loopback: HTTP/2 over TLS (rustls, with a certificate for 127.0.0.1
//! issued by an rcgen test CA that the server trusts through `push.apns.ca_file`). It checks
//! what Apple checks — HTTP/2, the ES256 provider token's signature (with the key's public
//! half), `kid`, `iss` and age, the `apns-*` headers and the 4096-byte payload limit — records
//! every request, and answers by script per device token.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Version},
    response::{IntoResponse, Response},
    routing::post,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// How the emulator answers for a token.
#[derive(Clone, Debug)]
pub enum Script {
    /// `400 BadDeviceToken`.
    BadDeviceToken,
    /// `410 Unregistered` with this `timestamp` (ms).
    Gone(i64),
    /// `413 PayloadTooLarge`.
    PayloadTooLarge,
    /// `429 TooManyRequests` with `Retry-After` (seconds) the first `n` times, then 200.
    TooMany { retry_after: u64, times: usize },
    /// `500 InternalServerError` the first `n` times, then 200.
    Failing { times: usize },
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The device token from the path.
    pub token: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
    /// The status answered.
    pub status: u16,
    /// The provider token.
    pub jwt: String,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    scripts: HashMap<String, Script>,
    served: HashMap<String, usize>,
    /// Provider tokens issued before this (seconds) are expired.
    expired_before: i64,
    jwts: HashSet<String>,
}

/// A running emulator.
#[derive(Clone)]
pub struct ApnsEmulator {
    /// `https://127.0.0.1:port`.
    pub url: String,
    /// The CA certificate (PEM) to trust.
    pub ca_pem: String,
    inner: Arc<Mutex<Inner>>,
    config: Arc<Config>,
}

struct Config {
    public_key: DecodingKey,
    key_id: String,
    team_id: String,
    topic: String,
}

impl ApnsEmulator {
    /// Starts an emulator that accepts tokens signed by `public_key_pem` for key `key_id` of
    /// team `team_id` and the app `topic`.
    pub async fn start(public_key_pem: &str, key_id: &str, team_id: &str, topic: &str) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "mobile-bff test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("leaf params");
        // Issued by a CA: rustls refuses a self-signed end-entity certificate as its own root.
        let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        // Apple speaks HTTP/2 only.
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let config = Arc::new(Config {
            public_key: DecodingKey::from_ec_pem(public_key_pem.as_bytes()).expect("public key"),
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            topic: topic.to_owned(),
        });
        let emulator =
            Self { url: String::new(), ca_pem: ca.pem(), inner: Arc::new(Mutex::new(Inner::default())), config };
        let router = Router::new().route("/3/device/{token}", post(deliver)).with_state(emulator.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let rustls_config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
        let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls_config);
        tokio::spawn(async move {
            let _ = server.serve(router.into_make_service()).await;
        });
        Self { url: format!("https://{addr}"), ..emulator }
    }

    /// Answers requests for `token` by `script`.
    pub fn script(&self, token: &str, script: Script) {
        self.lock().scripts.insert(token.to_owned(), script);
    }

    /// Provider tokens issued before `seconds` are answered `403 ExpiredProviderToken`.
    pub fn expire_tokens_issued_before(&self, seconds: i64) {
        self.lock().expired_before = seconds;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Distinct provider tokens seen.
    pub fn distinct_jwts(&self) -> usize {
        self.lock().jwts.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "reason": reason }).to_string()).into_response()
}

/// The checks of one request; `Err` is the refusal APNs would send.
fn check(
    config: &Config,
    version: Version,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, i64), (StatusCode, &'static str)> {
    if version != Version::HTTP_2 {
        return Err((StatusCode::BAD_REQUEST, "HTTP2Required"));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let authorization = header("authorization");
    let jwt =
        authorization.strip_prefix("bearer ").or_else(|| authorization.strip_prefix("Bearer ")).unwrap_or_default();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<Value>(jwt, &config.public_key, &validation)
        .map_err(|_| (StatusCode::FORBIDDEN, "InvalidProviderToken"))?;
    let iat = decoded.claims["iat"].as_i64().unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if decoded.header.kid.as_deref() != Some(&config.key_id)
        || decoded.claims["iss"] != json!(config.team_id)
        || iat > now + 60
    {
        return Err((StatusCode::FORBIDDEN, "InvalidProviderToken"));
    }
    if now - iat > 3600 {
        return Err((StatusCode::FORBIDDEN, "ExpiredProviderToken"));
    }
    let push_type = header("apns-push-type");
    let priority = header("apns-priority");
    if header("apns-topic") != config.topic {
        return Err((StatusCode::BAD_REQUEST, "BadTopic"));
    }
    match (push_type.as_str(), priority.as_str()) {
        ("alert", "10" | "5") | ("background", "5") => {}
        ("background", _) => return Err((StatusCode::BAD_REQUEST, "BadPriority")),
        _ => return Err((StatusCode::BAD_REQUEST, "InvalidPushType")),
    }
    if header("apns-expiration").parse::<i64>().is_err() {
        return Err((StatusCode::BAD_REQUEST, "BadExpirationDate"));
    }
    if uuid::Uuid::parse_str(&header("apns-id")).is_err() {
        return Err((StatusCode::BAD_REQUEST, "BadMessageId"));
    }
    if header("apns-collapse-id").len() > 64 {
        return Err((StatusCode::BAD_REQUEST, "BadCollapseId"));
    }
    if body.len() > 4096 {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"));
    }
    Ok((jwt.to_owned(), iat))
}

async fn deliver(
    State(emulator): State<ApnsEmulator>,
    Path(token): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let checked = check(&emulator.config, version, &headers, &body);
    let mut inner = emulator.lock();
    let jwt = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    inner.jwts.insert(jwt.clone());
    let response = match checked {
        Err((status, reason)) => refuse(status, reason),
        Ok((_, iat)) if iat < inner.expired_before => refuse(StatusCode::FORBIDDEN, "ExpiredProviderToken"),
        Ok(_) => {
            let served = inner.served.entry(token.clone()).or_default();
            *served += 1;
            let n = *served;
            match inner.scripts.get(&token).cloned() {
                Some(Script::BadDeviceToken) => refuse(StatusCode::BAD_REQUEST, "BadDeviceToken"),
                Some(Script::Gone(timestamp)) => (
                    StatusCode::GONE,
                    [("content-type", "application/json")],
                    json!({ "reason": "Unregistered", "timestamp": timestamp }).to_string(),
                )
                    .into_response(),
                Some(Script::PayloadTooLarge) => refuse(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
                Some(Script::TooMany { retry_after, times }) if n <= times => {
                    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
                    response.headers_mut().insert("retry-after", retry_after.into());
                    response
                }
                Some(Script::Failing { times }) if n <= times => {
                    refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")
                }
                _ => {
                    let id = headers.get("apns-id").cloned().unwrap_or_else(|| "none".parse().expect("value"));
                    (StatusCode::OK, [("apns-id", id)]).into_response()
                }
            }
        }
    };
    inner.received.push(Received {
        token,
        headers,
        body: json,
        status: response.status().as_u16(),
        jwt: jwt.trim_start_matches("bearer ").to_owned(),
    });
    response
}
