//! `Mutation` root: posts, comments, reactions and follows. Every mutation takes an optional
//! `idempotencyKey`; a retry with the same key returns the first result with no second effect.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use futures_util::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};

use crate::app::app;
use crate::media::MediaInput;
use crate::social::loaders::loaders;
use crate::{
    kernel::graphql::{
        context::viewer,
        error::{DomainResultExt, loader_error},
        ids::{self, NodeType},
    },
    social::types::{
        comment::Comment,
        post::{Post, ReactionKind},
        user::User,
    },
};
use crate::{
    kernel::{
        db::WriteTx,
        error::DomainError,
        idempotency::{self, Attempt},
        validate,
    },
    realtime::activity::{self, Activity},
    social::{
        interactions::{self, CommentRef, FollowRef},
        posts::{self, NewPost, PostRef},
    },
};

/// Runs `effect` once per idempotency key: the first call performs it in a write
/// transaction and stores its result; retries return the stored result.
async fn idempotent<T, I>(
    ctx: &Context<'_>,
    operation: &str,
    key: Option<String>,
    input: &I,
    effect: impl for<'t> FnOnce(&'t WriteTx) -> BoxFuture<'t, Result<T, DomainError>>,
) -> async_graphql::Result<T>
where
    T: Serialize + DeserializeOwned,
    I: Serialize,
{
    let app = app(ctx)?;
    let user = viewer(ctx).require().api()?;
    let key = key.as_deref().map(validate::idempotency_key).transpose().api()?;
    let result = match idempotency::begin(&app.db, &app.settings.idempotency, user, key.as_deref(), operation, input)
        .await
        .api()?
    {
        Attempt::Replay(result) => result,
        Attempt::First(tx) => {
            let result = effect(tx.tx()).await.api()?;
            tx.finish(&result).await.api()?;
            result
        }
    };
    // Values cached earlier in this operation may be stale now.
    loaders(ctx)?.clear();
    Ok(result)
}

/// Events appended inside an idempotent effect, published once it has committed (a replayed
/// attempt appends and publishes nothing).
#[derive(Clone, Default)]
struct PendingEvents(std::sync::Arc<std::sync::Mutex<Vec<crate::realtime::entities::user_event::Model>>>);

impl PendingEvents {
    fn set(&self, events: Vec<crate::realtime::entities::user_event::Model>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = events;
    }

    fn take(&self) -> Vec<crate::realtime::entities::user_event::Model> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

async fn load_post(ctx: &Context<'_>, post: PostRef) -> async_graphql::Result<Option<Post>> {
    let row = loaders(ctx)?.posts.load_one(post.post_id).await.map_err(loader_error)?;
    Ok(row.map(Post::from))
}

async fn load_user(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<User>> {
    let row = loaders(ctx)?.users.load_one(id).await.map_err(loader_error)?;
    Ok(row.map(User::from))
}

/// Input of `createPost`.
#[derive(InputObject)]
pub struct CreatePostInput {
    /// Text, 1 to 5000 characters.
    pub body: String,
    /// http(s) URLs, at most 10.
    #[graphql(default)]
    pub links: Vec<String>,
    /// The viewer's uploads to attach, at most 10.
    #[graphql(default)]
    pub media: Vec<MediaInput>,
    /// Client key making retries safe (8–128 chars of `[A-Za-z0-9_.:-]`, e.g. a UUID).
    pub idempotency_key: Option<String>,
}

/// Result of `createPost`.
#[derive(SimpleObject)]
pub struct CreatePostPayload {
    /// The new post (null if it was deleted since).
    pub post: Option<Post>,
}

/// Input of `deletePost`.
#[derive(InputObject)]
pub struct DeletePostInput {
    /// The post.
    pub id: ID,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Result of `deletePost`.
#[derive(SimpleObject)]
pub struct DeletePostPayload {
    /// Id of the deleted post.
    pub deleted_post_id: ID,
}

/// Input of `addComment`.
#[derive(InputObject)]
pub struct AddCommentInput {
    /// The post.
    pub post_id: ID,
    /// Text, 1 to 2000 characters.
    pub body: String,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Result of `addComment`.
#[derive(SimpleObject)]
pub struct AddCommentPayload {
    /// The new comment.
    pub comment: Option<Comment>,
    /// Its post, with updated counts.
    pub post: Option<Post>,
}

/// Input of `react`.
#[derive(InputObject)]
pub struct ReactInput {
    /// The post.
    pub post_id: ID,
    /// The reaction; replaces an earlier one.
    pub kind: ReactionKind,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Input of `unreact`.
#[derive(InputObject)]
pub struct UnreactInput {
    /// The post.
    pub post_id: ID,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Result of `react` and `unreact`.
#[derive(SimpleObject)]
pub struct ReactionPayload {
    /// The post, with updated counts and viewer reaction.
    pub post: Option<Post>,
}

/// Input of `follow` and `unfollow`.
#[derive(InputObject)]
pub struct FollowInput {
    /// The user to (un)follow.
    pub user_id: ID,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Result of `follow` and `unfollow`.
#[derive(SimpleObject)]
pub struct FollowPayload {
    /// The (un)followed user, with updated counts.
    pub user: Option<User>,
    /// The viewer, with updated counts.
    pub viewer: Option<User>,
}

/// Write entry points.
#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Publishes a post.
    async fn create_post(&self, ctx: &Context<'_>, input: CreatePostInput) -> async_graphql::Result<CreatePostPayload> {
        let author = viewer(ctx).require().api()?;
        let new = NewPost {
            body: input.body,
            links: input.links,
            media: crate::media::post_attachments(input.media, posts::MAX_MEDIA).api()?,
        }
        .validated()
        .api()?;
        let fingerprint = new.clone();
        let created: PostRef = idempotent(ctx, "createPost", input.idempotency_key, &fingerprint, move |tx| {
            Box::pin(async move { posts::create(&**tx, author, new).await })
        })
        .await?;
        Ok(CreatePostPayload { post: load_post(ctx, created).await? })
    }

    /// Deletes one of the viewer's posts.
    async fn delete_post(&self, ctx: &Context<'_>, input: DeletePostInput) -> async_graphql::Result<DeletePostPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.id, NodeType::Post)?;
        let deleted: PostRef = idempotent(ctx, "deletePost", input.idempotency_key, &post_id, move |tx| {
            Box::pin(async move { posts::delete(&**tx, user, post_id).await })
        })
        .await?;
        Ok(DeletePostPayload { deleted_post_id: ids::encode(NodeType::Post, deleted.post_id) })
    }

    /// Comments on a post.
    async fn add_comment(&self, ctx: &Context<'_>, input: AddCommentInput) -> async_graphql::Result<AddCommentPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.post_id, NodeType::Post)?;
        let body = input.body;
        let fingerprint = (post_id, body.clone());
        let app = app(ctx)?;
        let (settings, events) = (app.settings.realtime.clone(), PendingEvents::default());
        let pending = events.clone();
        let added: CommentRef = idempotent(ctx, "addComment", input.idempotency_key, &fingerprint, move |tx| {
            Box::pin(async move {
                let added = interactions::add_comment(&**tx, user, post_id, &body).await?;
                let activity = Activity::Comment { comment_id: added.comment_id };
                pending.set(activity::post_activity(&**tx, &settings, post_id, user, activity).await?);
                Ok(added)
            })
        })
        .await?;
        app.bus.publish(events.take());
        let comment = loaders(ctx)?.comments.load_one(added.comment_id).await.map_err(loader_error)?;
        Ok(AddCommentPayload {
            comment: comment.map(|(c, _)| Comment::from(c)),
            post: load_post(ctx, PostRef { post_id: added.post_id }).await?,
        })
    }

    /// Sets the viewer's reaction to a post.
    async fn react(&self, ctx: &Context<'_>, input: ReactInput) -> async_graphql::Result<ReactionPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.post_id, NodeType::Post)?;
        let kind = input.kind.as_storage();
        let app = app(ctx)?;
        let (settings, events) = (app.settings.realtime.clone(), PendingEvents::default());
        let pending = events.clone();
        let reacted: PostRef = idempotent(ctx, "react", input.idempotency_key, &(post_id, kind), move |tx| {
            Box::pin(async move {
                let reacted = interactions::react(&**tx, user, post_id, kind).await?;
                let activity = Activity::Reaction { kind: kind.to_owned() };
                pending.set(activity::post_activity(&**tx, &settings, post_id, user, activity).await?);
                Ok(reacted)
            })
        })
        .await?;
        app.bus.publish(events.take());
        Ok(ReactionPayload { post: load_post(ctx, reacted).await? })
    }

    /// Removes the viewer's reaction from a post.
    async fn unreact(&self, ctx: &Context<'_>, input: UnreactInput) -> async_graphql::Result<ReactionPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.post_id, NodeType::Post)?;
        let done: PostRef = idempotent(ctx, "unreact", input.idempotency_key, &post_id, move |tx| {
            Box::pin(async move { interactions::unreact(&**tx, user, post_id).await })
        })
        .await?;
        Ok(ReactionPayload { post: load_post(ctx, done).await? })
    }

    /// The viewer follows a user.
    async fn follow(&self, ctx: &Context<'_>, input: FollowInput) -> async_graphql::Result<FollowPayload> {
        let user = viewer(ctx).require().api()?;
        let target = ids::decode_as(&input.user_id, NodeType::User)?;
        let done: FollowRef = idempotent(ctx, "follow", input.idempotency_key, &target, move |tx| {
            Box::pin(async move { interactions::follow(&**tx, user, target).await })
        })
        .await?;
        Ok(FollowPayload { user: load_user(ctx, done.user_id).await?, viewer: load_user(ctx, user).await? })
    }

    /// The viewer stops following a user.
    async fn unfollow(&self, ctx: &Context<'_>, input: FollowInput) -> async_graphql::Result<FollowPayload> {
        let user = viewer(ctx).require().api()?;
        let target = ids::decode_as(&input.user_id, NodeType::User)?;
        let done: FollowRef = idempotent(ctx, "unfollow", input.idempotency_key, &target, move |tx| {
            Box::pin(async move { interactions::unfollow(&**tx, user, target).await })
        })
        .await?;
        Ok(FollowPayload { user: load_user(ctx, done.user_id).await?, viewer: load_user(ctx, user).await? })
    }
}
