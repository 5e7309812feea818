//! Acting on a recorded conflict: dismiss it, or write the server's or the client's value of
//! its field as a new change (which every device then pulls).

use crate::app::App;
use crate::realtime::user_event;
use crate::sync::{
    changes::{self, Write},
    error::SyncError,
    model::{Field, now_ms},
    push::Actor,
    store::{self, ConflictRow},
};

/// What to do with a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Acknowledge it; the note stays as it is.
    Dismiss,
    /// Store the server's value of the field.
    TakeServer,
    /// Store the pushed value of the field.
    TakeClient,
}

/// Applies `action` to conflict `id` (the viewer must see its note).
pub async fn resolve(
    app: &App,
    actor: Actor,
    id: i64,
    action: Action,
) -> Result<(ConflictRow, Vec<user_event::Model>), SyncError> {
    let tx = app.db.begin_write().await?;
    let Some(conflict) = store::conflict(&*tx, id).await? else { return Err(SyncError::NotFound("conflict")) };
    let Some(mut note) = store::lock_note(&*tx, &conflict.note_id).await? else {
        return Err(SyncError::NotFound("conflict"));
    };
    let members = store::members(&*tx, &note.id).await?;
    if note.owner_id != actor.user_id && !members.contains(&actor.user_id) {
        return Err(SyncError::NotFound("conflict"));
    }
    let mut events = Vec::new();
    let value = match action {
        Action::Dismiss => None,
        Action::TakeServer => Some(&conflict.server_value),
        Action::TakeClient => Some(&conflict.client_value),
    };
    if let Some(value) = value {
        let field = Field::parse(&conflict.field).ok_or_else(|| SyncError::Invalid("unknown field".into()))?;
        let value: serde_json::Value = serde_json::from_str(value)?;
        let mut content = note.content.clone();
        content.set(field, &value)?;
        if !content.same_all(&note.content) {
            note.content = content;
            note.revision += 1;
            note.clocks.insert(field.as_str().to_owned(), app.sync_clock.stamp().to_string());
            note.last_user_id = actor.user_id;
            note.last_device_id = actor.device_id;
            let visible: Vec<i64> = members.iter().copied().chain([note.owner_id]).collect();
            let previous = note.updated_at_ms;
            events =
                changes::record(&*tx, &app.settings.realtime, &mut note, Some(previous), &visible, &[], Write::Update)
                    .await?
                    .unwrap_or_default();
        }
    }
    let at = now_ms();
    store::dismiss_conflict(&*tx, id, at).await?;
    tx.commit().await?;
    let conflict = ConflictRow { dismissed_at_ms: Some(conflict.dismissed_at_ms.unwrap_or(at)), ..conflict };
    Ok((conflict, events))
}
