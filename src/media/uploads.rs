//! Uploads as use cases: creating one (limits and quota checked first, in the transaction
//! that charges the quota), committing a received part (the offset compare-and-set), finishing
//! (assembling the parts into the original, checking the declared SHA-256, queuing the
//! processing job), terminating, and sweeping expired and orphaned uploads (which gives their
//! quota back).

use std::sync::Arc;

use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::{
    kernel::{
        db::{Db, WriteTx},
        idempotency::{self, Attempt},
        jobs::{JobQueue, NewJob, now_ms},
        settings::IdempotencySettings,
    },
    media::{
        MediaError,
        entities::media_object,
        settings::MediaSettings,
        storage::Storage,
        store::{self, status},
    },
};

/// The processing job's kind.
pub const PROCESS_KIND: &str = "media.process";

/// What a media object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `image/*`.
    Image,
    /// `video/*`.
    Video,
}

impl Kind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }

    /// The largest file of this kind.
    pub fn max_bytes(self, settings: &MediaSettings) -> u64 {
        match self {
            Self::Image => settings.max_image_bytes,
            Self::Video => settings.max_video_bytes,
        }
    }
}

/// The MIME types an upload may declare, with their kind. The bytes decide what is served.
const ACCEPTED: [(&str, Kind); 10] = [
    ("image/jpeg", Kind::Image),
    ("image/png", Kind::Image),
    ("image/gif", Kind::Image),
    ("image/webp", Kind::Image),
    ("image/heic", Kind::Image),
    ("image/heif", Kind::Image),
    ("image/avif", Kind::Image),
    ("video/mp4", Kind::Video),
    ("video/quicktime", Kind::Video),
    ("video/webm", Kind::Video),
];

/// What an upload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "MediaPurpose")]
pub enum Purpose {
    /// An image or video of a post (`MediaInput.uploadId`).
    Post,
    /// The user's profile picture.
    Avatar,
}

impl Purpose {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Avatar => "avatar",
        }
    }

    /// Parses the stored form (and tus metadata).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "post" | "POST" => Some(Self::Post),
            "avatar" | "AVATAR" => Some(Self::Avatar),
            _ => None,
        }
    }
}

/// A new upload as requested.
#[derive(Clone, Debug)]
pub struct NewUpload {
    /// The file's name on the device (shown back, never used as a path).
    pub filename: String,
    /// The declared type.
    pub mime_type: String,
    /// The exact size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the whole file (lowercase hex), checked once every byte arrived.
    pub sha256: Option<String>,
    /// What it is for.
    pub purpose: Purpose,
}

impl NewUpload {
    /// Validates every field; returns the normalised upload and its kind.
    pub fn validated(self) -> Result<(Self, Kind), MediaError> {
        let filename = self.filename.trim().to_owned();
        if filename.is_empty() || filename.chars().count() > 255 || filename.chars().any(char::is_control) {
            return Err(MediaError::invalid("filename must be 1 to 255 characters without control characters"));
        }
        let mime_type = self.mime_type.trim().to_ascii_lowercase();
        let Some(kind) = ACCEPTED.iter().find(|(m, _)| *m == mime_type).map(|(_, k)| *k) else {
            let accepted: Vec<&str> = ACCEPTED.iter().map(|(m, _)| *m).collect();
            return Err(MediaError::invalid(format!("mimeType must be one of {}", accepted.join(", "))));
        };
        if self.size_bytes == 0 {
            return Err(MediaError::invalid("sizeBytes must be positive"));
        }
        let sha256 = match self.sha256 {
            Some(hash) => {
                let hash = hash.trim().to_ascii_lowercase();
                if !crate::media::variants::is_hash(&hash) {
                    return Err(MediaError::invalid("sha256 must be 64 hex digits"));
                }
                Some(hash)
            }
            None => None,
        };
        Ok((Self { filename, mime_type, sha256, ..self }, kind))
    }
}

/// Refuses `size` bytes of `kind` for a user who already stores `used` bytes.
pub fn check_quota(settings: &MediaSettings, kind: Kind, size: u64, used: u64) -> Result<(), MediaError> {
    let remaining = settings.user_quota_bytes.saturating_sub(used);
    let per_file = kind.max_bytes(settings);
    let max_size_bytes = per_file.min(remaining);
    if size > per_file {
        return Err(MediaError::QuotaExceeded {
            message: format!("a {} may be at most {per_file} bytes; this one is {size}", kind.as_str()),
            max_size_bytes,
            remaining_quota: remaining,
        });
    }
    if size > remaining {
        return Err(MediaError::QuotaExceeded {
            message: format!("{size} bytes is more than the {remaining} bytes left of your storage quota"),
            max_size_bytes,
            remaining_quota: remaining,
        });
    }
    Ok(())
}

/// Creates an upload for `user` after checking its limits and the user's quota. With an
/// idempotency `key`, a retry with the same input returns the same upload (as it is now).
pub async fn create(
    db: &Db,
    settings: &MediaSettings,
    idempotency: &IdempotencySettings,
    user: i64,
    new: NewUpload,
    key: Option<&str>,
) -> Result<media_object::Model, MediaError> {
    let (new, kind) = new.validated()?;
    let fingerprint = (&new.filename, &new.mime_type, new.size_bytes, &new.sha256, new.purpose.as_str());
    let tx = match idempotency::begin::<String>(db, idempotency, user, key, "createUpload", &fingerprint).await? {
        Attempt::Replay(upload_id) => {
            return store::by_upload_id(db.conn(), &upload_id).await?.ok_or(MediaError::NotFound("upload"));
        }
        Attempt::First(tx) => tx,
    };
    let row = insert(tx.tx(), settings, user, new, kind).await?;
    tx.finish(&row.upload_id).await?;
    Ok(row)
}

async fn insert(
    tx: &WriteTx,
    settings: &MediaSettings,
    user: i64,
    new: NewUpload,
    kind: Kind,
) -> Result<media_object::Model, MediaError> {
    store::lock_user(&**tx, user).await?;
    let used = store::used_bytes(&**tx, user).await?;
    check_quota(settings, kind, new.size_bytes, used)?;
    let now = now_ms();
    let expiry = i64::try_from(settings.upload_expiry_seconds.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    let size = i64::try_from(new.size_bytes).map_err(|_| MediaError::invalid("sizeBytes is too large"))?;
    media_object::Entity::insert(media_object::ActiveModel {
        upload_id: Set(upload_id.clone()),
        user_id: Set(user),
        purpose: Set(new.purpose.as_str().to_owned()),
        kind: Set(kind.as_str().to_owned()),
        filename: Set(new.filename),
        declared_mime: Set(new.mime_type),
        size_bytes: Set(size),
        offset_bytes: Set(0),
        sha256: Set(new.sha256),
        status: Set(status::UPLOADING.to_owned()),
        expires_at_ms: Set(now.saturating_add(expiry)),
        created_at_ms: Set(now),
        ..Default::default()
    })
    .exec_without_returning(&**tx)
    .await?;
    let row = store::by_upload_id(&**tx, &upload_id).await?.ok_or(MediaError::NotFound("upload"))?;
    Ok(row)
}

/// The upload `upload_id` of `user`: someone else's is `NotFound`, an unfinished one past its
/// expiry `Expired`.
pub async fn owned(db: &Db, user: i64, upload_id: &str) -> Result<media_object::Model, MediaError> {
    let row = if upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        store::by_upload_id(db.conn(), upload_id).await?
    } else {
        None
    };
    let row = row.filter(|r| r.user_id == user).ok_or(MediaError::NotFound("upload"))?;
    if row.status == status::UPLOADING && row.expires_at_ms < now_ms() {
        return Err(MediaError::Expired);
    }
    Ok(row)
}

/// The state finishing needs.
#[derive(Clone)]
pub struct Finisher {
    /// The database.
    pub db: Db,
    /// The storage.
    pub storage: Arc<dyn Storage>,
    /// The job queue (processing jobs).
    pub jobs: Arc<JobQueue>,
}

/// The storage key of an upload's original (with its metadata: never served).
pub fn original_key(upload_id: &str) -> String {
    format!("originals/{upload_id}")
}

impl Finisher {
    /// Assembles a complete upload into its original and queues its processing. Safe to call
    /// again (a crash between the last part and this leaves the upload complete but still
    /// `uploading`: the next `HEAD` or `PATCH` finishes it).
    pub async fn finish(&self, row: &media_object::Model) -> Result<media_object::Model, MediaError> {
        if row.status != status::UPLOADING || row.offset_bytes < row.size_bytes {
            return Ok(row.clone());
        }
        let parts: Vec<String> = store::parts(self.db.conn(), row.id).await?.into_iter().map(|p| p.part).collect();
        let assembled = match self.storage.assemble(&row.upload_id, &parts, &original_key(&row.upload_id)).await {
            Ok(assembled) => assembled,
            Err(err) => {
                // A concurrent request may have finished it (and removed the parts) meanwhile.
                let now = store::by_id(self.db.conn(), row.id).await?.ok_or(MediaError::NotFound("upload"))?;
                if now.status != status::UPLOADING {
                    return Ok(now);
                }
                return Err(err.into());
            }
        };
        let now = now_ms();
        let tx = self.db.begin_write().await?;
        let moved = store::mark_processing(&*tx, row.id, &assembled.sha256, now).await?;
        if moved {
            if row.sha256.as_ref().is_some_and(|declared| *declared != assembled.sha256) {
                let detail = "the uploaded bytes do not match the declared sha256";
                store::mark_failed(&*tx, row.id, "CHECKSUM_MISMATCH", detail, now).await?;
            } else {
                let job = NewJob {
                    kind: PROCESS_KIND,
                    payload: json!({ "media": row.id }),
                    run_at: None,
                    max_attempts: Some(3),
                };
                self.jobs.enqueue(&*tx, job).await?;
            }
        }
        tx.commit().await?;
        if moved {
            self.jobs.wake();
            if let Err(err) = self.storage.discard_upload(&row.upload_id).await {
                tracing::warn!(error = %err, "could not delete the parts of a finished upload");
            }
        }
        store::by_id(self.db.conn(), row.id).await?.ok_or(MediaError::NotFound("upload"))
    }

    /// Deletes a media object with everything it stored; its quota is free again.
    pub async fn remove(&self, row: &media_object::Model) -> Result<(), MediaError> {
        let tx = self.db.begin_write().await?;
        store::delete(&*tx, row.id).await?;
        let others = match &row.content_hash {
            Some(hash) => store::sharing_content(&*tx, hash).await?,
            None => 0,
        };
        tx.commit().await?;
        self.storage.discard_upload(&row.upload_id).await?;
        self.storage.delete(&original_key(&row.upload_id)).await?;
        if let (Some(hash), 0) = (&row.content_hash, others) {
            let ladder = crate::media::variants::Ladder::from_json(row.variants.as_ref());
            for step in &ladder.steps {
                for encoding in [crate::media::variants::Encoding::Jpeg, crate::media::variants::Encoding::Webp] {
                    self.storage.delete(&crate::media::variants::key(hash, step.width, encoding)).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes expired uploads and orphaned ones (finished but never attached within
    /// `orphan_seconds`); returns how many.
    pub async fn sweep(&self, settings: &MediaSettings) -> Result<usize, MediaError> {
        let now = now_ms();
        let orphan_ms = i64::try_from(settings.orphan_seconds.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        let mut rows = Vec::new();
        for row in store::expired(self.db.conn(), now, 500).await? {
            // Every byte arrived but finishing never ran (a crash): finish it instead.
            if row.offset_bytes == row.size_bytes {
                self.finish(&row).await?;
            } else {
                rows.push(row);
            }
        }
        rows.extend(store::orphaned(self.db.conn(), now.saturating_sub(orphan_ms), 500).await?);
        for row in &rows {
            self.remove(row).await?;
        }
        Ok(rows.len())
    }
}

/// Sweeps expired and orphaned uploads every `media.sweep_interval_seconds`.
pub fn spawn_sweeper(finisher: Finisher, settings: MediaSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::kernel::db::background(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(settings.sweep_interval_seconds.max(1)));
        loop {
            every.tick().await;
            match finisher.sweep(&settings).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "deleted expired and orphaned uploads"),
                Err(err) => tracing::warn!(error = %err, "media sweep failed"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_errors_say_what_would_fit() {
        let settings = MediaSettings { max_image_bytes: 100, user_quota_bytes: 1000, ..Default::default() };
        assert!(check_quota(&settings, Kind::Image, 100, 0).is_ok());
        match check_quota(&settings, Kind::Image, 101, 0) {
            Err(MediaError::QuotaExceeded { max_size_bytes: 100, remaining_quota: 1000, .. }) => {}
            other => panic!("{other:?}"),
        }
        match check_quota(&settings, Kind::Image, 60, 950) {
            Err(MediaError::QuotaExceeded { max_size_bytes: 50, remaining_quota: 50, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
