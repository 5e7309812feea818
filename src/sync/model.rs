//! The note as sync sees it: its client-editable [`Content`], the [`Field`]s conflicts are
//! resolved on, the stored [`NoteRow`] with its per-field clocks, and input validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sync::{error::SyncError, settings::SyncSettings};

/// A field of a note that clients edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `title`
    Title,
    /// `body`
    Body,
    /// `done`
    Done,
    /// `position`
    Position,
    /// `tags`
    Tags,
    /// `deleted`
    Deleted,
}

impl Field {
    /// Every field, in document order.
    pub const ALL: [Field; 6] = [Field::Title, Field::Body, Field::Done, Field::Position, Field::Tags, Field::Deleted];

    /// The stored (and clock-map) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Body => "body",
            Self::Done => "done",
            Self::Position => "position",
            Self::Tags => "tags",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == value)
    }

    /// Whether the field is free text (may keep both versions).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Title | Self::Body)
    }
}

/// What a client edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Checked off.
    pub done: bool,
    /// Sort position chosen by the client.
    pub position: f64,
    /// Tags.
    pub tags: Vec<String>,
    /// Tombstone.
    pub deleted: bool,
}

impl Content {
    /// The value of one field, as JSON (conflict records).
    pub fn get(&self, field: Field) -> Value {
        match field {
            Field::Title => Value::from(self.title.clone()),
            Field::Body => Value::from(self.body.clone()),
            Field::Done => Value::from(self.done),
            Field::Position => Value::from(self.position),
            Field::Tags => Value::from(self.tags.clone()),
            Field::Deleted => Value::from(self.deleted),
        }
    }

    /// Sets one field from its JSON value (`Invalid` when the type does not fit).
    pub fn set(&mut self, field: Field, value: &Value) -> Result<(), SyncError> {
        let wrong = || SyncError::Invalid(format!("stored value of {} has the wrong type", field.as_str()));
        match field {
            Field::Title => self.title = value.as_str().ok_or_else(wrong)?.to_owned(),
            Field::Body => self.body = value.as_str().ok_or_else(wrong)?.to_owned(),
            Field::Done => self.done = value.as_bool().ok_or_else(wrong)?,
            Field::Position => self.position = value.as_f64().ok_or_else(wrong)?,
            Field::Tags => self.tags = serde_json::from_value(value.clone()).map_err(|_| wrong())?,
            Field::Deleted => self.deleted = value.as_bool().ok_or_else(wrong)?,
        }
        Ok(())
    }

    /// Whether `field` has the same value in both.
    pub fn same(&self, other: &Content, field: Field) -> bool {
        match field {
            Field::Title => self.title == other.title,
            Field::Body => self.body == other.body,
            Field::Done => self.done == other.done,
            Field::Position => self.position.to_bits() == other.position.to_bits() || self.position == other.position,
            Field::Tags => self.tags == other.tags,
            Field::Deleted => self.deleted == other.deleted,
        }
    }

    /// Whether every field is the same.
    pub fn same_all(&self, other: &Content) -> bool {
        Field::ALL.into_iter().all(|f| self.same(other, f))
    }

    /// Checks the bounds of `[sync]`.
    pub fn validate(&self, settings: &SyncSettings) -> Result<(), SyncError> {
        if self.title.chars().count() > settings.max_title_chars {
            return Err(SyncError::TooLarge(format!("title is longer than {} characters", settings.max_title_chars)));
        }
        if self.body.chars().count() > settings.max_body_chars {
            return Err(SyncError::TooLarge(format!("body is longer than {} characters", settings.max_body_chars)));
        }
        if self.tags.len() > settings.max_tags {
            return Err(SyncError::TooLarge(format!("at most {} tags", settings.max_tags)));
        }
        if let Some(tag) = self.tags.iter().find(|t| t.is_empty() || t.chars().count() > settings.max_tag_chars) {
            return Err(SyncError::Invalid(format!(
                "tag {:?} must be 1 to {} characters",
                tag.chars().take(80).collect::<String>(),
                settings.max_tag_chars
            )));
        }
        if !self.position.is_finite() {
            return Err(SyncError::Invalid("position must be a finite number".into()));
        }
        if self.title.contains('\0') || self.body.contains('\0') || self.tags.iter().any(|t| t.contains('\0')) {
            return Err(SyncError::Invalid("text must not contain NUL characters".into()));
        }
        Ok(())
    }
}

/// Per-field clock stamps (`uhlc` timestamps as text, `<ntp64>/<hex id>`).
pub type Clocks = BTreeMap<String, String>;

/// A stored note.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteRow {
    /// Client-generated UUID.
    pub id: String,
    /// Who owns it (may share, unshare).
    pub owner_id: i64,
    /// The content.
    pub content: Content,
    /// Server time of the last change, ms since the epoch (never moves backwards).
    pub updated_at_ms: i64,
    /// Server time of creation, ms since the epoch.
    pub created_at_ms: i64,
    /// Increases with every change.
    pub revision: i64,
    /// The clock of the last write of each field.
    pub clocks: Clocks,
    /// Who wrote last.
    pub last_user_id: i64,
    /// From which device session (none for development tokens).
    pub last_device_id: Option<i64>,
}

impl NoteRow {
    /// The newest of the field clocks (the note's `hlc`).
    pub fn newest_clock(&self) -> Option<String> {
        self.clocks
            .values()
            .filter_map(|c| c.parse::<uhlc::Timestamp>().ok().map(|t| (t, c)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, c)| c.clone())
    }
}

/// A note id must be a UUID in its canonical text form (36 characters).
pub fn validate_id(id: &str) -> Result<(), SyncError> {
    if id.len() != 36 || uuid::Uuid::parse_str(id).is_err() {
        return Err(SyncError::Invalid("id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)".into()));
    }
    Ok(())
}

/// The current server time in ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
