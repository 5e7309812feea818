//! Sync in the API: `pullNotes` / `pushNotes` / `streamNotes` in the shapes of RxDB's GraphQL
//! replication plugin (`deletedField: 'deleted'`), the native per-row `syncNotes`, sharing,
//! and the conflict records (`syncConflicts`, `resolveSyncConflict`); the types are in
//! [`crate::sync::types`]. docs/sync-protocol.md describes the protocol.

use async_graphql::{
    Context, ID, Object, Subscription,
    connection::{Connection, Edge},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{Stream, StreamExt};

use crate::app::app;
use crate::kernel::graphql::{
    context::viewer,
    error::{DomainResultExt, ErrorCode, api_error},
    ids::{self, NodeType},
};
use crate::sync::{
    conflicts::{self, Action},
    error::{SyncError, SyncResultExt},
    model::Content,
    pull,
    push::{self, Actor, PushRow, Status},
    share, store, stream,
    types::{
        Note, NoteCheckpointInput, NoteInput, NotePullBulk, NotePushRow, NoteSyncResult, SyncConflict,
        SyncConflictAction,
    },
};

fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let who = viewer(ctx);
    Ok(Actor { user_id: who.require().api()?, device_id: who.device_id })
}

fn push_rows(ctx: &Context<'_>, rows: Vec<NotePushRow>) -> async_graphql::Result<Vec<PushRow>> {
    let max = app(ctx)?.settings.sync.max_push_rows;
    if rows.len() > max {
        return Err(api_error(ErrorCode::BadUserInput, format!("at most {max} rows per push")));
    }
    Ok(rows
        .into_iter()
        .map(|r| PushRow {
            id: r.new_document_state.id.clone(),
            assumed_id: r.assumed_master_state.as_ref().map(|a| a.id.clone()),
            assumed: r.assumed_master_state.as_ref().map(NoteInput::content),
            assumed_hlc: r.assumed_master_state.and_then(|a| a.hlc),
            new: r.new_document_state.content(),
            new_hlc: r.new_document_state.hlc,
        })
        .collect())
}

const CONFLICT_CURSOR: &str = "conflicts|";

/// Sync reads.
#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// The viewer's notes changed after `checkpoint` (null: initial sync), tombstones
    /// included, in change order, at most `limit`. `RESYNC_REQUIRED` when the checkpoint is
    /// older than tombstone retention: drop local notes and pull from null.
    #[graphql(cache_control(private))]
    async fn pull_notes(
        &self,
        ctx: &Context<'_>,
        checkpoint: Option<NoteCheckpointInput>,
        limit: i32,
    ) -> async_graphql::Result<NotePullBulk> {
        let viewer = actor(ctx)?.user_id;
        let app = app(ctx)?;
        let max = app.settings.sync.max_pull_limit;
        if !(1..=max).contains(&limit) {
            return Err(api_error(ErrorCode::BadUserInput, format!("limit must be between 1 and {max}")));
        }
        let bulk = pull::pull(app.db.conn(), viewer, checkpoint.map(Into::into), limit as u64).await.api()?;
        Ok(bulk.into())
    }

    /// One note the viewer can see (null otherwise).
    #[graphql(cache_control(private))]
    async fn note(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Note>> {
        let viewer = actor(ctx)?.user_id;
        crate::sync::model::validate_id(&id).api()?;
        Ok(push::current(app(ctx)?.db.conn(), &id, viewer).await.api()?.map(Note::from_view))
    }

    /// Resolved conflicts on notes the viewer can see, newest first.
    #[graphql(cache_control(private))]
    async fn sync_conflicts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Also dismissed ones (default false).")] include_dismissed: Option<bool>,
    ) -> async_graphql::Result<Connection<String, SyncConflict>> {
        let viewer = actor(ctx)?.user_id;
        let include_dismissed = include_dismissed.unwrap_or(false);
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(api_error(ErrorCode::BadUserInput, "first must be between 1 and 100"));
        }
        let before = match after {
            None => None,
            Some(cursor) => Some(
                URL_SAFE_NO_PAD
                    .decode(cursor.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix(CONFLICT_CURSOR).and_then(|id| id.parse::<i64>().ok()))
                    .ok_or_else(|| api_error(ErrorCode::BadUserInput, "invalid cursor"))?,
            ),
        };
        let conn = app(ctx)?.db.conn();
        let mut rows = store::conflicts_for_viewer(conn, viewer, before, include_dismissed, first as u64 + 1)
            .await
            .map_err(SyncError::from)
            .api()?;
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut connection = Connection::new(before.is_some(), has_next);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = URL_SAFE_NO_PAD.encode(format!("{CONFLICT_CURSOR}{}", row.id));
            Edge::new(cursor, SyncConflict(row))
        }));
        Ok(connection)
    }
}

/// Sync writes.
#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// RxDB's push: applies the rows in order and returns the server's state of every row it
    /// did not take as sent — conflicts (assumed state not the server's), rows merged with
    /// other changes, and refused rows (their server state, or an empty tombstone when the
    /// viewer may not see the note). An empty list means everything was applied as sent.
    async fn push_notes(&self, ctx: &Context<'_>, rows: Vec<NotePushRow>) -> async_graphql::Result<Vec<Note>> {
        let actor = actor(ctx)?;
        let rows = push_rows(ctx, rows)?;
        let sent: Vec<Content> = rows.iter().map(|r| r.new.clone()).collect();
        let results = push::push(app(ctx)?, actor, rows).await;
        Ok(results
            .into_iter()
            .zip(sent)
            .filter_map(|(result, sent)| match result.note {
                Some(view) if result.status != Status::Synced || !view.row.content.same_all(&sent) => {
                    Some(Note::from_view(view))
                }
                Some(_) => None,
                None if result.status == Status::Rejected => Some(Note::tombstone(result.id, actor.user_id)),
                None => None,
            })
            .collect())
    }

    /// The native push: the same rows, one answer per row in order — `SYNCED`, `CONFLICT`
    /// (with the server's state and how it was resolved) or `REJECTED` (code and message). A
    /// refused row never stops the rows after it; a repeated row answers `SYNCED`.
    async fn sync_notes(
        &self,
        ctx: &Context<'_>,
        rows: Vec<NotePushRow>,
    ) -> async_graphql::Result<Vec<NoteSyncResult>> {
        let actor = actor(ctx)?;
        let rows = push_rows(ctx, rows)?;
        Ok(push::push(app(ctx)?, actor, rows).await.into_iter().map(NoteSyncResult::from).collect())
    }

    /// Shares a note the viewer owns with another user, who can then pull and edit it.
    async fn share_note(&self, ctx: &Context<'_>, id: String, user_id: ID) -> async_graphql::Result<Note> {
        set_member(ctx, id, user_id, true).await
    }

    /// Stops sharing a note; the user's devices get it as a deletion.
    async fn unshare_note(&self, ctx: &Context<'_>, id: String, user_id: ID) -> async_graphql::Result<Note> {
        set_member(ctx, id, user_id, false).await
    }

    /// Dismisses a conflict, or stores one of its two versions as a new change.
    async fn resolve_sync_conflict(
        &self,
        ctx: &Context<'_>,
        id: ID,
        action: SyncConflictAction,
    ) -> async_graphql::Result<SyncConflict> {
        let actor = actor(ctx)?;
        let id = id.parse::<i64>().map_err(|_| api_error(ErrorCode::BadUserInput, "invalid conflict id"))?;
        let action = match action {
            SyncConflictAction::Dismiss => Action::Dismiss,
            SyncConflictAction::TakeServer => Action::TakeServer,
            SyncConflictAction::TakeClient => Action::TakeClient,
        };
        let app = app(ctx)?;
        let (conflict, events) = conflicts::resolve(app, actor, id, action).await.api()?;
        app.bus.publish(events);
        Ok(SyncConflict(conflict))
    }
}

async fn set_member(ctx: &Context<'_>, id: String, user_id: ID, share: bool) -> async_graphql::Result<Note> {
    let actor = actor(ctx)?;
    let user = ids::decode_as(&user_id, NodeType::User)?;
    let app = app(ctx)?;
    let (view, events) = share::set_member(app, actor, &id, user, share).await.api()?;
    app.bus.publish(events);
    Ok(Note::from_view(view))
}

/// Sync live updates.
#[derive(Default)]
pub struct SyncSubscription;

#[Subscription]
impl SyncSubscription {
    /// The viewer's note changes as they happen (RxDB's pull stream). With `checkpoint`,
    /// first what changed after it. After a reconnect, pull from your checkpoint (RxDB does
    /// on its own), then listen again.
    async fn stream_notes(
        &self,
        ctx: &Context<'_>,
        checkpoint: Option<NoteCheckpointInput>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<NotePullBulk>> + use<>> {
        let viewer = actor(ctx)?.user_id;
        let app = app(ctx)?;
        let bulks = stream::notes(app.db.clone(), app.bus.clone(), viewer, checkpoint.map(Into::into));
        Ok(bulks.map(|item| item.map(NotePullBulk::from).map_err(SyncError::into_api)))
    }
}
