//! Media: uploads (a signed single `PUT`, or resumable tus 1.0 at `/uploads/`), per-file
//! limits and per-user quotas, server-side processing on the durable job queue (type sniffed
//! from the bytes, decoding within limits, EXIF orientation applied, metadata stripped,
//! BlurHash and dominant colour, a JPEG + WebP width ladder), and serving variants at
//! `/media/` with ranges, strong ETags and immutable content-addressed URLs.
//!
//! - [`storage`]: the storage trait and the local directory; [`settings`]: `[media]`.
//! - [`uploads`]: creating, finishing, terminating and sweeping uploads; [`tus`]: the routes.
//! - [`process`]: the image pipeline; [`worker`]: the `media.process` job.
//! - [`serve`]: `/media/<hash>/<width>[.jpg|.webp]`; [`variants`]: the ladder and its URLs.
//! - [`attach`]: `MediaInput` and the post media rows (the one media shape posts carry);
//!   [`types`]: `PostMedia`, `Upload`; [`graphql`]: `createUpload`, `upload(id:)`.
//!
//! See docs/media.md.

pub mod attach;
pub mod entities;
pub mod error;
pub mod graphql;
pub mod metadata;
pub mod process;
pub mod serve;
pub mod settings;
pub mod signing;
pub mod storage;
pub mod store;
pub mod tus;
pub mod types;
pub mod uploads;
pub mod variants;
pub mod worker;

use std::{path::Path, sync::Arc};

pub use self::{
    attach::{Attachment, MediaInput, attachments as post_attachments, insert as attach_to_post},
    entities::post_media,
    error::MediaError,
    types::PostMedia,
};
use self::{
    settings::{MediaSettings, StorageKind},
    signing::UrlSigner,
    storage::{LocalStorage, Storage},
    uploads::Finisher,
};

/// The media concern's long-lived state (`app.media`).
#[derive(Debug)]
pub struct Media {
    /// Where the bytes live.
    pub storage: Arc<dyn Storage>,
    /// Signs and checks `createUpload`'s `PUT` URLs.
    pub signer: UrlSigner,
}

impl Media {
    /// Opens the configured storage and loads (or generates) the URL-signing key.
    pub fn new(settings: &MediaSettings, data_dir: &Path) -> std::io::Result<Self> {
        let storage: Arc<dyn Storage> = match settings.storage {
            StorageKind::Local => Arc::new(LocalStorage::open(&settings.local_dir(data_dir))?),
        };
        let signer = UrlSigner::load(settings.url_signing_key.expose(), data_dir)?;
        Ok(Self { storage, signer })
    }

    /// What finishing and deleting uploads needs.
    pub fn finisher(&self, app: &crate::app::App) -> Finisher {
        Finisher { db: app.db.clone(), storage: self.storage.clone(), jobs: app.jobs.clone() }
    }
}

/// `/uploads/` (tus and the signed `PUT`) and `/media/` (variants).
pub fn routes(app: Arc<crate::app::App>) -> axum::Router {
    tus::routes(app.clone()).merge(serve::routes(app))
}
