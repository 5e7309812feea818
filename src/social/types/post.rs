//! `Post`: a post's content, author, media (`PostMedia`, owned by the media concern),
//! counts, the viewer's reaction and its comments.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};

use crate::app::app;
use crate::media::PostMedia;
use crate::social::loaders::loaders;
use crate::social::store::comments;
use crate::social::store::stats;
use crate::social::types::{comment::Comment, count, user::User};
use crate::{
    kernel::{
        db::keyset::{Keyset, Page},
        graphql::{
            context::viewer,
            error::{ErrorCode, api_error, db_error, loader_error},
            ids::{self, NodeType},
            pagination::{ListKind, PageArgs, connection, connection_complexity},
        },
    },
    social::{entities::post, loaders::NewestCommentsKey, store::posts::PostWithAuthor},
    upstreams::upstream_error,
};

/// How a user reacted to a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ReactionKind {
    /// 👍
    Like,
    /// ❤️
    Love,
    /// 😂
    Haha,
    /// 😮
    Wow,
    /// 😢
    Sad,
    /// 😠
    Angry,
}

impl ReactionKind {
    /// The stored form.
    pub fn as_storage(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Love => "love",
            Self::Haha => "haha",
            Self::Wow => "wow",
            Self::Sad => "sad",
            Self::Angry => "angry",
        }
    }

    /// Parses the stored form.
    pub fn from_storage(kind: &str) -> Option<Self> {
        match kind {
            "like" => Some(Self::Like),
            "love" => Some(Self::Love),
            "haha" => Some(Self::Haha),
            "wow" => Some(Self::Wow),
            "sad" => Some(Self::Sad),
            "angry" => Some(Self::Angry),
            _ => None,
        }
    }
}

/// A preview of a linked page.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(cache_control(max_age = 3600))]
pub struct LinkPreview {
    /// The link, as posted.
    pub url: String,
    /// Title of the page.
    pub title: Option<String>,
    /// Description of the page.
    pub description: Option<String>,
    /// Name of the site.
    pub site_name: Option<String>,
    /// Absolute URL of the preview image.
    pub image_url: Option<String>,
}

impl From<crate::upstreams::LinkPreview> for LinkPreview {
    fn from(p: crate::upstreams::LinkPreview) -> Self {
        Self { url: p.url, title: p.title, description: p.description, site_name: p.site_name, image_url: p.image_url }
    }
}

/// A post in a feed or on a profile.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex, cache_control(max_age = 30))]
pub struct Post {
    #[graphql(skip)]
    pub row_id: i64,
    #[graphql(skip)]
    pub author_id: i64,
    /// Text of the post.
    pub body: String,
    /// URLs mentioned in the post.
    pub links: Vec<String>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<post::Model> for Post {
    fn from(row: post::Model) -> Self {
        let links = serde_json::from_value(row.links).unwrap_or_default();
        Self {
            row_id: row.id,
            author_id: row.author_id,
            body: row.body,
            links,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl Post {
    /// A connection from a page of posts fetched with their authors; the authors prime the
    /// user loader so that `author` costs no further statement.
    pub async fn connection_with_authors(
        ctx: &Context<'_>,
        kind: ListKind,
        page: Page<PostWithAuthor>,
        had_cursor: bool,
    ) -> async_graphql::Result<Connection<String, Post>> {
        // The rows move apart: posts into the page, authors (shared) into the user loader.
        let mut authors = Vec::with_capacity(page.rows.len());
        let rows = page
            .rows
            .into_iter()
            .map(|(post, author)| {
                if let Some(author) = author {
                    authors.push((author.id, Arc::new(author)));
                }
                post
            })
            .collect();
        loaders(ctx)?.users.feed_many(authors).await;
        Ok(connection(
            kind,
            Page { rows, has_next: page.has_next },
            had_cursor,
            |p| Keyset { created_at: p.created_at, id: p.id },
            |p| Some(Post::from(p)),
        ))
    }

    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<stats::PostStats> {
        let stats = loaders(ctx)?.post_stats.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(stats.unwrap_or(stats::PostStats {
            post_id: self.row_id,
            reaction_count: 0,
            comment_count: 0,
            viewer_reaction: None,
        }))
    }
}

#[ComplexObject]
impl Post {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Post, self.row_id)
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

    /// A preview of the first link (title, description, site, image), fetched from the
    /// linked page and cached. Null when the post has no link or the page has nothing to
    /// show; null with `UPSTREAM_UNAVAILABLE` (`reason` says why, e.g. `BLOCKED_ADDRESS`) or
    /// `UPSTREAM_TIMEOUT` when it could not be fetched.
    async fn link_preview(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LinkPreview>> {
        let Some(url) = self.links.first() else {
            return Ok(None);
        };
        let outcome = match loaders(ctx)?.link_previews.load_one(url.clone()).await {
            Ok(outcome) => outcome,
            Err(never) => match never {},
        };
        match outcome {
            Some(Ok(preview)) => Ok(preview.map(LinkPreview::from)),
            Some(Err(err)) => Err(upstream_error("link_previews", &err)),
            None => Ok(None),
        }
    }

    /// Attached media, in display order.
    async fn media(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PostMedia>> {
        let media = loaders(ctx)?.media.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(media.unwrap_or_default().into_iter().map(PostMedia::from).collect())
    }

    /// Number of reactions of any kind.
    async fn reaction_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(count(self.stats(ctx).await?.reaction_count))
    }

    /// Number of comments.
    async fn comment_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(count(self.stats(ctx).await?.comment_count))
    }

    /// The viewer's reaction, if any (null when anonymous).
    #[graphql(cache_control(private))]
    async fn viewer_reaction(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ReactionKind>> {
        if viewer(ctx).user_id.is_none() {
            return Ok(None);
        }
        Ok(self.stats(ctx).await?.viewer_reaction.as_deref().and_then(ReactionKind::from_storage))
    }

    /// Comments, newest first. The first page of every post on a screen is fetched in one
    /// batch; later pages (`after`) are fetched per post.
    #[graphql(complexity = "connection_complexity(child_complexity, first)")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Comment>> {
        let app = app(ctx)?;
        let args = PageArgs::parse(ListKind::Comments, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let loaders = loaders(ctx)?;
        let page = match args.after {
            None => {
                let key = NewestCommentsKey { post_id: self.row_id, first: args.first };
                let rows = loaders.newest_comments.load_one(key).await.map_err(loader_error)?;
                Page::from_overfetch(rows.unwrap_or_default(), args.first)
            }
            Some(after) => {
                comments::page(app.db.conn(), self.row_id, Some(after), args.first).await.map_err(db_error)?
            }
        };
        let authors: Vec<_> = page.rows.iter().map(|(_, author)| (author.id, author.clone())).collect();
        loaders.users.feed_many(authors).await;
        Ok(connection(
            ListKind::Comments,
            page,
            args.after.is_some(),
            |(c, _)| Keyset { created_at: c.created_at, id: c.id },
            |(c, _)| Some(Comment::from(c)),
        ))
    }
}
