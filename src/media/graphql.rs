//! `createUpload` and `upload(id:)`: where and how to send a file's bytes, and the state of
//! one of the viewer's uploads.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    app::{App, app},
    kernel::{
        graphql::{context::viewer, error::DomainResultExt},
        validate,
    },
    media::{
        error::{MediaResultExt, TUS_VERSION},
        types::Upload,
        uploads::{self, NewUpload, Purpose},
    },
};

/// Input of `createUpload`.
#[derive(InputObject)]
pub struct CreateUploadInput {
    /// The file's name on the device (shown back; never a path on the server).
    pub filename: String,
    /// The declared type: `image/jpeg`, `image/png`, `image/gif`, `image/webp`, `image/heic`,
    /// `image/heif`, `image/avif`, `video/mp4`, `video/quicktime` or `video/webm`. It picks the
    /// size limit; the bytes decide how the file is processed.
    pub mime_type: String,
    /// The exact size in bytes.
    pub size_bytes: i32,
    /// SHA-256 of the whole file (hex): checked once every byte arrived (`CHECKSUM_MISMATCH`).
    pub sha256: Option<String>,
    /// What the file is for.
    #[graphql(default_with = "Purpose::Post")]
    pub purpose: Purpose,
    /// Client key making retries safe (8–128 chars of `[A-Za-z0-9_.:-]`, e.g. a UUID): a retry
    /// returns the same upload.
    pub idempotency_key: Option<String>,
}

/// An HTTP header to send.
#[derive(SimpleObject, Clone, Debug)]
pub struct HttpHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Where and how to send the bytes of a new upload.
#[derive(SimpleObject)]
pub struct CreateUploadPayload {
    /// The upload (its `id` is what `MediaInput.uploadId` takes).
    pub upload: Upload,
    /// A single `PUT` of the whole file here (no `Authorization` needed: the URL is signed
    /// for this upload, its exact size and until `putExpiresAt`).
    pub put_url: String,
    /// The headers that `PUT` must carry.
    pub put_headers: Vec<HttpHeader>,
    /// When `putUrl` stops working.
    pub put_expires_at: DateTime<Utc>,
    /// The tus 1.0 upload URL for resumable uploads (`HEAD` / `PATCH` with
    /// `Authorization: Bearer <access token>`; give it to a tus client as its upload URL).
    pub tus_url: String,
    /// The headers every tus request carries besides `Authorization`.
    pub tus_headers: Vec<HttpHeader>,
    /// When an unfinished upload expires.
    pub expires_at: DateTime<Utc>,
}

/// The base of the server's own URLs: `bootstrap.api_base_url`, else `public_base_url`, else
/// none (paths).
pub fn api_base(app: &App) -> &str {
    let settings = &app.settings;
    let base = if settings.bootstrap.api_base_url.is_empty() {
        &settings.public_base_url
    } else {
        &settings.bootstrap.api_base_url
    };
    base.trim_end_matches('/')
}

/// Media queries.
#[derive(Default)]
pub struct MediaQuery;

#[Object]
impl MediaQuery {
    /// One of the viewer's uploads, by id (null when there is none with that id).
    async fn upload(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Upload>> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        match uploads::owned(&app.db, user, id.trim()).await {
            Ok(row) => Ok(Some(Upload::from(row))),
            Err(crate::media::MediaError::NotFound(_) | crate::media::MediaError::Expired) => Ok(None),
            Err(err) => Err(err.into_graphql()),
        }
    }
}

/// Media mutations.
#[derive(Default)]
pub struct MediaMutation;

#[Object]
impl MediaMutation {
    /// Starts an upload: checks the file's size against its kind's limit and the viewer's
    /// remaining quota (`QUOTA_EXCEEDED` with `maxSizeBytes` and `remainingQuota`), then says
    /// where to send the bytes — one signed `PUT`, or tus for resumable uploads.
    async fn create_upload(
        &self,
        ctx: &Context<'_>,
        input: CreateUploadInput,
    ) -> async_graphql::Result<CreateUploadPayload> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let size = u64::try_from(input.size_bytes).unwrap_or(0);
        let new = NewUpload {
            filename: input.filename,
            mime_type: input.mime_type,
            size_bytes: size,
            sha256: input.sha256,
            purpose: input.purpose,
        };
        let key = input.idempotency_key.as_deref().map(validate::idempotency_key).transpose().api()?;
        let settings = &app.settings;
        let row =
            uploads::create(&app.db, &settings.media, &settings.idempotency, user, new, key.as_deref()).await.api()?;
        let base = api_base(app);
        let ttl = i64::try_from(app.settings.media.put_url_ttl_seconds).unwrap_or(3600);
        let put_expires = Utc::now().timestamp().saturating_add(ttl).min(row.expires_at_ms / 1000);
        let signature = app.media.signer.sign(&row.upload_id, row.size_bytes, put_expires);
        let header = |name: &str, value: String| HttpHeader { name: name.to_owned(), value };
        Ok(CreateUploadPayload {
            put_url: format!("{base}/uploads/{}?expires={put_expires}&signature={signature}", row.upload_id),
            put_headers: vec![
                header("Content-Type", row.declared_mime.clone()),
                header("Content-Length", row.size_bytes.to_string()),
            ],
            put_expires_at: DateTime::from_timestamp(put_expires, 0).unwrap_or_default(),
            tus_url: format!("{base}/uploads/{}", row.upload_id),
            tus_headers: vec![header("Tus-Resumable", TUS_VERSION.to_owned())],
            expires_at: DateTime::from_timestamp_millis(row.expires_at_ms).unwrap_or_default(),
            upload: Upload::from(row),
        })
    }
}
