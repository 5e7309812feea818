//! `Mutation` root: posts, comments, reactions and follows. Every mutation takes an optional
//! `idempotencyKey`; a retry with the same key returns the first result with no second effect.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::app::app;
use crate::media::MediaInput;
use crate::social::loaders::loaders;
use crate::social::{
    commands::{self, FollowChange},
    posts::{NewPost, PostRef},
};
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

/// After a write: values cached earlier in this operation may be stale.
fn written(ctx: &Context<'_>) -> async_graphql::Result<()> {
    loaders(ctx)?.clear();
    Ok(())
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
            media: crate::media::post_attachments(input.media, crate::social::posts::MAX_MEDIA).api()?,
        };
        let created = commands::create_post(app(ctx)?, author, input.idempotency_key.as_deref(), new).await.api()?;
        written(ctx)?;
        Ok(CreatePostPayload { post: load_post(ctx, created).await? })
    }

    /// Deletes one of the viewer's posts.
    async fn delete_post(&self, ctx: &Context<'_>, input: DeletePostInput) -> async_graphql::Result<DeletePostPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.id, NodeType::Post)?;
        let deleted = commands::delete_post(app(ctx)?, user, input.idempotency_key.as_deref(), post_id).await.api()?;
        written(ctx)?;
        Ok(DeletePostPayload { deleted_post_id: ids::encode(NodeType::Post, deleted.post_id) })
    }

    /// Comments on a post.
    async fn add_comment(&self, ctx: &Context<'_>, input: AddCommentInput) -> async_graphql::Result<AddCommentPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.post_id, NodeType::Post)?;
        let app = app(ctx)?;
        let key = input.idempotency_key.as_deref();
        let (added, events) = commands::add_comment(app, user, key, post_id, input.body).await.api()?;
        app.bus.publish(events);
        written(ctx)?;
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
        let app = app(ctx)?;
        let key = input.idempotency_key.as_deref();
        let (reacted, events) = commands::react(app, user, key, post_id, input.kind.as_storage()).await.api()?;
        app.bus.publish(events);
        written(ctx)?;
        Ok(ReactionPayload { post: load_post(ctx, reacted).await? })
    }

    /// Removes the viewer's reaction from a post.
    async fn unreact(&self, ctx: &Context<'_>, input: UnreactInput) -> async_graphql::Result<ReactionPayload> {
        let user = viewer(ctx).require().api()?;
        let post_id = ids::decode_as(&input.post_id, NodeType::Post)?;
        let done = commands::unreact(app(ctx)?, user, input.idempotency_key.as_deref(), post_id).await.api()?;
        written(ctx)?;
        Ok(ReactionPayload { post: load_post(ctx, done).await? })
    }

    /// The viewer follows a user.
    async fn follow(&self, ctx: &Context<'_>, input: FollowInput) -> async_graphql::Result<FollowPayload> {
        follow_change(ctx, input, FollowChange::Follow).await
    }

    /// The viewer stops following a user.
    async fn unfollow(&self, ctx: &Context<'_>, input: FollowInput) -> async_graphql::Result<FollowPayload> {
        follow_change(ctx, input, FollowChange::Unfollow).await
    }
}

async fn follow_change(
    ctx: &Context<'_>,
    input: FollowInput,
    change: FollowChange,
) -> async_graphql::Result<FollowPayload> {
    let user = viewer(ctx).require().api()?;
    let target = ids::decode_as(&input.user_id, NodeType::User)?;
    let key = input.idempotency_key.as_deref();
    let done = commands::set_follow(app(ctx)?, user, key, target, change).await.api()?;
    written(ctx)?;
    Ok(FollowPayload { user: load_user(ctx, done.user_id).await?, viewer: load_user(ctx, user).await? })
}
