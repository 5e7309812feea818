//! Serving variants at `/media/<sha256>/<width>.<jpg|webp>` (a fixed encoding) and
//! `/media/<sha256>/<width>` (negotiated by `Accept`, with `Vary: Accept`): `GET` and `HEAD`,
//! one byte range (`206` with `Content-Range`, `416` when unsatisfiable; several ranges get
//! the whole file), a strong `ETag` with `If-None-Match` (`304`) and `If-Range`, and
//! `Cache-Control: public, max-age=31536000, immutable` — a variant URL names its content,
//! so it never changes. Variants are re-encoded pixels: they carry no metadata of the upload.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    app::App,
    media::{
        MediaError,
        variants::{self, Encoding},
    },
};

/// `/media/{hash}/{file}`.
pub fn routes(app: Arc<App>) -> Router {
    Router::new().route("/media/{hash}/{file}", get(serve)).with_state(app)
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What `Range` asks for, against an object of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The whole object (no `Range`, or one this server answers with everything).
    All,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing satisfiable (416).
    Unsatisfiable,
}

/// Parses a `Range` header for an object of `len` bytes (one `bytes=` range).
pub fn wanted(range: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else { return Wanted::All };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Wanted::All };
    let number = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (first.trim(), last.trim()) {
        ("", "") => Wanted::All,
        ("", suffix) => match number(suffix) {
            Some(0) => Wanted::Unsatisfiable,
            Some(n) if len > 0 => Wanted::Part(len.saturating_sub(n), len - 1),
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::All,
        },
        (start, end) => match (number(start), if end.is_empty() { Some(None) } else { number(end).map(Some) }) {
            (Some(start), Some(_)) if start >= len => Wanted::Unsatisfiable,
            (Some(start), Some(None)) => Wanted::Part(start, len - 1),
            (Some(start), Some(Some(end))) if end >= start => Wanted::Part(start, end.min(len - 1)),
            _ => Wanted::All,
        },
    }
}

async fn serve(
    State(app): State<Arc<App>>,
    Path((hash, file)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match respond(&app, &hash, &file, &method, &headers).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn respond(
    app: &App,
    hash: &str,
    file: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, MediaError> {
    let not_found = MediaError::NotFound("media");
    if !variants::is_hash(hash) {
        return Err(not_found);
    }
    let (width, encoding, negotiated) = match file.split_once('.') {
        Some((width, ext)) => (width, Encoding::from_extension(ext).ok_or(MediaError::NotFound("media"))?, false),
        None => {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            (file, Encoding::negotiate(accept), true)
        }
    };
    if width.is_empty() || width.len() > 5 || !width.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_found);
    }
    let width: u32 = width.parse().map_err(|_| MediaError::NotFound("media"))?;
    let key = variants::key(hash, width, encoding);
    let storage = &app.media.storage;
    let len = storage.stat(&key).await?.ok_or(not_found)?;
    let etag = format!("\"{hash}-{width}.{}\"", encoding.extension());
    let mut response = Response::new(Body::empty());
    {
        let out = response.headers_mut();
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.mime()));
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        out.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        if let Ok(value) = HeaderValue::from_str(&etag) {
            out.insert(header::ETAG, value);
        }
        if negotiated {
            out.insert(header::VARY, HeaderValue::from_static("Accept"));
        }
    }
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if header(header::IF_NONE_MATCH).is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(response);
    }
    let range_applies = header(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag);
    let range = if range_applies { wanted(header(header::RANGE), len) } else { Wanted::All };
    let (start, count) = match range {
        Wanted::All => (0, len),
        Wanted::Part(start, end) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            (start, end - start + 1)
        }
        Wanted::Unsatisfiable => {
            let mut refused =
                MediaError::invalid(format!("the range is outside the {len} bytes of this file")).into_response();
            *refused.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            refused.headers_mut().remove("tus-resumable");
            return Ok(refused);
        }
    };
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if method != Method::HEAD {
        let stream = storage.read_range(&key, start, count).await?;
        *response.body_mut() = Body::from_stream(stream);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-9"), 100), Wanted::Part(0, 9));
        assert_eq!(wanted(Some("bytes=90-"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-500"), 100), Wanted::Part(0, 99));
        assert_eq!(wanted(Some("bytes=50-5000"), 100), Wanted::Part(50, 99));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=9-3"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::All);
    }
}
