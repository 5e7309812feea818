//! The `media.process` job handler: processes one finished upload on the job queue. It reads
//! the original, runs the pipeline ([`super::process`]) on a blocking thread, writes every
//! variant (atomic, fsync'd) and then, in one transaction, marks the object ready (or failed
//! with its reason), copies the facts onto the posts that use it and appends `MEDIA_READY` /
//! `MEDIA_FAILED` to the uploader's event log (then queues a silent push saying the same).
//! Storage and database failures are retried; a
//! file that cannot be processed is a media failure, not a job failure. Running twice (a
//! reclaimed lease) rewrites identical variants and changes nothing else.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::{
    app::App,
    kernel::jobs::{Job, JobError, JobHandler, now_ms},
    media::{
        process::{self, Failure},
        store::{self, Processed, status},
        uploads::{PROCESS_KIND, original_key},
        variants::{self, Encoding, Ladder},
    },
    push::{Category as PushCategory, Outgoing as OutgoingPush, Priority as PushPriority, enqueue as enqueue_push},
    realtime::{MediaRecord, media_processed},
};

/// Runs `media.process` jobs.
pub struct ProcessHandler(pub Arc<App>);

impl JobHandler for ProcessHandler {
    fn kind(&self) -> &'static str {
        PROCESS_KIND
    }

    fn concurrency(&self) -> usize {
        self.0.settings.media.processing_concurrency
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(run(&self.0, job))
    }
}

fn retry(err: impl std::fmt::Display) -> JobError {
    JobError::retry(format!("internal: {err}"))
}

async fn run(app: &App, job: &Job) -> Result<Value, JobError> {
    let media_id = job
        .payload
        .get("media")
        .and_then(Value::as_i64)
        .ok_or_else(|| JobError::permanent("malformed media.process payload"))?;
    let Some(row) = store::by_id(app.db.conn(), media_id).await.map_err(retry)? else {
        return Ok(json!({ "outcome": "skipped", "reason": "media deleted" }));
    };
    if row.status != status::PROCESSING {
        return Ok(json!({ "outcome": "skipped", "reason": format!("media is {}", row.status) }));
    }
    let storage = app.media.storage.clone();
    let outcome = if row.kind == "video" {
        Err(Failure::ProcessingUnavailable("video processing is not available on this server yet".into()))
    } else {
        let max = u64::try_from(row.size_bytes).unwrap_or(0);
        let Some(bytes) = storage.get(&original_key(&row.upload_id), max).await.map_err(retry)? else {
            return Err(JobError::permanent("the original is missing"));
        };
        let settings = app.settings.media.clone();
        tokio::task::spawn_blocking(move || process::process_image(&bytes, &settings)).await.map_err(retry)?
    };
    // Variants are written (durably) before the transaction that says they exist.
    if let Ok(rendered) = &outcome {
        let hash = row.content_hash.clone().unwrap_or_default();
        for variant in &rendered.variants {
            let width = variant.step.width;
            storage.put(&variants::key(&hash, width, Encoding::Jpeg), &variant.jpeg).await.map_err(retry)?;
            storage.put(&variants::key(&hash, width, Encoding::Webp), &variant.webp).await.map_err(retry)?;
        }
    }
    let now = now_ms();
    let tx = app.db.begin_write().await.map_err(retry)?;
    let (record, result) = match outcome {
        Ok(rendered) => {
            let ladder = Ladder { steps: rendered.variants.iter().map(|v| v.step.clone()).collect() };
            let processed = Processed {
                mime_type: rendered.mime_type.to_owned(),
                width: i32::try_from(rendered.width).unwrap_or(i32::MAX),
                height: i32::try_from(rendered.height).unwrap_or(i32::MAX),
                blurhash: rendered.blurhash,
                dominant_color: rendered.dominant_color,
                variants: ladder.to_json(),
            };
            store::mark_ready(&*tx, row.id, &processed, now).await.map_err(retry)?;
            let widths: Vec<u32> = ladder.steps.iter().map(|s| s.width).collect();
            (
                MediaRecord { upload_id: row.upload_id.clone(), reason: None },
                json!({ "outcome": "ready", "widths": widths }),
            )
        }
        Err(failure) => {
            store::mark_failed(&*tx, row.id, failure.code(), &failure.to_string(), now).await.map_err(retry)?;
            let record = MediaRecord { upload_id: row.upload_id.clone(), reason: Some(failure.code().to_owned()) };
            (record, json!({ "outcome": "failed", "reason": failure.code(), "detail": failure.to_string() }))
        }
    };
    let push = silent_push(row.user_id, &record);
    let events = media_processed(&*tx, &app.settings.realtime, row.user_id, record).await.map_err(retry)?;
    tx.commit().await.map_err(retry)?;
    app.bus.publish(events);
    // The app may be in the background: a silent push tells it to refetch (best effort; the
    // event log already has the outcome).
    if let Err(err) = enqueue_push(app, push).await {
        tracing::warn!(error = %err, "queuing the media silent push failed");
    }
    Ok(result)
}

/// The data-only push that mirrors a `MEDIA_READY` / `MEDIA_FAILED` event.
fn silent_push(user_id: i64, record: &MediaRecord) -> OutgoingPush {
    let mut data = serde_json::Map::new();
    let kind = if record.reason.is_some() { "media_failed" } else { "media_ready" };
    data.insert("type".into(), json!(kind));
    data.insert("uploadId".into(), json!(record.upload_id));
    if let Some(reason) = &record.reason {
        data.insert("reason".into(), json!(reason));
    }
    OutgoingPush {
        user_id,
        category: PushCategory::System,
        priority: PushPriority::Normal,
        title: String::new(),
        body: String::new(),
        silent: true,
        data,
        collapse_key: Some(format!("media-{}", record.upload_id)),
    }
}
