//! `Query` root: nodes, the viewer, users, posts and the home feed.

use async_graphql::{Context, ID, Object, connection::Connection};

use crate::app::app;
use crate::social::loaders::loaders;
use crate::social::store::posts;
use crate::social::store::users;
use crate::{
    kernel::graphql::{
        context::viewer,
        error::{DomainResultExt, ErrorCode, api_error, db_error, loader_error},
        ids::{self, NodeType},
        pagination::{ListKind, PageArgs, connection_complexity},
    },
    node::Node,
    social::types::{comment::Comment, post::Post, user::User},
};

/// Read entry points.
#[derive(Default)]
pub struct SocialQuery;

async fn load_node(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let loaders = loaders(ctx)?;
    Ok(match ids::decode(id)? {
        (NodeType::User, row) => loaders.users.load_one(row).await.map_err(loader_error)?.map(|u| Node::User(u.into())),
        (NodeType::Post, row) => loaders.posts.load_one(row).await.map_err(loader_error)?.map(|p| Node::Post(p.into())),
        (NodeType::Comment, row) => {
            loaders.comments.load_one(row).await.map_err(loader_error)?.map(|(c, _)| Node::Comment(Comment::from(c)))
        }
        (NodeType::Device | NodeType::Notification, _) => None,
        (NodeType::Conversation, row) => crate::messaging::node_conversation(ctx, row).await?.map(Node::Conversation),
        (NodeType::Message, row) => crate::messaging::node_message(ctx, row).await?.map(Node::Message),
    })
}

#[Object]
impl SocialQuery {
    /// Any object by its global id; null if it does not exist.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        load_node(ctx, &id).await
    }

    /// Several objects by global id, in the same order (null where missing). At most 100.
    #[graphql(complexity = "ids.len().saturating_mul(child_complexity)")]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> async_graphql::Result<Vec<Option<Node>>> {
        let max = app(ctx)?.settings.limits.max_node_ids;
        if ids.len() > max {
            return Err(api_error(ErrorCode::BadUserInput, format!("at most {max} ids per request")));
        }
        let lookups = ids.iter().map(|id| load_node(ctx, id));
        futures_util::future::try_join_all(lookups).await
    }

    /// The signed-in user; null when the request has no access token.
    #[graphql(cache_control(private))]
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(user_id) = viewer(ctx).user_id else {
            return Ok(None);
        };
        let user = loaders(ctx)?.users.load_one(user_id).await.map_err(loader_error)?;
        Ok(user.map(User::from))
    }

    /// A user by handle (case-insensitive, with or without a leading `@`).
    async fn user(&self, ctx: &Context<'_>, handle: String) -> async_graphql::Result<Option<User>> {
        let handle = handle.trim().trim_start_matches('@');
        if handle.is_empty() || handle.len() > 30 {
            return Ok(None);
        }
        let user = users::by_handle(app(ctx)?.db.conn(), handle).await.map_err(db_error)?;
        Ok(user.map(User::from))
    }

    /// A post by id; null if it does not exist or was deleted.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Post>> {
        let row = ids::decode_as(&id, NodeType::Post)?;
        let post = loaders(ctx)?.posts.load_one(row).await.map_err(loader_error)?;
        Ok(post.map(Post::from))
    }

    /// The home feed: posts by the viewer and the users they follow, newest first. Cursors
    /// stay valid while new posts arrive: new posts only ever appear before the first page.
    #[graphql(complexity = "connection_complexity(child_complexity, first)", cache_control(private))]
    async fn feed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Post>> {
        let viewer = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let args = PageArgs::parse(ListKind::Feed, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = posts::feed_page(app.db.conn(), viewer, args.after, args.first).await.map_err(db_error)?;
        Post::connection_with_authors(ctx, ListKind::Feed, page, args.after.is_some()).await
    }
}
