//! `Comment`: a comment, its author and its post.

use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::social::loaders::loaders;
use crate::social::types::{post::Post, user::User};
use crate::{
    kernel::graphql::{
        error::{ErrorCode, api_error, loader_error},
        ids::{self, NodeType},
    },
    social::entities::comment,
};

/// A comment row as the API shows it, shared with the loaders' caches (see [`super::user::User`]).
#[derive(Clone, Debug)]
pub struct Comment {
    row: Arc<comment::Model>,
}

impl From<Arc<comment::Model>> for Comment {
    fn from(row: Arc<comment::Model>) -> Self {
        Self { row }
    }
}

/// A comment on a post.
#[Object(cache_control(max_age = 30))]
impl Comment {
    /// Text of the comment.
    async fn body(&self) -> &str {
        &self.row.body
    }

    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Comment, self.row.id)
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders(ctx)?
            .users
            .load_one(self.row.author_id)
            .await
            .map_err(loader_error)?
            .map(User::from)
            .ok_or_else(|| api_error(ErrorCode::NotFound, "author not found"))
    }

    /// The post it belongs to (null if the post was deleted).
    async fn post(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Post>> {
        let post = loaders(ctx)?.posts.load_one(self.row.post_id).await.map_err(loader_error)?;
        Ok(post.map(Post::from))
    }
}
