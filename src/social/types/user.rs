//! `User`: profile fields, counts, the viewer's follow state, and the user's lists.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, connection::Connection};
use chrono::{DateTime, Utc};

use crate::app::app;
use crate::social::entities::follow;
use crate::social::loaders::loaders;
use crate::social::store::follows;
use crate::social::store::posts;
use crate::social::store::stats;
use crate::social::types::{count, post::Post};
use crate::{
    kernel::{
        db::keyset::{Keyset, Page},
        graphql::{
            context::viewer,
            error::{db_error, loader_error},
            ids::{self, NodeType},
            pagination::{ListKind, PageArgs, connection, connection_complexity},
        },
    },
    social::{
        entities::user,
        loaders::{NewestFollowsKey, NewestPostsKey},
        store::follows::Direction,
    },
};

/// A user row as the API shows it. It shares the row with the user loader's cache: resolving
/// an author copies a reference, and only the fields a query selects become response values.
#[derive(Clone, Debug)]
pub struct User {
    row: Arc<user::Model>,
}

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        Self { row: Arc::new(row) }
    }
}

impl From<Arc<user::Model>> for User {
    fn from(row: Arc<user::Model>) -> Self {
        Self { row }
    }
}

impl User {
    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<stats::UserStats> {
        let stats = loaders(ctx)?.user_stats.load_one(self.row.id).await.map_err(loader_error)?;
        Ok(stats.unwrap_or(stats::UserStats {
            user_id: self.row.id,
            follower_count: 0,
            following_count: 0,
            post_count: 0,
            viewer_follows: 0,
        }))
    }

    async fn follow_list(
        &self,
        ctx: &Context<'_>,
        direction: Direction,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, User>> {
        let app = app(ctx)?;
        let kind = match direction {
            Direction::Followers => ListKind::Followers,
            Direction::Following => ListKind::Following,
        };
        let args = PageArgs::parse(kind, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = match args.after {
            None => {
                let key = NewestFollowsKey { subject: self.row.id, direction, first: args.first };
                let rows = loaders(ctx)?.newest_follows.load_one(key).await.map_err(loader_error)?;
                Page::from_overfetch(rows.unwrap_or_default(), args.first)
            }
            Some(after) => {
                follows::page(app.db.conn(), self.row.id, direction, Some(after), args.first).await.map_err(db_error)?
            }
        };
        let other = |f: &follow::Model| match direction {
            Direction::Followers => f.follower_id,
            Direction::Following => f.followee_id,
        };
        let ids: Vec<i64> = page.rows.iter().map(other).collect();
        let users = loaders(ctx)?.users.load_many(ids).await.map_err(loader_error)?;
        Ok(connection(
            kind,
            page,
            args.after.is_some(),
            |f| Keyset { created_at: f.created_at, id: other(f) },
            |f| users.get(&other(&f)).cloned().map(User::from),
        ))
    }
}

/// A person using the app.
#[Object(cache_control(max_age = 60))]
impl User {
    /// Unique handle, lower-case, without `@`.
    async fn handle(&self) -> &str {
        &self.row.handle
    }

    /// Name shown on screen.
    async fn display_name(&self) -> &str {
        &self.row.display_name
    }

    /// Profile text.
    async fn bio(&self) -> &str {
        &self.row.bio
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::User, self.row.id)
    }

    /// Accounts related to this one, from the recommendations service ("similar accounts"
    /// on a profile or an author card). Every user on a screen is asked in one upstream call.
    /// Null with `UPSTREAM_UNAVAILABLE` / `UPSTREAM_TIMEOUT` when the service cannot answer.
    #[graphql(complexity = "crate::upstreams::suggestion_complexity(child_complexity, first)")]
    async fn related_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 20 (default 5).")] first: Option<i32>,
    ) -> async_graphql::Result<Option<Vec<crate::upstreams::UserSuggestion>>> {
        use crate::upstreams::{parse_first, suggested_users as users, suggestions_for};
        let first = parse_first(first)?;
        let suggestions = suggestions_for(ctx, self.row.id).await?;
        Ok(Some(users(ctx, &suggestions.users, first, self.row.id).await?))
    }

    /// Avatar image URL, if the user has one.
    async fn avatar_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let app = app(ctx)?;
        Ok(self.row.avatar_key.as_deref().map(|key| app.media_url(key)))
    }

    /// Number of followers.
    async fn follower_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(count(self.stats(ctx).await?.follower_count))
    }

    /// Number of users this user follows.
    async fn following_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(count(self.stats(ctx).await?.following_count))
    }

    /// Number of live posts.
    async fn post_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(count(self.stats(ctx).await?.post_count))
    }

    /// Whether the viewer follows this user (false when anonymous).
    #[graphql(cache_control(private))]
    async fn viewer_is_following(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        if viewer(ctx).user_id.is_none() {
            return Ok(false);
        }
        Ok(self.stats(ctx).await?.viewer_follows > 0)
    }

    /// The user's posts, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Post>> {
        let app = app(ctx)?;
        let args = PageArgs::parse(ListKind::UserPosts, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = match args.after {
            None => {
                let key = NewestPostsKey { author_id: self.row.id, first: args.first };
                let rows = loaders(ctx)?.newest_posts.load_one(key).await.map_err(loader_error)?;
                Page::from_overfetch(rows.unwrap_or_default(), args.first)
            }
            Some(after) => {
                let page = posts::by_author_page(app.db.conn(), self.row.id, Some(after), args.first)
                    .await
                    .map_err(db_error)?;
                Page { rows: page.rows.into_iter().map(|(post, _)| post).collect(), has_next: page.has_next }
            }
        };
        Ok(connection(
            ListKind::UserPosts,
            page,
            args.after.is_some(),
            |p| Keyset { created_at: p.created_at, id: p.id },
            |p| Some(Post::from(p)),
        ))
    }

    /// Users following this user, most recent first.
    #[graphql(complexity = "connection_complexity(child_complexity, first)")]
    async fn followers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, User>> {
        self.follow_list(ctx, Direction::Followers, first, after).await
    }

    /// Users this user follows, most recent first.
    #[graphql(complexity = "connection_complexity(child_complexity, first)")]
    async fn following(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, User>> {
        self.follow_list(ctx, Direction::Following, first, after).await
    }
}
