//! Sending a notification: one notification record for the user and one `push.send` job per
//! deliverable device (signed in, with a live token), all in one transaction — the jobs exist
//! exactly when the record does. Payload limits are checked here, before anything is queued.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    app::App,
    auth::device_entity as device,
    kernel::{db, jobs::NewJob},
    push::{
        entities::notification,
        error::PushError,
        payload::{self, Category, Message, Priority},
    },
};

/// The job kind of one send to one device.
pub const SEND_KIND: &str = "push.send";

/// A notification to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The recipient.
    pub user_id: i64,
    /// Category.
    pub category: Category,
    /// Priority.
    pub priority: Priority,
    /// Title (ignored for silent pushes).
    pub title: String,
    /// Body (ignored for silent pushes).
    pub body: String,
    /// Data-only push.
    pub silent: bool,
    /// Custom keys for the app (a JSON object).
    pub data: Map<String, Value>,
    /// Collapse key (`apns-collapse-id`, FCM `collapse_key`), at most 64 bytes.
    pub collapse_key: Option<String>,
}

/// The payload of a `push.send` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    /// The notification record.
    pub notification: i64,
    /// The device to push to.
    pub device: i64,
    /// The push's id at the provider (`apns-id`), the same on every attempt.
    pub push_id: String,
    /// Collapse key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
}

/// What was queued.
#[derive(Clone, Debug)]
pub struct Queued {
    /// The notification record.
    pub notification_id: i64,
    /// `(device id, job id)` per deliverable device.
    pub deliveries: Vec<(i64, i64)>,
}

fn check_text(field: &str, value: &str, max: usize) -> Result<String, PushError> {
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(PushError::InvalidInput(format!("{field} must be at most {max} printable characters")));
    }
    Ok(value.to_owned())
}

/// Validates `outgoing` and the payload sizes; returns the normalised notification.
pub fn validate(mut outgoing: Outgoing) -> Result<Outgoing, PushError> {
    if outgoing.silent {
        outgoing.title.clear();
        outgoing.body.clear();
    } else {
        outgoing.title = check_text("title", &outgoing.title, 256)?;
        outgoing.body = check_text("body", &outgoing.body, 4000)?;
        if outgoing.title.is_empty() && outgoing.body.is_empty() {
            return Err(PushError::InvalidInput("a notification needs a title or a body (or --silent)".into()));
        }
    }
    if outgoing.data.len() > 50 || outgoing.data.keys().any(|k| k == "aps" || k == "nid" || k.len() > 64) {
        return Err(PushError::InvalidInput(
            "data must be an object of at most 50 keys of at most 64 bytes, without `aps` or `nid`".into(),
        ));
    }
    payload::check(&message(0, &outgoing))?;
    Ok(outgoing)
}

fn message(notification_id: i64, outgoing: &Outgoing) -> Message {
    Message {
        notification_id,
        category: outgoing.category,
        priority: outgoing.priority,
        title: outgoing.title.clone(),
        body: outgoing.body.clone(),
        silent: outgoing.silent,
        data: outgoing.data.clone(),
        collapse_key: outgoing.collapse_key.clone(),
    }
}

/// The provider message of a stored notification.
pub fn stored_message(row: &notification::Model, collapse_key: Option<String>) -> Message {
    Message {
        notification_id: row.id,
        category: Category::parse(&row.category).unwrap_or(Category::System),
        priority: Priority::parse(&row.priority).unwrap_or(Priority::High),
        title: row.title.clone(),
        body: row.body.clone(),
        silent: row.silent,
        data: row.data.as_object().cloned().unwrap_or_default(),
        collapse_key,
    }
}

/// Records the notification and queues one send per deliverable device of the user.
pub async fn enqueue(app: &App, outgoing: Outgoing) -> Result<Queued, PushError> {
    let outgoing = validate(outgoing)?;
    let tx = app.db.begin_write().await?;
    let record = notification::Entity::insert(notification::ActiveModel {
        user_id: Set(outgoing.user_id),
        category: Set(outgoing.category.as_str().to_owned()),
        priority: Set(outgoing.priority.as_str().to_owned()),
        title: Set(outgoing.title.clone()),
        body: Set(outgoing.body.clone()),
        data: Set(Value::Object(outgoing.data.clone())),
        silent: Set(outgoing.silent),
        created_at: Set(db::now()),
        read_at: Set(None),
        ..Default::default()
    })
    .exec(&*tx)
    .await?
    .last_insert_id;
    let devices = device::Entity::find()
        .filter(device::Column::UserId.eq(outgoing.user_id))
        .filter(device::Column::RevokedAt.is_null())
        .filter(device::Column::PushToken.is_not_null())
        .filter(device::Column::PushTokenDeadAt.is_null())
        .order_by_asc(device::Column::Id)
        .all(&*tx)
        .await?;
    let mut deliveries = Vec::with_capacity(devices.len());
    for device in devices {
        let job = SendJob {
            notification: record,
            device: device.id,
            push_id: uuid::Uuid::new_v4().to_string(),
            collapse_key: outgoing.collapse_key.clone(),
        };
        let new = NewJob {
            kind: SEND_KIND,
            payload: serde_json::to_value(&job).map_err(crate::kernel::error::DomainError::from)?,
            run_at: None,
            max_attempts: Some(app.settings.push.delivery.max_attempts),
        };
        deliveries.push((device.id, app.jobs.enqueue(&*tx, new).await?));
    }
    tx.commit().await?;
    app.jobs.wake();
    Ok(Queued { notification_id: record, deliveries })
}
