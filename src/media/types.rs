//! The media API types: `PostMedia` (an image or video of a post, over the shared
//! `post_media` row), `Upload` (one of the viewer's uploads, with its status), their variant
//! list and the `url(width:, dpr:, format:)` rule they share: the narrowest ladder step at
//! least `width × dpr` pixels wide (the widest when none is), in the asked format, or
//! negotiated by the image request's `Accept` for `AUTO`.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object};
use chrono::{DateTime, Utc};

use crate::{
    app::app,
    kernel::graphql::error::{ErrorCode, api_error},
    media::{
        entities::{media_object, post_media},
        store::status,
        variants::{self, Encoding, Ladder},
    },
};

/// The encoding of an image URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ImageFormat {
    /// Negotiated by the image request's `Accept` (WebP when accepted, else JPEG;
    /// `Vary: Accept`).
    Auto,
    /// JPEG, a fixed URL.
    Jpeg,
    /// WebP, a fixed URL.
    Webp,
}

impl ImageFormat {
    fn encoding(self) -> Option<Encoding> {
        match self {
            Self::Auto => None,
            Self::Jpeg => Some(Encoding::Jpeg),
            Self::Webp => Some(Encoding::Webp),
        }
    }
}

/// Where a media object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum MediaStatus {
    /// Bytes are still arriving.
    Uploading,
    /// Every byte arrived; variants are being made.
    Processing,
    /// Processed: dimensions, BlurHash and variants are available.
    Ready,
    /// Processing failed (`failureReason`).
    Failed,
}

impl MediaStatus {
    fn parse(stored: &str) -> Self {
        match stored {
            status::UPLOADING => Self::Uploading,
            status::PROCESSING => Self::Processing,
            status::FAILED => Self::Failed,
            _ => Self::Ready,
        }
    }
}

/// What `url` and `variants` are built from.
#[derive(Clone, Debug)]
struct Rendition {
    hash: String,
    ladder: Ladder,
}

impl Rendition {
    fn url(
        &self,
        base: &str,
        width: Option<i32>,
        dpr: f64,
        format: ImageFormat,
    ) -> async_graphql::Result<Option<String>> {
        let target = match width {
            None => None,
            Some(w) if (1..=10_000).contains(&w) => {
                if !(0.5..=4.0).contains(&dpr) {
                    return Err(api_error(ErrorCode::BadUserInput, "dpr must be between 0.5 and 4"));
                }
                Some((f64::from(w) * dpr).ceil() as u32)
            }
            Some(_) => return Err(api_error(ErrorCode::BadUserInput, "width must be 1..=10000")),
        };
        Ok(self.ladder.pick(target).map(|step| variants::url(base, &self.hash, step.width, format.encoding())))
    }

    fn variants(&self) -> Vec<MediaVariant> {
        self.ladder
            .steps
            .iter()
            .map(|s| MediaVariant { hash: self.hash.clone(), width: s.width, height: s.height })
            .collect()
    }
}

/// One width of an image's ladder (for `srcset`-style clients).
#[derive(Clone, Debug)]
pub struct MediaVariant {
    hash: String,
    width: u32,
    height: u32,
}

#[Object(cache_control(max_age = 3600))]
impl MediaVariant {
    /// Pixel width.
    async fn width(&self) -> i32 {
        i32::try_from(self.width).unwrap_or(i32::MAX)
    }

    /// Pixel height.
    async fn height(&self) -> i32 {
        i32::try_from(self.height).unwrap_or(i32::MAX)
    }

    /// URL of this width (content-addressed and `immutable`).
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ImageFormat::Auto")] format: ImageFormat,
    ) -> async_graphql::Result<String> {
        let base = &app(ctx)?.settings.public_base_url;
        Ok(variants::url(base, &self.hash, self.width, format.encoding()))
    }
}

/// A media row as the API shows it, shared with the media loader's cache.
#[derive(Clone, Debug)]
pub struct PostMedia {
    row: Arc<post_media::Model>,
}

impl From<Arc<post_media::Model>> for PostMedia {
    fn from(row: Arc<post_media::Model>) -> Self {
        Self { row }
    }
}

impl PostMedia {
    fn rendition(&self) -> Option<Rendition> {
        self.row.media_id?;
        let ladder = Ladder::from_json(self.row.variants.as_ref());
        Some(Rendition { hash: self.row.storage_key.clone(), ladder })
    }
}

/// An image or video attached to a post.
#[Object(cache_control(max_age = 3600))]
impl PostMedia {
    /// MIME type of the original, as sniffed from its bytes.
    async fn mime_type(&self) -> &str {
        &self.row.mime_type
    }

    /// Upright width of the original in pixels (0 until processed).
    async fn width(&self) -> i32 {
        self.row.width
    }

    /// Upright height of the original in pixels (0 until processed).
    async fn height(&self) -> i32 {
        self.row.height
    }

    /// BlurHash placeholder to show while the image loads (empty until processed).
    async fn blurhash(&self) -> &str {
        &self.row.blurhash
    }

    /// The most common colour, `#rrggbb` (null until processed).
    async fn dominant_color(&self) -> Option<&str> {
        self.row.dominant_color.as_deref()
    }

    /// Accessibility text.
    async fn alt_text(&self) -> Option<&str> {
        self.row.alt_text.as_deref()
    }

    /// Processing status.
    async fn status(&self) -> MediaStatus {
        MediaStatus::parse(&self.row.status)
    }

    /// URL of the narrowest variant at least `width × dpr` pixels wide (the widest when none
    /// is, the original's size without `width`), in `format`. Before processing ends the URL
    /// answers 404 (see `status`).
    async fn url(
        &self,
        ctx: &Context<'_>,
        width: Option<i32>,
        #[graphql(default = 1.0)] dpr: f64,
        #[graphql(default_with = "ImageFormat::Auto")] format: ImageFormat,
    ) -> async_graphql::Result<String> {
        let app = app(ctx)?;
        let Some(rendition) = self.rendition() else { return Ok(app.media_url(&self.row.storage_key)) };
        let base = &app.settings.public_base_url;
        match rendition.url(base, width, dpr, format)? {
            Some(url) => Ok(url),
            None => {
                Ok(variants::url(base, &rendition.hash, u32::try_from(self.row.width).unwrap_or(0), format.encoding()))
            }
        }
    }

    /// Every width of the ladder, narrowest first (empty until processed).
    async fn variants(&self) -> Vec<MediaVariant> {
        self.rendition().map(|r| r.variants()).unwrap_or_default()
    }

    /// Width divided by height, to reserve layout space before loading.
    async fn aspect_ratio(&self) -> f64 {
        f64::from(self.row.width) / f64::from(self.row.height.max(1))
    }
}

/// One of the viewer's uploads.
#[derive(Clone, Debug)]
pub struct Upload {
    row: media_object::Model,
}

impl From<media_object::Model> for Upload {
    fn from(row: media_object::Model) -> Self {
        Self { row }
    }
}

impl Upload {
    fn rendition(&self) -> Option<Rendition> {
        if self.row.status != status::READY {
            return None;
        }
        let hash = self.row.content_hash.clone()?;
        Some(Rendition { hash, ladder: Ladder::from_json(self.row.variants.as_ref()) })
    }
}

#[Object(cache_control(private))]
impl Upload {
    /// The upload id (`MediaInput.uploadId`; the last segment of the tus `Location`).
    async fn id(&self) -> &str {
        &self.row.upload_id
    }

    /// Processing status.
    async fn status(&self) -> MediaStatus {
        MediaStatus::parse(&self.row.status)
    }

    /// Why processing failed (`FAILED`): `UNSUPPORTED_TYPE`, `LIMITS_EXCEEDED`, `CORRUPT`,
    /// `CHECKSUM_MISMATCH`, `PROCESSING_UNAVAILABLE`.
    async fn failure_reason(&self) -> Option<&str> {
        self.row.failure_reason.as_deref()
    }

    /// What went wrong, for people (`FAILED`).
    async fn failure_detail(&self) -> Option<&str> {
        self.row.failure_detail.as_deref()
    }

    /// The file name given at creation.
    async fn filename(&self) -> &str {
        &self.row.filename
    }

    /// The sniffed type once processed, the declared one before.
    async fn mime_type(&self) -> &str {
        self.row.mime_type.as_deref().unwrap_or(&self.row.declared_mime)
    }

    /// The file's size in bytes.
    async fn size_bytes(&self) -> i32 {
        i32::try_from(self.row.size_bytes).unwrap_or(i32::MAX)
    }

    /// Bytes received so far.
    async fn received_bytes(&self) -> i32 {
        i32::try_from(self.row.offset_bytes).unwrap_or(i32::MAX)
    }

    /// When an unfinished upload expires (and is deleted).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.row.expires_at_ms)
    }

    /// Upright width (`READY`).
    async fn width(&self) -> Option<i32> {
        self.row.width
    }

    /// Upright height (`READY`).
    async fn height(&self) -> Option<i32> {
        self.row.height
    }

    /// BlurHash placeholder (`READY`).
    async fn blurhash(&self) -> Option<&str> {
        self.row.blurhash.as_deref()
    }

    /// The most common colour, `#rrggbb` (`READY`).
    async fn dominant_color(&self) -> Option<&str> {
        self.row.dominant_color.as_deref()
    }

    /// URL of the narrowest variant at least `width × dpr` pixels wide (`READY`; see
    /// `PostMedia.url`).
    async fn url(
        &self,
        ctx: &Context<'_>,
        width: Option<i32>,
        #[graphql(default = 1.0)] dpr: f64,
        #[graphql(default_with = "ImageFormat::Auto")] format: ImageFormat,
    ) -> async_graphql::Result<Option<String>> {
        let Some(rendition) = self.rendition() else { return Ok(None) };
        rendition.url(&app(ctx)?.settings.public_base_url, width, dpr, format)
    }

    /// Every width of the ladder, narrowest first (`READY`).
    async fn variants(&self) -> Vec<MediaVariant> {
        self.rendition().map(|r| r.variants()).unwrap_or_default()
    }
}
