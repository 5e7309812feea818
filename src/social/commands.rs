//! The social write use cases behind the mutations. Each one claims its idempotency key, runs
//! in one write transaction (appending the realtime events it causes in that transaction) and
//! hands back its result with the events to publish once committed: the resolver maps inputs
//! and outputs and publishes, nothing more. A replayed key returns the first result and no
//! events (the first attempt published them).

use crate::{
    app::App,
    kernel::{
        error::DomainError,
        idempotency::{self, Committed},
    },
    realtime::{Activity, post_activity, user_event},
    social::{
        interactions::{self, CommentRef, FollowRef},
        posts::{self, NewPost, PostRef},
    },
};

/// What a social use case returns: its result and the log rows to publish.
pub type Outcome<T> = Committed<T, user_event::Model>;

/// `idempotency::once` for a use case that appends no events.
async fn quietly<T, I>(
    app: &App,
    user: i64,
    key: Option<&str>,
    operation: &str,
    input: &I,
    effect: impl for<'t> FnOnce(
        &'t crate::kernel::db::WriteTx,
    ) -> futures_util::future::BoxFuture<'t, Result<T, DomainError>>,
) -> Result<T, DomainError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    I: serde::Serialize,
{
    let (value, _) = idempotency::once::<_, user_event::Model, _>(
        &app.db,
        &app.settings.idempotency,
        user,
        key,
        operation,
        input,
        move |tx| {
            let effect = effect(tx);
            Box::pin(async move { Ok((effect.await?, Vec::new())) })
        },
    )
    .await?;
    Ok(value)
}

/// Publishes `new` as `author` (validated and normalised first).
pub async fn create_post(app: &App, author: i64, key: Option<&str>, new: NewPost) -> Result<PostRef, DomainError> {
    let new = new.validated()?;
    let fingerprint = new.clone();
    quietly(app, author, key, "createPost", &fingerprint, move |tx| Box::pin(posts::create(&**tx, author, new))).await
}

/// Deletes one of `user`'s posts.
pub async fn delete_post(app: &App, user: i64, key: Option<&str>, post_id: i64) -> Result<PostRef, DomainError> {
    quietly(app, user, key, "deletePost", &post_id, move |tx| Box::pin(posts::delete(&**tx, user, post_id))).await
}

/// `user` comments on a post; its author hears of it through their log.
pub async fn add_comment(
    app: &App,
    user: i64,
    key: Option<&str>,
    post_id: i64,
    body: String,
) -> Result<Outcome<CommentRef>, DomainError> {
    let settings = app.settings.realtime.clone();
    let fingerprint = (post_id, body.clone());
    idempotency::once(&app.db, &app.settings.idempotency, user, key, "addComment", &fingerprint, move |tx| {
        Box::pin(async move {
            let added = interactions::add_comment(&**tx, user, post_id, &body).await?;
            let activity = Activity::Comment { comment_id: added.comment_id };
            let events = post_activity(&**tx, &settings, post_id, user, activity).await?;
            Ok((added, events))
        })
    })
    .await
}

/// Sets `user`'s reaction (`kind` as stored) to a post; its author hears of it.
pub async fn react(
    app: &App,
    user: i64,
    key: Option<&str>,
    post_id: i64,
    kind: &'static str,
) -> Result<Outcome<PostRef>, DomainError> {
    let settings = app.settings.realtime.clone();
    idempotency::once(&app.db, &app.settings.idempotency, user, key, "react", &(post_id, kind), move |tx| {
        Box::pin(async move {
            let reacted = interactions::react(&**tx, user, post_id, kind).await?;
            let activity = Activity::Reaction { kind: kind.to_owned() };
            let events = post_activity(&**tx, &settings, post_id, user, activity).await?;
            Ok((reacted, events))
        })
    })
    .await
}

/// Removes `user`'s reaction from a post.
pub async fn unreact(app: &App, user: i64, key: Option<&str>, post_id: i64) -> Result<PostRef, DomainError> {
    quietly(app, user, key, "unreact", &post_id, move |tx| Box::pin(interactions::unreact(&**tx, user, post_id))).await
}

/// Which way a follow mutation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowChange {
    /// Start following.
    Follow,
    /// Stop following.
    Unfollow,
}

/// `user` follows or unfollows `target`.
pub async fn set_follow(
    app: &App,
    user: i64,
    key: Option<&str>,
    target: i64,
    change: FollowChange,
) -> Result<FollowRef, DomainError> {
    let operation = match change {
        FollowChange::Follow => "follow",
        FollowChange::Unfollow => "unfollow",
    };
    quietly(app, user, key, operation, &target, move |tx| {
        Box::pin(async move {
            match change {
                FollowChange::Follow => interactions::follow(&**tx, user, target).await,
                FollowChange::Unfollow => interactions::unfollow(&**tx, user, target).await,
            }
        })
    })
    .await
}
