//! `mobile-bff push send`: records a notification for a user, queues its sends through the
//! job queue, runs this process's workers until every send has an outcome (or the wait ends),
//! and reports the notification id and each device's outcome.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use sea_orm::EntityTrait;
use serde_json::{Map, Value};

use crate::{
    app::App,
    auth::device_entity as device,
    push::{
        error::PushError,
        payload::{Category, Priority},
        send::{self, Outgoing},
    },
};

/// The command's arguments.
#[derive(Clone, Debug)]
pub struct SendArgs {
    /// The recipient's handle.
    pub user: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Category (default `SYSTEM`).
    pub category: String,
    /// `high` (default) or `normal`.
    pub priority: String,
    /// Data-only push.
    pub silent: bool,
    /// Custom keys, a JSON object.
    pub data: Option<String>,
    /// Collapse key.
    pub collapse_key: Option<String>,
    /// How long to wait for outcomes.
    pub wait: Duration,
}

fn invalid(message: impl Into<String>) -> PushError {
    PushError::InvalidInput(message.into())
}

/// Sends and waits; returns the report to print.
pub async fn send(app: &Arc<App>, args: SendArgs) -> Result<String, PushError> {
    let category = Category::parse(&args.category)
        .ok_or_else(|| invalid("--category is one of MESSAGES, SOCIAL, SYSTEM, SECURITY, MARKETING"))?;
    let priority = Priority::parse(&args.priority).ok_or_else(|| invalid("--priority is high or normal"))?;
    let data: Map<String, Value> = match args.data.as_deref() {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(invalid("--data must be a JSON object")),
        },
    };
    let user = crate::social::user_by_handle(app.db.conn(), &args.user)
        .await?
        .ok_or_else(|| PushError::UnknownUser(args.user.clone()))?;
    let outgoing = Outgoing {
        user_id: user.id,
        category,
        priority,
        title: args.title,
        body: args.body,
        silent: args.silent,
        data,
        collapse_key: args.collapse_key,
    };
    let queued = send::enqueue(app, outgoing).await?;
    let mut report = format!("notification {}\n", queued.notification_id);
    if queued.deliveries.is_empty() {
        report.push_str("no deliverable device (none signed in with a live push token)\n");
        return Ok(report);
    }
    let ids: Vec<i64> = queued.deliveries.iter().map(|(_, job)| *job).collect();
    let deadline = tokio::time::Instant::now() + args.wait;
    let rows = loop {
        let rows = app.jobs.jobs(&ids).await?;
        let finished = rows.iter().all(|r| r.status == "done" || r.status == "dead");
        if finished || tokio::time::Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (device_id, job_id) in &queued.deliveries {
        let label = match device::Entity::find_by_id(*device_id).one(app.db.conn()).await? {
            Some(d) => format!(
                "device {device_id} ({} {} …{})",
                d.platform,
                d.push_provider.unwrap_or_default(),
                d.push_token.as_deref().and_then(|t| t.get(t.len().saturating_sub(8)..)).unwrap_or("")
            ),
            None => format!("device {device_id}"),
        };
        let outcome = match rows.iter().find(|r| r.id == *job_id) {
            Some(row) if row.status == "done" => {
                let result = row.result.clone().unwrap_or_default();
                match result["outcome"].as_str() {
                    Some("delivered") if result["provider"] == "log" => {
                        "logged only (LOG provider: no credentials configured for this provider)".to_owned()
                    }
                    Some("delivered") => format!(
                        "delivered via {} (id {})",
                        result["provider"].as_str().unwrap_or("?"),
                        result["id"].as_str().unwrap_or("-")
                    ),
                    _ => format!("skipped: {}", result["reason"].as_str().unwrap_or("?")),
                }
            }
            Some(row) if row.status == "dead" => {
                format!("failed: {}", row.last_error.clone().unwrap_or_default())
            }
            Some(row) => format!(
                "pending after {} attempt(s): {}",
                row.attempts,
                row.last_error.clone().unwrap_or_else(|| "not sent yet".into())
            ),
            None => "unknown".to_owned(),
        };
        let _ = writeln!(report, "{label}: {outcome}");
    }
    Ok(report)
}

/// `mobile-bff devices seed`: signs test devices of a user in, one per token, and registers
/// the tokens; `random` adds that many devices with random APNs-shaped tokens. Returns one
/// `device <id> <provider> <token>` line per device.
pub async fn seed_devices(
    app: &App,
    handle: &str,
    apns: &[String],
    fcm: &[String],
    environment: crate::push::tokens::Environment,
    random: usize,
) -> Result<String, PushError> {
    use crate::push::tokens::{self, Provider, Registration};
    let user = crate::social::user_by_handle(app.db.conn(), handle)
        .await?
        .ok_or_else(|| PushError::UnknownUser(handle.to_owned()))?;
    let mut wanted: Vec<(Provider, String)> = apns.iter().map(|t| (Provider::Apns, t.clone())).collect();
    wanted.extend(fcm.iter().map(|t| (Provider::Fcm, t.clone())));
    for _ in 0..random {
        let bytes: [u8; 32] = rand::random();
        wanted.push((Provider::Apns, crate::kernel::idempotency::hex(&bytes)));
    }
    let tx = app.db.begin_write().await?;
    let mut report = String::new();
    for (provider, token) in wanted {
        let token = tokens::validate(provider, &token)?;
        let info = crate::auth::DeviceInfo {
            client_device_id: uuid::Uuid::new_v4().to_string(),
            platform: if provider == Provider::Apns {
                crate::kernel::request::Platform::Ios
            } else {
                crate::kernel::request::Platform::Android
            },
            model: "Seeded test device".to_owned(),
            ..Default::default()
        };
        let row = crate::auth::upsert_device(&*tx, user.id, &info).await?;
        let environment = if provider == Provider::Apns { environment } else { Default::default() };
        tokens::register(&*tx, user.id, row.id, &Registration { provider, token: token.clone(), environment }).await?;
        let _ = writeln!(report, "device {} {} {token}", row.id, provider.as_str());
    }
    tx.commit().await?;
    Ok(report)
}
