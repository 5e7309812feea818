//! Media settings (`[media]` in the TOML file, `BFF_MEDIA__*` in the environment): where
//! objects are stored, the per-file limits by kind and the per-user quota, upload expiry, the
//! decoder's limits (pixels, dimensions, memory) and the variant ladder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::kernel::settings::Secret;

/// Where media objects live.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A directory on this machine (`media.local_dir`, default `data_dir/media`).
    #[default]
    Local,
}

/// Media settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// `local` (the only kind in this version).
    pub storage: StorageKind,
    /// Directory of the local storage; empty: `data_dir/media`.
    pub local_dir: Option<PathBuf>,
    /// Largest image file, in bytes.
    pub max_image_bytes: u64,
    /// Largest video file, in bytes.
    pub max_video_bytes: u64,
    /// Bytes of media one user may store (uploads in progress count at their declared size).
    pub user_quota_bytes: u64,
    /// Seconds an upload may take from creation to its last byte; then it expires and is deleted.
    pub upload_expiry_seconds: u64,
    /// Seconds a finished upload may stay unattached to a post before it is deleted as orphaned.
    pub orphan_seconds: u64,
    /// Largest request body of one tus `PATCH` (bytes); larger chunks are cut with 413.
    pub max_chunk_bytes: u64,
    /// Largest decoded image in pixels (width × height): a decompression bomb fails here.
    pub max_pixels: u64,
    /// Largest width or height of a decoded image.
    pub max_dimension: u32,
    /// Most memory one decode may allocate, in bytes.
    pub max_decode_bytes: u64,
    /// Widths of the variant ladder (never upscaled; the original's width is always a step).
    pub ladder: Vec<u32>,
    /// JPEG quality of the variants, 1–100.
    pub jpeg_quality: u8,
    /// WebP quality of the variants, 1–100.
    pub webp_quality: u8,
    /// Processing jobs running at once on this replica.
    pub processing_concurrency: usize,
    /// Seconds a `createUpload` PUT URL stays valid.
    pub put_url_ttl_seconds: u64,
    /// HMAC key of the signed upload URLs (secret); empty: generated into `data_dir/media-url-key`.
    /// Every replica of a cluster needs the same key.
    pub url_signing_key: Secret,
    /// How often expired and orphaned uploads are swept, in seconds.
    pub sweep_interval_seconds: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            storage: StorageKind::Local,
            local_dir: None,
            max_image_bytes: 25 * 1024 * 1024,
            max_video_bytes: 512 * 1024 * 1024,
            user_quota_bytes: 2 * 1024 * 1024 * 1024,
            upload_expiry_seconds: 24 * 3600,
            orphan_seconds: 24 * 3600,
            max_chunk_bytes: 64 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_dimension: 12_000,
            max_decode_bytes: 512 * 1024 * 1024,
            ladder: vec![160, 320, 640, 1080, 1440, 2048],
            jpeg_quality: 82,
            webp_quality: 80,
            processing_concurrency: 2,
            put_url_ttl_seconds: 3600,
            url_signing_key: Secret::new(""),
            sweep_interval_seconds: 300,
        }
    }
}

impl MediaSettings {
    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_image_bytes == 0 || self.max_video_bytes == 0 || self.max_chunk_bytes == 0 {
            return Err("media.max_image_bytes, max_video_bytes and max_chunk_bytes must be positive".into());
        }
        if self.max_image_bytes.max(self.max_video_bytes) > i32::MAX as u64 {
            return Err("media.max_image_bytes and max_video_bytes must be below 2 GiB (GraphQL Int sizes)".into());
        }
        if self.ladder.is_empty() || self.ladder.len() > 12 || self.ladder.iter().any(|w| !(16..=8192).contains(w)) {
            return Err("media.ladder needs 1 to 12 widths of 16..=8192".into());
        }
        if !(1..=100).contains(&self.jpeg_quality) || !(1..=100).contains(&self.webp_quality) {
            return Err("media.jpeg_quality and media.webp_quality must be 1..=100".into());
        }
        if self.max_pixels == 0 || self.max_dimension == 0 || self.processing_concurrency == 0 {
            return Err("media.max_pixels, max_dimension and processing_concurrency must be positive".into());
        }
        if self.upload_expiry_seconds < 60 || self.put_url_ttl_seconds < 60 {
            return Err("media.upload_expiry_seconds and put_url_ttl_seconds must be ≥ 60".into());
        }
        Ok(())
    }

    /// The directory of the local storage.
    pub fn local_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.local_dir.clone().unwrap_or_else(|| data_dir.join("media"))
    }
}
