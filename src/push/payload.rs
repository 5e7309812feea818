//! What a push says, and its two wire forms: the APNs JSON body (`aps` + custom keys) with its
//! push type and priority, and the FCM v1 `message` (notification, string-valued `data`,
//! `android.priority`, `collapse_key`, `ttl`). Both are checked against the providers' 4096-byte
//! limit before anything is sent: too large is an error that says by how much, never a
//! truncated push.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::push::error::PushError;

/// APNs' limit for alert and background pushes, in bytes.
pub const APNS_MAX_BYTES: usize = 4096;
/// FCM's limit for the notification and data of a message, in bytes.
pub const FCM_MAX_BYTES: usize = 4096;
/// `apns-collapse-id` limit, in bytes.
pub const MAX_COLLAPSE_BYTES: usize = 64;

/// Notification categories (preferences and history group by them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "NotificationCategory")]
pub enum Category {
    /// A new message.
    Messages,
    /// Comments, reactions, follows.
    Social,
    /// Product and account notices.
    System,
    /// Sign-ins, new devices, password changes.
    Security,
    /// Opt-in promotions.
    Marketing,
}

impl Category {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "MESSAGES",
            Self::Social => "SOCIAL",
            Self::System => "SYSTEM",
            Self::Security => "SECURITY",
            Self::Marketing => "MARKETING",
        }
    }

    /// Parses the stored or command-line form (any case).
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_uppercase().as_str() {
            "MESSAGES" => Self::Messages,
            "SOCIAL" => Self::Social,
            "SYSTEM" => Self::System,
            "SECURITY" => Self::Security,
            "MARKETING" => Self::Marketing,
            _ => return None,
        })
    }
}

/// Delivery priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "NotificationPriority")]
pub enum Priority {
    /// Time-sensitive: delivered at once (APNs priority 10, FCM `HIGH`).
    High,
    /// Deferrable: the OS may batch it to save battery (APNs 5, FCM `NORMAL`).
    Normal,
}

impl Priority {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "HIGH",
            Self::Normal => "NORMAL",
        }
    }

    /// Parses the stored or command-line form (any case).
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "HIGH" => Some(Self::High),
            "NORMAL" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// One notification as the providers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The notification record's id (sent as `nid` so the app can report opens).
    pub notification_id: i64,
    /// Category.
    pub category: Category,
    /// Priority (a silent push is always delivered at the low priority).
    pub priority: Priority,
    /// Title (empty for silent pushes).
    pub title: String,
    /// Body (empty for silent pushes).
    pub body: String,
    /// Data-only: wakes the app in the background, shows nothing.
    pub silent: bool,
    /// Custom keys for the app.
    pub data: Map<String, Value>,
    /// Newer pushes with the same key replace older ones on the device.
    pub collapse_key: Option<String>,
}

/// The APNs request for one message, minus the device token.
#[derive(Clone, Debug, PartialEq)]
pub struct ApnsRequest {
    /// The JSON body.
    pub body: Vec<u8>,
    /// `alert` or `background`.
    pub push_type: &'static str,
    /// `10` (alert, high) or `5`.
    pub priority: &'static str,
}

/// The APNs body: `aps` (`alert {title, body}` and `sound`, or `content-available: 1` for a
/// silent push), then the custom keys and `nid`.
pub fn apns(message: &Message) -> Result<ApnsRequest, PushError> {
    let mut root = Map::new();
    let aps = if message.silent {
        json!({ "content-available": 1 })
    } else {
        json!({
            "alert": { "title": message.title, "body": message.body },
            "sound": "default",
            "thread-id": message.category.as_str().to_ascii_lowercase(),
        })
    };
    root.insert("aps".to_owned(), aps);
    for (key, value) in &message.data {
        root.insert(key.clone(), value.clone());
    }
    root.insert("nid".to_owned(), json!(message.notification_id.to_string()));
    let body = serde_json::to_vec(&Value::Object(root)).map_err(|e| PushError::InvalidInput(e.to_string()))?;
    if body.len() > APNS_MAX_BYTES {
        return Err(PushError::PayloadTooLarge { provider: "APNs", limit: APNS_MAX_BYTES, size: body.len() });
    }
    let (push_type, priority) = match (message.silent, message.priority) {
        (true, _) => ("background", "5"),
        (false, Priority::High) => ("alert", "10"),
        (false, Priority::Normal) => ("alert", "5"),
    };
    Ok(ApnsRequest { body, push_type, priority })
}

/// The FCM v1 `message` for `token`, checked against the limit (the notification and data
/// count, the token and options do not).
pub fn fcm(message: &Message, token: &str, ttl_seconds: u64) -> Result<Value, PushError> {
    let mut data: Map<String, Value> = message
        .data
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (key.clone(), Value::String(text))
        })
        .collect();
    data.insert("nid".to_owned(), json!(message.notification_id.to_string()));
    let notification = (!message.silent).then(|| json!({ "title": message.title, "body": message.body }));
    let counted = json!({ "notification": notification, "data": data });
    let size = serde_json::to_vec(&counted).map_err(|e| PushError::InvalidInput(e.to_string()))?.len();
    if size > FCM_MAX_BYTES {
        return Err(PushError::PayloadTooLarge { provider: "FCM", limit: FCM_MAX_BYTES, size });
    }
    let priority = if message.silent || message.priority == Priority::Normal { "NORMAL" } else { "HIGH" };
    let mut android = json!({ "priority": priority, "ttl": format!("{ttl_seconds}s") });
    if let Some(key) = &message.collapse_key {
        android["collapse_key"] = json!(key);
    }
    let mut out = json!({ "token": token, "data": data, "android": android });
    if let Some(notification) = notification {
        out["notification"] = notification;
    }
    Ok(json!({ "message": out }))
}

/// Checks a message against both providers' limits and the collapse-key limit (at enqueue,
/// so the sender learns at once).
pub fn check(message: &Message) -> Result<(), PushError> {
    if let Some(key) = &message.collapse_key
        && (key.is_empty() || key.len() > MAX_COLLAPSE_BYTES)
    {
        return Err(PushError::InvalidInput(format!("collapseKey must be 1 to {MAX_COLLAPSE_BYTES} bytes")));
    }
    apns(message)?;
    fcm(message, "", 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Message {
        Message {
            notification_id: 7,
            category: Category::System,
            priority: Priority::High,
            title: "Hi".into(),
            body: body.into(),
            silent: false,
            data: Map::new(),
            collapse_key: None,
        }
    }

    #[test]
    fn alert_and_silent_bodies() {
        let alert = apns(&message("there")).expect("fits");
        let body: Value = serde_json::from_slice(&alert.body).expect("json");
        assert_eq!(body["aps"]["alert"], json!({ "title": "Hi", "body": "there" }));
        assert_eq!((alert.push_type, alert.priority), ("alert", "10"));
        let silent = apns(&Message { silent: true, ..message("") }).expect("fits");
        let body: Value = serde_json::from_slice(&silent.body).expect("json");
        assert_eq!(body["aps"], json!({ "content-available": 1 }));
        assert_eq!((silent.push_type, silent.priority), ("background", "5"));
    }

    #[test]
    fn too_large_says_by_how_much() {
        let err = apns(&message(&"x".repeat(5000))).expect_err("too large");
        let PushError::PayloadTooLarge { limit, size, .. } = &err else { panic!("{err:?}") };
        let (limit, size) = (*limit, *size);
        assert_eq!(limit, 4096);
        assert!(err.to_string().contains(&format!("{} over", size - 4096)), "{err}");
    }

    #[test]
    fn fcm_data_values_are_strings() {
        let mut m = message("b");
        m.data.insert("n".into(), json!(3));
        m.data.insert("o".into(), json!({ "a": true }));
        let out = fcm(&m, "tok", 60).expect("fits");
        assert_eq!(out["message"]["data"]["n"], json!("3"));
        assert_eq!(out["message"]["data"]["o"], json!("{\"a\":true}"));
        assert_eq!(out["message"]["android"]["ttl"], json!("60s"));
    }
}
