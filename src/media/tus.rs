//! tus 1.0 at `/uploads/` (core, `creation`, `creation-with-upload`, `termination`,
//! `expiration`, `checksum` with sha1 and sha256) and the signed single `PUT`.
//!
//! Every request but `OPTIONS` needs `Authorization: Bearer <access token>` (the signed `PUT`
//! carries its signature instead) and `Tus-Resumable: 1.0.0` (412 otherwise); an upload is
//! visible only to its owner (404 for anyone else). A `PATCH` streams its body into a staged
//! part of its own, fsyncs it, then advances the offset by compare-and-set in the database:
//! two `PATCH`es at one offset both write, one commits, the other gets 409 and its part is
//! deleted — nothing is locked, so a connection that died mid-chunk blocks nothing, and a
//! server killed mid-chunk leaves the committed offset intact (the resume re-sends that chunk
//! only). A body cut off early commits the bytes that arrived (unless a checksum was sent:
//! then nothing can be verified and the chunk is dropped).

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{options, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use futures_util::StreamExt;
use sha1::Digest;

use crate::{
    app::App,
    kernel::{hooks::Credentials, hooks::Verifier, jobs::now_ms},
    media::{
        MediaError,
        entities::media_object,
        error::TUS_VERSION,
        graphql::api_base,
        metadata,
        store::{self, status},
        uploads::{self, NewUpload, Purpose},
    },
};

/// `/uploads/` and `/uploads/{id}`.
pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/uploads", post(create).options(discover))
        .route("/uploads/", post(create).options(discover))
        .route(
            "/uploads/{id}",
            options(discover).head(offset).patch(patch).delete(terminate).post(overridden).put(put_signed),
        )
        .with_state(app)
}

type Result<T> = std::result::Result<T, MediaError>;

fn base_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn respond(result: Result<Response>) -> Response {
    match result {
        Ok(mut response) => {
            base_headers(&mut response);
            response
        }
        Err(err) => err.into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn check_version(headers: &HeaderMap) -> Result<()> {
    match header_str(headers, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(MediaError::TusVersion),
    }
}

async fn authenticate(app: &Arc<App>, headers: &HeaderMap) -> Result<i64> {
    let Some(credentials) = header_str(headers, "authorization") else {
        return Err(MediaError::Unauthenticated("send Authorization: Bearer <access token>".into()));
    };
    let verifier = crate::auth::BearerVerifier(app.clone());
    let session = verifier.verify(credentials, Credentials::Header).await.map_err(|failure| match failure {
        crate::kernel::hooks::AuthFailure::Internal => {
            MediaError::Storage(std::io::Error::other("the revocation check failed"))
        }
        other => MediaError::Unauthenticated(other.to_string()),
    })?;
    session.viewer.user_id.ok_or_else(|| MediaError::Unauthenticated("send an access token".into()))
}

/// A non-negative decimal header value with nothing else in it.
fn strict_u64(value: Option<&str>, name: &str) -> Result<u64> {
    let value = value.ok_or_else(|| MediaError::invalid(format!("{name} is required")))?;
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MediaError::invalid(format!("{name} must be a non-negative integer")));
    }
    value.parse().map_err(|_| MediaError::invalid(format!("{name} must be a non-negative integer")))
}

fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn upload_state(response: &mut Response, row: &media_object::Model) {
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(row.offset_bytes));
    if row.status == status::UPLOADING
        && let Ok(value) = HeaderValue::from_str(&http_date(row.expires_at_ms))
    {
        headers.insert("upload-expires", value);
    }
}

/// `OPTIONS`: what this server supports (no credentials needed).
async fn discover(State(app): State<Arc<App>>) -> Response {
    let settings = &app.settings.media;
    let mut response = StatusCode::NO_CONTENT.into_response();
    base_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert(
        "tus-extension",
        HeaderValue::from_static("creation,creation-with-upload,termination,expiration,checksum"),
    );
    headers.insert("tus-max-size", HeaderValue::from(settings.max_image_bytes.max(settings.max_video_bytes)));
    headers.insert("tus-checksum-algorithm", HeaderValue::from_static("sha1,sha256"));
    response
}

/// A chunk's declared checksum.
enum Checksum {
    Sha1(Vec<u8>, sha1::Sha1),
    Sha256(Vec<u8>, sha2::Sha256),
}

impl Checksum {
    fn parse(headers: &HeaderMap) -> Result<Option<Self>> {
        let Some(value) = header_str(headers, "upload-checksum") else { return Ok(None) };
        let (algorithm, digest) = value
            .split_once(' ')
            .ok_or_else(|| MediaError::invalid("Upload-Checksum must be `<algorithm> <base64 digest>`"))?;
        let digest = STANDARD
            .decode(digest.trim())
            .map_err(|_| MediaError::invalid("Upload-Checksum's digest is not base64"))?;
        match algorithm {
            "sha1" if digest.len() == 20 => Ok(Some(Self::Sha1(digest, sha1::Sha1::new()))),
            "sha256" if digest.len() == 32 => Ok(Some(Self::Sha256(digest, sha2::Sha256::new()))),
            "sha1" | "sha256" => Err(MediaError::invalid("Upload-Checksum's digest has the wrong length")),
            _ => Err(MediaError::invalid("Upload-Checksum algorithm must be sha1 or sha256")),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha1(_, hash) => hash.update(bytes),
            Self::Sha256(_, hash) => hash.update(bytes),
        }
    }

    fn matches(self) -> bool {
        match self {
            Self::Sha1(expected, hash) => hash.finalize()[..] == expected[..],
            Self::Sha256(expected, hash) => hash.finalize()[..] == expected[..],
        }
    }
}

/// Streams `body` into a new staged part of `row` at its offset, at most `limit` bytes, and
/// commits it. Returns the upload as it is afterwards.
async fn receive(
    app: &Arc<App>,
    row: &media_object::Model,
    body: Body,
    limit: u64,
    mut checksum: Option<Checksum>,
) -> Result<media_object::Model> {
    let storage = &app.media.storage;
    let part = format!("{:020}-{}", row.offset_bytes, uuid::Uuid::new_v4().simple());
    let mut writer = storage.stage_part(&row.upload_id, &part).await?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut interrupted = false;
    let outcome: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                interrupted = true;
                break;
            };
            let len = chunk.len() as u64;
            if received + len > limit {
                return Err(too_much(row, limit));
            }
            if let Some(checksum) = checksum.as_mut() {
                checksum.update(&chunk);
            }
            writer.write(&chunk).await?;
            received += len;
        }
        Ok(())
    }
    .await;
    let discard = || async { storage.discard_part(&row.upload_id, &part).await };
    if let Err(err) = outcome {
        drop(writer);
        discard().await?;
        return Err(err);
    }
    writer.finish().await?;
    let verified = match checksum {
        None => true,
        Some(_) if interrupted => {
            discard().await?;
            return Err(MediaError::invalid("the chunk was cut off before its end; nothing was kept"));
        }
        Some(checksum) => checksum.matches(),
    };
    if !verified {
        discard().await?;
        return Err(MediaError::ChecksumMismatch);
    }
    if received == 0 {
        discard().await?;
        return store::by_id(app.db.conn(), row.id).await?.ok_or(MediaError::NotFound("upload"));
    }
    let length = i64::try_from(received).unwrap_or(i64::MAX);
    let tx = app.db.begin_write().await?;
    let committed = store::commit_part(&*tx, row.id, row.offset_bytes, length, &part).await?;
    tx.commit().await?;
    if !committed {
        discard().await?;
        let current = store::by_id(app.db.conn(), row.id).await?.ok_or(MediaError::NotFound("upload"))?;
        return Err(MediaError::OffsetMismatch { sent: row.offset_bytes, current: current.offset_bytes });
    }
    let after = store::by_id(app.db.conn(), row.id).await?.ok_or(MediaError::NotFound("upload"))?;
    if interrupted {
        tracing::info!(upload = %row.upload_id, received, "a chunk was cut off; the bytes that arrived were kept");
    }
    app.media.finisher(app).finish(&after).await
}

fn too_much(row: &media_object::Model, limit: u64) -> MediaError {
    let remaining = u64::try_from(row.size_bytes.saturating_sub(row.offset_bytes)).unwrap_or(0);
    MediaError::QuotaExceeded {
        message: format!("this request may carry at most {limit} more bytes (Upload-Length is {})", row.size_bytes),
        max_size_bytes: limit,
        remaining_quota: remaining,
    }
}

/// The most bytes one request may add to `row`.
fn chunk_limit(app: &App, row: &media_object::Model) -> u64 {
    let remaining = u64::try_from(row.size_bytes.saturating_sub(row.offset_bytes)).unwrap_or(0);
    remaining.min(app.settings.media.max_chunk_bytes)
}

fn check_body_type(headers: &HeaderMap) -> Result<()> {
    let is_offset_stream = header_str(headers, "content-type").is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/offset+octet-stream"))
    });
    if is_offset_stream { Ok(()) } else { Err(MediaError::ContentType) }
}

fn declared_too_long(headers: &HeaderMap, row: &media_object::Model, limit: u64) -> Result<()> {
    if let Some(length) = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(too_much(row, limit));
    }
    Ok(())
}

/// `POST /uploads/`: creation (and creation-with-upload when a body is sent).
async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    respond(create_upload(&app, &headers, body).await)
}

async fn create_upload(app: &Arc<App>, headers: &HeaderMap, body: Body) -> Result<Response> {
    check_version(headers)?;
    let user = authenticate(app, headers).await?;
    if headers.contains_key("upload-defer-length") {
        return Err(MediaError::invalid("Upload-Defer-Length is not supported: send Upload-Length"));
    }
    let size = strict_u64(header_str(headers, "upload-length"), "Upload-Length")?;
    let meta = metadata::parse(header_str(headers, "upload-metadata").unwrap_or_default())?;
    let text = |key: &str| meta.get(key).map(|v| String::from_utf8_lossy(v).into_owned());
    let purpose = match text("purpose") {
        Some(p) => Purpose::parse(&p).ok_or_else(|| MediaError::invalid("metadata purpose must be post or avatar"))?,
        None => Purpose::Post,
    };
    let new = NewUpload {
        filename: text("filename").ok_or_else(|| MediaError::invalid("Upload-Metadata needs filename"))?,
        mime_type: text("filetype")
            .or_else(|| text("mimeType"))
            .ok_or_else(|| MediaError::invalid("Upload-Metadata needs filetype (the MIME type)"))?,
        size_bytes: size,
        sha256: text("sha256"),
        purpose,
    };
    let row = uploads::create(&app.db, &app.settings.media, &app.settings.idempotency, user, new, None).await?;
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || header_str(headers, "content-length").is_some_and(|len| len != "0");
    let row = if has_body {
        check_body_type(headers)?;
        let limit = chunk_limit(app, &row);
        declared_too_long(headers, &row, limit)?;
        let checksum = Checksum::parse(headers)?;
        receive(app, &row, body, limit, checksum).await?
    } else {
        row
    };
    let mut response = StatusCode::CREATED.into_response();
    let location = format!("{}/uploads/{}", api_base(app), row.upload_id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    upload_state(&mut response, &row);
    Ok(response)
}

/// `HEAD /uploads/{id}`: the committed offset.
async fn offset(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(head_upload(&app, &id, &headers).await)
}

async fn head_upload(app: &Arc<App>, id: &str, headers: &HeaderMap) -> Result<Response> {
    check_version(headers)?;
    let user = authenticate(app, headers).await?;
    let row = uploads::owned(&app.db, user, id).await?;
    // A server stopped between the last part and finishing left it complete but unfinished.
    let row = app.media.finisher(app).finish(&row).await?;
    let mut response = StatusCode::OK.into_response();
    upload_state(&mut response, &row);
    response.headers_mut().insert("upload-length", HeaderValue::from(row.size_bytes));
    Ok(response)
}

/// `PATCH /uploads/{id}`: appends a chunk at `Upload-Offset`.
async fn patch(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    respond(patch_upload(&app, &id, &headers, body).await)
}

async fn patch_upload(app: &Arc<App>, id: &str, headers: &HeaderMap, body: Body) -> Result<Response> {
    check_version(headers)?;
    let user = authenticate(app, headers).await?;
    check_body_type(headers)?;
    let sent = strict_u64(header_str(headers, "upload-offset"), "Upload-Offset")?;
    let checksum = Checksum::parse(headers)?;
    let row = uploads::owned(&app.db, user, id).await?;
    let sent = i64::try_from(sent).unwrap_or(i64::MAX);
    if sent != row.offset_bytes {
        return Err(MediaError::OffsetMismatch { sent, current: row.offset_bytes });
    }
    let row = if row.offset_bytes == row.size_bytes {
        declared_too_long(headers, &row, 0)?;
        app.media.finisher(app).finish(&row).await?
    } else {
        let limit = chunk_limit(app, &row);
        declared_too_long(headers, &row, limit)?;
        receive(app, &row, body, limit, checksum).await?
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    upload_state(&mut response, &row);
    Ok(response)
}

/// `DELETE /uploads/{id}`: termination (refused once the upload is attached to a post).
async fn terminate(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(delete_upload(&app, &id, &headers).await)
}

async fn delete_upload(app: &Arc<App>, id: &str, headers: &HeaderMap) -> Result<Response> {
    check_version(headers)?;
    let user = authenticate(app, headers).await?;
    let row = match uploads::owned(&app.db, user, id).await {
        Err(MediaError::Expired) => {
            store::by_upload_id(app.db.conn(), id).await?.ok_or(MediaError::NotFound("upload"))?
        }
        other => other?,
    };
    if row.attached_at_ms.is_some() {
        return Err(MediaError::Domain(crate::kernel::error::DomainError::Conflict(
            "the upload is attached to a post; delete the post instead",
        )));
    }
    app.media.finisher(app).remove(&row).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /uploads/{id}` with `X-HTTP-Method-Override: PATCH | DELETE | HEAD` (for clients
/// and proxies that only speak `GET` and `POST`).
async fn overridden(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match header_str(&headers, "x-http-method-override").map(str::to_ascii_uppercase).as_deref() {
        Some("PATCH") => respond(patch_upload(&app, &id, &headers, body).await),
        Some("DELETE") => respond(delete_upload(&app, &id, &headers).await),
        Some("HEAD") => respond(head_upload(&app, &id, &headers).await),
        _ => crate::kernel::http::errors::method_not_allowed().await,
    }
}

/// The query of a signed `PUT` URL.
struct Signed {
    expires: i64,
    signature: String,
}

impl Signed {
    fn parse(query: &str) -> Option<Self> {
        let (mut expires, mut signature) = (None, None);
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "expires" => expires = value.parse().ok(),
                "signature" => signature = Some(value.into_owned()),
                _ => return None,
            }
        }
        Some(Self { expires: expires?, signature: signature? })
    }
}

/// `PUT /uploads/{id}?expires=…&signature=…`: the whole file in one request (`createUpload`'s
/// `putUrl`); `Content-Length` must be the declared size.
async fn put_signed(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let signed = query.as_deref().and_then(Signed::parse);
    match put_upload(&app, &id, signed, &headers, body).await {
        Ok(row) => {
            let body = serde_json::json!({ "uploadId": row.upload_id, "status": row.status.to_ascii_uppercase(),
                "receivedBytes": row.offset_bytes });
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn put_upload(
    app: &Arc<App>,
    id: &str,
    signed: Option<Signed>,
    headers: &HeaderMap,
    body: Body,
) -> Result<media_object::Model> {
    let unsigned = || MediaError::Unauthenticated("this URL is not signed for this upload, or has expired".into());
    let signed = signed.ok_or_else(unsigned)?;
    let row = store::by_upload_id(app.db.conn(), id).await?.ok_or_else(unsigned)?;
    if !app.media.signer.verify(&row.upload_id, row.size_bytes, signed.expires, &signed.signature)
        || signed.expires < now_ms() / 1000
    {
        return Err(unsigned());
    }
    let length = strict_u64(header_str(headers, "content-length"), "Content-Length")?;
    if i64::try_from(length).ok() != Some(row.size_bytes) {
        let size = u64::try_from(row.size_bytes).unwrap_or(0);
        return Err(if length > size {
            too_much(&row, size)
        } else {
            MediaError::invalid(format!("Content-Length must be the declared size, {size}"))
        });
    }
    if row.status != status::UPLOADING || row.offset_bytes != 0 {
        return Err(MediaError::Complete);
    }
    let size = u64::try_from(row.size_bytes).unwrap_or(0);
    let after = receive(app, &row, body, size, None).await?;
    if after.offset_bytes != row.size_bytes {
        return Err(MediaError::invalid("the body ended before Content-Length bytes; resume it with tus"));
    }
    Ok(after)
}
