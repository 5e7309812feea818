//! The `push.send` job handler: one attempt to push one notification to one device.
//!
//! It re-reads the device first — a device signed out, a token removed or reported dead since
//! the job was queued gets nothing — then sends through the device's provider and maps the
//! answer onto the queue: accepted is done; a dead token is marked on the device (unless it was
//! re-registered after the provider's timestamp) and the job dead-lettered with the reason;
//! permanent refusals are dead-lettered at once; transient ones retried with backoff.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::{
    app::App,
    auth::device_entity as device,
    kernel::jobs::{Job, JobError, JobHandler},
    push::{
        entities::notification,
        provider::SendError,
        send::{SEND_KIND, SendJob, stored_message},
        tokens::{self, Environment, Provider},
    },
};

/// Runs `push.send` jobs.
pub struct SendHandler(pub Arc<App>);

impl JobHandler for SendHandler {
    fn kind(&self) -> &'static str {
        SEND_KIND
    }

    fn concurrency(&self) -> usize {
        self.0.settings.push.delivery.concurrency
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(send(&self.0, job))
    }
}

fn internal(err: impl std::fmt::Display) -> JobError {
    JobError::retry(format!("internal: {err}"))
}

fn skipped(reason: &str) -> Result<Value, JobError> {
    Ok(json!({ "outcome": "skipped", "reason": reason }))
}

async fn send(app: &App, job: &Job) -> Result<Value, JobError> {
    let task: SendJob = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("malformed push.send payload: {e}")))?;
    let conn = app.db.conn();
    let Some(device) = device::Entity::find_by_id(task.device).one(conn).await.map_err(internal)? else {
        return skipped("device deleted");
    };
    if device.revoked_at.is_some() {
        return skipped("device signed out");
    }
    if device.push_token_dead_at.is_some() {
        return skipped("token reported dead");
    }
    let (Some(token), Some(provider)) =
        (device.push_token.as_deref(), device.push_provider.as_deref().and_then(Provider::parse))
    else {
        return skipped("no push token");
    };
    let Some(record) = notification::Entity::find_by_id(task.notification).one(conn).await.map_err(internal)? else {
        return skipped("notification deleted");
    };
    let message = stored_message(&record, task.collapse_key.clone());
    let environment = Environment::parse(device.push_environment.as_deref());
    let outcome = app.push.providers.send(provider, token, environment, &message, &task.push_id).await;
    app.metrics.push_outcome(
        provider.as_str(),
        match &outcome {
            Ok(delivered) if delivered.provider == "log" => "logged",
            Ok(_) => "delivered",
            Err(SendError::TokenDead { .. }) => "token_dead",
            Err(SendError::Permanent { .. }) => "refused",
            Err(SendError::Transient { .. }) => "transient",
        },
    );
    match outcome {
        Ok(delivered) => Ok(json!({ "outcome": "delivered", "provider": delivered.provider, "id": delivered.id })),
        Err(SendError::TokenDead { reason, since }) => {
            let tx = app.db.begin_write().await.map_err(internal)?;
            let marked = tokens::mark_dead(&*tx, device.id, token, &reason, since).await.map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            let what = if marked { "token marked dead" } else { "token re-registered since: kept" };
            Err(JobError::permanent(format!("{reason}: {what}")))
        }
        Err(SendError::Permanent { reason }) => Err(JobError::permanent(reason)),
        Err(SendError::Transient { reason, retry_after }) => Err(JobError::Retry { reason, retry_after }),
    }
}
