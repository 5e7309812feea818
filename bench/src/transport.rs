//! T1 transport figures for the home-feed screen (deterministic byte counts, not timings):
//! request bytes with a persisted id vs the full query text, response bytes raw vs gzip vs br
//! vs zstd, and the requests and body bytes of a cold and a warm app open (APQ over GET with
//! `If-None-Match`).

use anyhow::Context;
use hyper::{
    StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The home screen's query, as checked in (also the network simulation's app open).
pub(crate) const HOME_FEED: &str = include_str!("../../playground/queries/HomeFeed.graphql");

use crate::{
    http::{self, RequestSpec},
    server::Server,
};

/// One exchange of an app-open flow.
pub struct Step {
    /// What the client did.
    pub what: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Bytes of the request line's target plus body.
    pub request_bytes: usize,
    /// Response body bytes on the wire.
    pub response_bytes: usize,
}

/// The figures.
pub struct TransportReport {
    /// (form, request bytes).
    pub request_forms: Vec<(&'static str, usize)>,
    /// (encoding, response body bytes).
    pub encodings: Vec<(&'static str, usize)>,
    /// Cold open (first launch after install).
    pub cold: Vec<Step>,
    /// Warm open (nothing changed).
    pub warm: Vec<Step>,
}

/// Lower-case hex, as APQ ids are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn get(path: String, token: &str, extra: &[(HeaderName, &str)]) -> anyhow::Result<RequestSpec> {
    let mut spec = RequestSpec::get(&path);
    spec.headers.push((header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?));
    spec.headers.push((header::ACCEPT_ENCODING, HeaderValue::from_static("br")));
    for (name, value) in extra {
        spec.headers.push((name.clone(), HeaderValue::from_str(value)?));
    }
    Ok(spec)
}

/// `a=…&b=…`, form-encoded.
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Measures against the running product.
pub async fn measure(product: &Server, token: &str) -> anyhow::Result<TransportReport> {
    let hash = hex(&Sha256::digest(HOME_FEED.as_bytes()));
    let variables = json!({ "first": 20 }).to_string();
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string();
    let full_body = json!({ "query": HOME_FEED, "variables": { "first": 20 } });
    let hash_body =
        json!({ "extensions": serde_json::from_str::<serde_json::Value>(&extensions)?, "variables": { "first": 20 } });
    let full_get =
        format!("/graphql?{}", query_string(&[("query", HOME_FEED.to_owned()), ("variables", variables.clone())]));
    let hash_get =
        format!("/graphql?{}", query_string(&[("extensions", extensions.clone()), ("variables", variables)]));
    let request_forms = vec![
        ("POST body, full query text", serde_json::to_vec(&full_body)?.len()),
        ("POST body, persisted id", serde_json::to_vec(&hash_body)?.len()),
        ("GET URL, full query text", full_get.len()),
        ("GET URL, persisted id", hash_get.len()),
    ];

    // Cold open: the id is unknown, the client sends the text once (Apollo's APQ link).
    let mut cold = Vec::new();
    let (status, _, body) = http::exchange_once(product.addr, &get(hash_get.clone(), token, &[])?).await?;
    cold.push(Step {
        what: "GET id only → PersistedQueryNotFound",
        status: status.as_u16(),
        request_bytes: hash_get.len(),
        response_bytes: body.len(),
    });
    let mut register = RequestSpec::post_json(
        "/graphql",
        &json!({ "query": HOME_FEED, "extensions": serde_json::from_str::<serde_json::Value>(&extensions)?, "variables": { "first": 20 } }),
        Some(token),
    )?;
    register.headers.push((header::ACCEPT_ENCODING, HeaderValue::from_static("br")));
    let (status, _, body) = http::exchange_once(product.addr, &register).await?;
    anyhow::ensure!(status == StatusCode::OK, "APQ registration answered {status}");
    cold.push(Step {
        what: "POST id + text → 200",
        status: status.as_u16(),
        request_bytes: register.body.len(),
        response_bytes: body.len(),
    });

    // Encodings of the same response (GET by id).
    let mut encodings = Vec::new();
    let mut etag = String::new();
    for encoding in ["identity", "gzip", "br", "zstd"] {
        let mut spec = get(hash_get.clone(), token, &[])?;
        spec.headers.retain(|(n, _)| n != header::ACCEPT_ENCODING);
        spec.headers.push((header::ACCEPT_ENCODING, HeaderValue::from_static(encoding)));
        let (status, headers, body) = http::exchange_once(product.addr, &spec).await?;
        anyhow::ensure!(status == StatusCode::OK, "GET by id with {encoding} answered {status}");
        etag = headers.get(header::ETAG).context("no ETag")?.to_str()?.to_owned();
        encodings.push((encoding, body.len()));
    }

    // Warm open: the id is known and the app has the last response and its ETag.
    let warm_spec = get(hash_get.clone(), token, &[(header::IF_NONE_MATCH, etag.as_str())])?;
    let (status, _, body) = http::exchange_once(product.addr, &warm_spec).await?;
    anyhow::ensure!(status == StatusCode::NOT_MODIFIED, "warm open answered {status}");
    let warm = vec![Step {
        what: "GET id + If-None-Match → 304",
        status: status.as_u16(),
        request_bytes: hash_get.len(),
        response_bytes: body.len(),
    }];
    Ok(TransportReport { request_forms, encodings, cold, warm })
}

impl TransportReport {
    /// The markdown section.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "#### T1 transport (HomeFeed, first: 20, as @alice)\n\n| request form | bytes |\n|---|---:|\n",
        );
        for (form, bytes) in &self.request_forms {
            out.push_str(&format!("| {form} | {bytes} |\n"));
        }
        out.push_str("\n| response encoding | body bytes |\n|---|---:|\n");
        let raw = self.encodings.first().map(|e| e.1).unwrap_or(1).max(1);
        for (encoding, bytes) in &self.encodings {
            out.push_str(&format!("| {encoding} | {bytes} ({:.0} % of raw) |\n", *bytes as f64 * 100.0 / raw as f64));
        }
        out.push_str(
            "\n| app open | step | status | request bytes | response body bytes |\n|---|---|---:|---:|---:|\n",
        );
        for (name, steps) in [("cold (first launch)", &self.cold), ("warm (nothing changed)", &self.warm)] {
            for step in steps.iter() {
                out.push_str(&format!(
                    "| {name} | {} | {} | {} | {} |\n",
                    step.what, step.status, step.request_bytes, step.response_bytes
                ));
            }
            let total: usize = steps.iter().map(|s| s.response_bytes).sum();
            out.push_str(&format!("| {name} | **total: {} request(s)** | | | **{total}** |\n", steps.len()));
        }
        out
    }
}
