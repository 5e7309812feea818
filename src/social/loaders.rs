//! Per-operation DataLoaders: every relation and count of a screen is fetched in one batch
//! per level, whatever the page size.
//!
//! Loaders cache per operation (a fresh set is built for every GraphQL operation) and run
//! their batches through the operation's [`BatchSpawner`], which makes batching
//! deterministic. Queries that already join a related row (posts with authors, comments with
//! authors) prime the user cache so that rendering those authors costs no statement.
//!
//! A loader hands every resolver that asks a clone of the cached value, so the rows a screen
//! shows many times (users, media, comments with their authors) are cached as `Arc`s and the
//! GraphQL objects built on them (`User`, `PostMedia`, `Comment`) share the row instead of
//! copying its strings (docs/benchmarks.md, "Why the code is shaped this way").

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DbErr;

use crate::social::store::comments;
use crate::social::store::follows;
use crate::social::store::posts;
use crate::social::store::stats;
use crate::social::store::users;
use crate::{
    config::DataLoaderSettings,
    kernel::{db::Db, infra::metrics::Metrics},
    social::{
        entities::{follow, post, post_media, user},
        store::{
            comments::CommentWithAuthor,
            follows::Direction,
            stats::{PostStats, UserStats},
        },
    },
};
use crate::{
    kernel::graphql::batch_driver::BatchSpawner,
    upstreams::{LinkPreviewLoader, SuggestionsLoader, UpstreamContext},
};

/// Error type of every loader (cheap to clone into each waiting resolver).
pub type LoadError = Arc<DbErr>;

/// What every loader needs.
#[derive(Clone)]
pub struct LoaderContext {
    db: Db,
    metrics: Arc<Metrics>,
    viewer: i64,
}

impl LoaderContext {
    fn observe(&self, loader: &str, keys: usize) {
        self.metrics.observe_batch(loader, keys);
    }
}

/// Users by id.
pub struct UserLoader(LoaderContext);
/// Live posts by id.
pub struct PostLoader(LoaderContext);
/// Media of posts by post id.
pub struct MediaLoader(LoaderContext);
/// Counts and viewer reaction of posts by post id.
pub struct PostStatsLoader(LoaderContext);
/// Counts and viewer follow state of users by user id.
pub struct UserStatsLoader(LoaderContext);
/// The newest comments of posts (first page of `Post.comments`).
pub struct NewestCommentsLoader(LoaderContext);
/// Live comments by id.
pub struct CommentLoader(LoaderContext);
/// The newest posts of users (first page of `User.posts`).
pub struct NewestPostsLoader(LoaderContext);
/// The newest follow edges of users (first page of `User.followers` / `User.following`).
pub struct NewestFollowsLoader(LoaderContext);

/// Key of [`NewestPostsLoader`]: an author and the page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NewestPostsKey {
    /// The author.
    pub author_id: i64,
    /// Page size; up to one more row is returned.
    pub first: usize,
}

/// Key of [`NewestFollowsLoader`]: a user, which side of the graph, and the page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NewestFollowsKey {
    /// The user whose followers or followees are listed.
    pub subject: i64,
    /// Followers or following.
    pub direction: Direction,
    /// Page size; up to one more row is returned.
    pub first: usize,
}

/// Key of [`NewestCommentsLoader`]: a post and how many comments are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NewestCommentsKey {
    /// The post.
    pub post_id: i64,
    /// Page size; the loader returns up to one more row to tell whether more exist.
    pub first: usize,
}

impl Loader<i64> for UserLoader {
    type Value = Arc<user::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("users", keys.len());
        let rows = users::by_ids(self.0.db.conn(), keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, Arc::new(row))).collect())
    }
}

impl Loader<i64> for PostLoader {
    type Value = post::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("posts", keys.len());
        let rows = posts::by_ids(self.0.db.conn(), keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

impl Loader<i64> for MediaLoader {
    type Value = Vec<Arc<post_media::Model>>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("post_media", keys.len());
        let rows = posts::media_for(self.0.db.conn(), keys).await?;
        let mut out: HashMap<i64, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(row.post_id).or_default().push(Arc::new(row));
        }
        Ok(out)
    }
}

impl Loader<i64> for PostStatsLoader {
    type Value = PostStats;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("post_stats", keys.len());
        let rows = stats::post_stats(self.0.db.conn(), self.0.viewer, keys).await?;
        Ok(rows.into_iter().map(|row| (row.post_id, row)).collect())
    }
}

impl Loader<i64> for UserStatsLoader {
    type Value = UserStats;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("user_stats", keys.len());
        let rows = stats::user_stats(self.0.db.conn(), self.0.viewer, keys).await?;
        Ok(rows.into_iter().map(|row| (row.user_id, row)).collect())
    }
}

impl Loader<NewestCommentsKey> for NewestCommentsLoader {
    type Value = Vec<CommentWithAuthor>;
    type Error = LoadError;

    async fn load(&self, keys: &[NewestCommentsKey]) -> Result<HashMap<NewestCommentsKey, Self::Value>, Self::Error> {
        self.0.observe("newest_comments", keys.len());
        // One statement per distinct page size (a screen normally uses one).
        let mut by_size: HashMap<usize, Vec<i64>> = HashMap::new();
        for key in keys {
            by_size.entry(key.first).or_default().push(key.post_id);
        }
        let mut out: HashMap<NewestCommentsKey, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for (first, post_ids) in by_size {
            for row in comments::newest_per_post(self.0.db.conn(), &post_ids, first).await? {
                out.entry(NewestCommentsKey { post_id: row.0.post_id, first }).or_default().push(row);
            }
        }
        Ok(out)
    }
}

impl Loader<NewestPostsKey> for NewestPostsLoader {
    type Value = Vec<post::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[NewestPostsKey]) -> Result<HashMap<NewestPostsKey, Self::Value>, Self::Error> {
        self.0.observe("newest_posts", keys.len());
        let mut out: HashMap<NewestPostsKey, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for (first, authors) in group_by(keys, |k| (k.first, k.author_id)) {
            for row in posts::newest_per_author(self.0.db.conn(), &authors, first).await? {
                out.entry(NewestPostsKey { author_id: row.author_id, first }).or_default().push(row);
            }
        }
        Ok(out)
    }
}

impl Loader<NewestFollowsKey> for NewestFollowsLoader {
    type Value = Vec<follow::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[NewestFollowsKey]) -> Result<HashMap<NewestFollowsKey, Self::Value>, Self::Error> {
        self.0.observe("newest_follows", keys.len());
        let mut out: HashMap<NewestFollowsKey, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((direction, first), subjects) in group_by(keys, |k| ((k.direction, k.first), k.subject)) {
            for row in follows::newest_per_subject(self.0.db.conn(), &subjects, direction, first).await? {
                let subject = match direction {
                    Direction::Followers => row.followee_id,
                    Direction::Following => row.follower_id,
                };
                out.entry(NewestFollowsKey { subject, direction, first }).or_default().push(row);
            }
        }
        Ok(out)
    }
}

/// Groups keys by a shape (page size, direction): one statement per distinct shape, which on
/// a real screen is one.
fn group_by<K, S: std::hash::Hash + Eq>(keys: &[K], split: impl Fn(&K) -> (S, i64)) -> HashMap<S, Vec<i64>> {
    let mut groups: HashMap<S, Vec<i64>> = HashMap::new();
    for key in keys {
        let (shape, id) = split(key);
        groups.entry(shape).or_default().push(id);
    }
    groups
}

impl Loader<i64> for CommentLoader {
    type Value = CommentWithAuthor;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        self.0.observe("comments", keys.len());
        let rows = comments::by_ids(self.0.db.conn(), keys).await?;
        Ok(rows.into_iter().map(|row| (row.0.id, row)).collect())
    }
}

/// The loaders of one operation.
pub struct Loaders {
    /// Users by id.
    pub users: DataLoader<UserLoader, HashMapCache>,
    /// Posts by id.
    pub posts: DataLoader<PostLoader, HashMapCache>,
    /// Media by post id.
    pub media: DataLoader<MediaLoader, HashMapCache>,
    /// Post counts and viewer reaction by post id.
    pub post_stats: DataLoader<PostStatsLoader, HashMapCache>,
    /// User counts and viewer follow state by user id.
    pub user_stats: DataLoader<UserStatsLoader, HashMapCache>,
    /// First page of comments per post.
    pub newest_comments: DataLoader<NewestCommentsLoader, HashMapCache>,
    /// Comments by id.
    pub comments: DataLoader<CommentLoader, HashMapCache>,
    /// First page of posts per author.
    pub newest_posts: DataLoader<NewestPostsLoader, HashMapCache>,
    /// First page of follow edges per user.
    pub newest_follows: DataLoader<NewestFollowsLoader, HashMapCache>,
    /// Suggestions per subject user (recommendations service).
    pub suggestions: DataLoader<SuggestionsLoader, HashMapCache>,
    /// Link previews per URL.
    pub link_previews: DataLoader<LinkPreviewLoader, HashMapCache>,
}

fn loader<T>(inner: T, spawner: &BatchSpawner, settings: &DataLoaderSettings) -> DataLoader<T, HashMapCache>
where
    T: Send + Sync + 'static,
{
    let spawner = spawner.clone();
    DataLoader::with_cache(inner, move |batch| spawner.spawn(batch), HashMapCache::default())
        .delay(std::time::Duration::from_micros(settings.delay_micros))
        .max_batch_size(settings.max_batch_size)
}

impl Loaders {
    /// A fresh set for one operation of `viewer` (0 when anonymous).
    pub fn new(
        db: Db,
        metrics: Arc<Metrics>,
        viewer: i64,
        spawner: &BatchSpawner,
        settings: &DataLoaderSettings,
        upstream: UpstreamContext,
    ) -> Self {
        let ctx = LoaderContext { db, metrics, viewer };
        // One upstream call per batch, split at the service's own limit.
        let max_subjects = upstream.upstreams.recommendations.max_batch_size();
        let upstream_settings = DataLoaderSettings { max_batch_size: max_subjects, ..settings.clone() };
        let page_settings = DataLoaderSettings { max_batch_size: settings.max_batch_size.min(100), ..settings.clone() };
        Self {
            suggestions: loader(SuggestionsLoader(upstream.clone()), spawner, &upstream_settings),
            link_previews: loader(LinkPreviewLoader(upstream), spawner, &page_settings),
            users: loader(UserLoader(ctx.clone()), spawner, settings),
            posts: loader(PostLoader(ctx.clone()), spawner, settings),
            media: loader(MediaLoader(ctx.clone()), spawner, settings),
            post_stats: loader(PostStatsLoader(ctx.clone()), spawner, settings),
            user_stats: loader(UserStatsLoader(ctx.clone()), spawner, settings),
            newest_comments: loader(NewestCommentsLoader(ctx.clone()), spawner, settings),
            comments: loader(CommentLoader(ctx.clone()), spawner, settings),
            newest_posts: loader(NewestPostsLoader(ctx.clone()), spawner, settings),
            newest_follows: loader(NewestFollowsLoader(ctx), spawner, settings),
        }
    }

    /// Forgets every cached value (after a mutation changed them).
    pub fn clear(&self) {
        self.users.clear::<i64>();
        self.posts.clear::<i64>();
        self.media.clear::<i64>();
        self.post_stats.clear::<i64>();
        self.user_stats.clear::<i64>();
        self.newest_comments.clear::<NewestCommentsKey>();
        self.comments.clear::<i64>();
        self.newest_posts.clear::<NewestPostsKey>();
        self.newest_follows.clear::<NewestFollowsKey>();
        self.suggestions.clear::<i64>();
        self.link_previews.clear::<String>();
    }
}

/// The social loaders of a resolver's operation.
pub fn loaders<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Loaders> {
    crate::kernel::graphql::context::lazy_data::<Loaders>(ctx)
        .ok_or_else(|| crate::kernel::graphql::context::missing("loaders"))
}
