//! Sharing: the owner adds or removes collaborators. Either is a change of the note for
//! everyone who sees it; a removed collaborator gets it as a deletion.

use crate::app::App;
use crate::realtime::user_event;
use crate::sync::{
    changes::{self, Write},
    error::SyncError,
    push::{Actor, NoteView},
    store,
};

/// Adds (`share = true`) or removes a collaborator of `note_id`; owner only.
pub async fn set_member(
    app: &App,
    actor: Actor,
    note_id: &str,
    user_id: i64,
    share: bool,
) -> Result<(NoteView, Vec<user_event::Model>), SyncError> {
    crate::sync::model::validate_id(note_id)?;
    let tx = app.db.begin_write().await?;
    let Some(mut note) = store::lock_note(&*tx, note_id).await? else { return Err(SyncError::NotFound("note")) };
    let members = store::members(&*tx, note_id).await?;
    if note.owner_id != actor.user_id {
        return Err(if members.contains(&actor.user_id) {
            SyncError::Forbidden("only the owner shares or unshares a note")
        } else {
            SyncError::NotFound("note")
        });
    }
    if user_id == note.owner_id {
        return Err(SyncError::Invalid("the owner always has the note".into()));
    }
    if crate::social::users_by_ids(&*tx, &[user_id]).await?.is_empty() {
        return Err(SyncError::NotFound("user"));
    }
    let already = members.contains(&user_id);
    if share == already {
        tx.commit().await?;
        return Ok((NoteView { row: note, members, visible: true }, Vec::new()));
    }
    if share {
        if members.len() >= app.settings.sync.max_collaborators {
            return Err(SyncError::TooLarge(format!("at most {} collaborators", app.settings.sync.max_collaborators)));
        }
        store::add_member(&*tx, note_id, user_id).await?;
    } else {
        store::remove_member(&*tx, note_id, user_id).await?;
    }
    let members = store::members(&*tx, note_id).await?;
    let visible: Vec<i64> = members.iter().copied().chain([note.owner_id]).collect();
    let lost = if share { Vec::new() } else { vec![user_id] };
    note.revision += 1;
    let previous = note.updated_at_ms;
    let events =
        changes::record(&*tx, &app.settings.realtime, &mut note, Some(previous), &visible, &lost, Write::Update)
            .await?
            .unwrap_or_default();
    tx.commit().await?;
    Ok((NoteView { row: note, members, visible: true }, events))
}
