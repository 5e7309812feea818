//! Media against the real server: tus uploads (protocol rules, offsets, checksums,
//! interrupted and concurrent chunks), the signed `PUT`, quotas, processing (orientation,
//! metadata, limits, sniffing), serving (ranges, ETags, negotiation) and posts made from
//! uploads.

pub mod fixtures;
mod processing;
mod restart;
mod tus;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;

pub const UPLOAD_FIELDS: &str =
    "id status failureReason mimeType width height blurhash dominantColor receivedBytes sizeBytes";

/// `createUpload`; returns the body (data or errors).
pub async fn create_upload(server: &TestServer, token: &str, mime: &str, size: usize) -> Value {
    let query = format!(
        "mutation($input: CreateUploadInput!) {{ createUpload(input: $input) {{ upload {{ {UPLOAD_FIELDS} }} \
         putUrl putHeaders {{ name value }} putExpiresAt tusUrl tusHeaders {{ name value }} expiresAt }} }}"
    );
    let input = json!({ "filename": "photo.jpg", "mimeType": mime, "sizeBytes": size });
    server.gql(&query, json!({ "input": input }), Some(token)).await
}

/// A tus request to `url` with `Tus-Resumable` and the bearer token.
pub fn tus(server: &TestServer, method: Method, url: &str, token: &str) -> reqwest::RequestBuilder {
    let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", server.base) };
    server.client.request(method, url).header("tus-resumable", "1.0.0").bearer_auth(token)
}

/// `Upload-Metadata` for `pairs`.
pub fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k} {}", STANDARD.encode(v))).collect::<Vec<_>>().join(",")
}

/// Creates a tus upload of `size` bytes; returns its `Location`.
pub async fn tus_create(server: &TestServer, token: &str, size: usize, mime: &str) -> String {
    let response = tus(server, Method::POST, "/uploads/", token)
        .header("upload-length", size.to_string())
        .header("upload-metadata", metadata(&[("filename", "photo.jpg"), ("filetype", mime)]))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), StatusCode::CREATED, "{:?}", response.text().await);
    response.headers()["location"].to_str().expect("location").to_owned()
}

/// PATCHes `bytes` at `offset`; returns the response.
pub async fn tus_patch(
    server: &TestServer,
    token: &str,
    location: &str,
    offset: usize,
    bytes: Vec<u8>,
) -> reqwest::Response {
    tus(server, Method::PATCH, location, token)
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("patch")
}

/// The upload id in a tus `Location`.
pub fn upload_id(location: &str) -> String {
    location.rsplit('/').next().expect("segment").to_owned()
}

/// `upload(id:)` until it is `READY` or `FAILED` (bounded: 60 s, then panics).
pub async fn settled(server: &TestServer, token: &str, id: &str) -> Value {
    let query = format!(
        "query($id: String!) {{ upload(id: $id) {{ {UPLOAD_FIELDS} failureDetail \
        variants {{ width height url(format: JPEG) }} url(width: 100, dpr: 1.5) }} }}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let data = server.data(&query, json!({ "id": id }), Some(token)).await;
        let status = data["upload"]["status"].as_str().unwrap_or_default().to_owned();
        if status == "READY" || status == "FAILED" {
            return data["upload"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "upload never settled: {data}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads `bytes` through tus in one `PATCH`; returns the upload id.
pub async fn upload(server: &TestServer, token: &str, bytes: &[u8], mime: &str) -> String {
    let location = tus_create(server, token, bytes.len(), mime).await;
    let response = tus_patch(server, token, &location, 0, bytes.to_vec()).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "{:?}", response.text().await);
    upload_id(&location)
}

/// The media events in `token`'s log.
pub async fn media_events(server: &TestServer, token: &str) -> Vec<Value> {
    let query = "{ pollEvents(afterSeq: 0) { events { kind media { uploadId reason } } } }";
    let data = server.data(query, json!({}), Some(token)).await;
    data["pollEvents"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("MEDIA_")))
        .cloned()
        .collect()
}
