//! `Comment`: a comment, its author and its post.

use async_graphql::{ComplexObject, Context, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::{post::Post, user::User};
use crate::{
    db::entities::comment,
    graphql::{
        context::loaders,
        error::{ErrorCode, api_error, loader_error},
        ids::{self, NodeType},
    },
};

/// A comment on a post.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex, cache_control(max_age = 30))]
pub struct Comment {
    #[graphql(skip)]
    pub row_id: i64,
    #[graphql(skip)]
    pub post_id: i64,
    #[graphql(skip)]
    pub author_id: i64,
    /// Text of the comment.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl From<comment::Model> for Comment {
    fn from(row: comment::Model) -> Self {
        Self {
            row_id: row.id,
            post_id: row.post_id,
            author_id: row.author_id,
            body: row.body,
            created_at: row.created_at,
        }
    }
}

#[ComplexObject]
impl Comment {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Comment, self.row_id)
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders(ctx)?
            .users
            .load_one(self.author_id)
            .await
            .map_err(loader_error)?
            .map(User::from)
            .ok_or_else(|| api_error(ErrorCode::NotFound, "author not found"))
    }

    /// The post it belongs to (null if the post was deleted).
    async fn post(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Post>> {
        let post = loaders(ctx)?.posts.load_one(self.post_id).await.map_err(loader_error)?;
        Ok(post.map(Post::from))
    }
}
