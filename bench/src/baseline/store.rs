//! The baseline's data access: the home-feed screen in four hand-written statements on one
//! pooled connection, with sqlx directly (no ORM, no loaders), on SQLite or PostgreSQL.
//!
//! 1. the viewer row;
//! 2. the feed page (followees ∪ viewer, keyset order, `LIMIT n+1`) joined with authors, with
//!    reaction/comment counts and the viewer's reaction as correlated subqueries evaluated only
//!    for the page's rows (the page is a CTE);
//! 3. the media of the page's posts;
//! 4. the three newest comments of each post with their authors — a `LATERAL … LIMIT 3` index
//!    walk per post on PostgreSQL, `ROW_NUMBER()` per post on SQLite (no `LATERAL` there).
//!
//! The post ids are bound as one array (PostgreSQL) or one JSON text (SQLite `json_each`), so
//! each statement has a single text and stays in sqlx's prepared-statement cache.

use std::{collections::HashMap, str::FromStr, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{
    PgPool, Postgres, Row, Sqlite, SqlitePool,
    pool::PoolConnection,
    postgres::{PgPoolOptions, PgRow},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous},
};

use super::shape::{self, Comment, CommentAuthor, CommentConnection, CommentEdge, Media, PostEdge};

/// Pool size, the product's default `database_max_connections`.
const MAX_CONNECTIONS: u32 = 16;
/// Comments shown under each post.
const PREVIEW_COMMENTS: usize = 3;

struct Sql {
    viewer: &'static str,
    feed: &'static str,
    media: &'static str,
    comments: &'static str,
}

const SQLITE: Sql = Sql {
    viewer: "SELECT id, handle, display_name, avatar_key FROM users WHERE id = ?1",
    feed: "WITH page AS (
             SELECT p.id, p.author_id, p.body, p.links, p.created_at FROM posts p
             WHERE p.deleted_at IS NULL
               AND p.author_id IN (SELECT f.followee_id FROM follows f WHERE f.follower_id = ?1 UNION ALL SELECT ?1)
             ORDER BY p.created_at DESC, p.id DESC LIMIT ?2)
           SELECT page.id, page.body, page.links, page.created_at, u.id, u.handle, u.display_name, u.avatar_key,
             (SELECT COUNT(*) FROM reactions r WHERE r.post_id = page.id),
             (SELECT COUNT(*) FROM comments c WHERE c.post_id = page.id AND c.deleted_at IS NULL),
             (SELECT r.kind FROM reactions r WHERE r.post_id = page.id AND r.user_id = ?1)
           FROM page JOIN users u ON u.id = page.author_id
           ORDER BY page.created_at DESC, page.id DESC",
    media: "SELECT m.post_id, m.storage_key, m.width, m.height, m.blurhash FROM post_media m
            WHERE m.post_id IN (SELECT value FROM json_each(?1)) ORDER BY m.post_id, m.position",
    comments: "SELECT t.id, t.post_id, t.body, t.created_at, u.id, u.handle, u.avatar_key FROM (
                 SELECT c.id, c.post_id, c.author_id, c.body, c.created_at,
                   ROW_NUMBER() OVER (PARTITION BY c.post_id ORDER BY c.created_at DESC, c.id DESC) AS rn
                 FROM comments c WHERE c.deleted_at IS NULL AND c.post_id IN (SELECT value FROM json_each(?1))) t
               JOIN users u ON u.id = t.author_id WHERE t.rn <= 3 ORDER BY t.post_id, t.rn",
};

const POSTGRES: Sql = Sql {
    viewer: "SELECT id, handle, display_name, avatar_key FROM users WHERE id = $1",
    feed: "WITH page AS (
             SELECT p.id, p.author_id, p.body, p.links, p.created_at FROM posts p
             WHERE p.deleted_at IS NULL
               AND p.author_id IN (SELECT f.followee_id FROM follows f WHERE f.follower_id = $1 UNION ALL SELECT $1::bigint)
             ORDER BY p.created_at DESC, p.id DESC LIMIT $2)
           SELECT page.id, page.body, page.links::text, page.created_at, u.id, u.handle, u.display_name, u.avatar_key,
             (SELECT COUNT(*) FROM reactions r WHERE r.post_id = page.id),
             (SELECT COUNT(*) FROM comments c WHERE c.post_id = page.id AND c.deleted_at IS NULL),
             (SELECT r.kind FROM reactions r WHERE r.post_id = page.id AND r.user_id = $1)
           FROM page JOIN users u ON u.id = page.author_id
           ORDER BY page.created_at DESC, page.id DESC",
    media: "SELECT m.post_id, m.storage_key, m.width, m.height, m.blurhash FROM post_media m
            WHERE m.post_id = ANY($1) ORDER BY m.post_id, m.position",
    comments: "SELECT c.id, c.post_id, c.body, c.created_at, u.id, u.handle, u.avatar_key
               FROM unnest($1::bigint[]) AS p(id)
               CROSS JOIN LATERAL (
                 SELECT c.id, c.post_id, c.author_id, c.body, c.created_at FROM comments c
                 WHERE c.post_id = p.id AND c.deleted_at IS NULL
                 ORDER BY c.created_at DESC, c.id DESC LIMIT 3) c
               JOIN users u ON u.id = c.author_id
               ORDER BY c.post_id, c.created_at DESC, c.id DESC",
};

/// A statement parameter.
enum Bind {
    Int(i64),
    Ids(Vec<i64>),
}

/// Runs one statement on a connection of either backend.
trait Fetch {
    type Row: Columns;
    async fn fetch(&mut self, sql: &'static str, binds: &[Bind]) -> Result<Vec<Self::Row>, sqlx::Error>;
}

impl Fetch for PoolConnection<Sqlite> {
    type Row = SqliteRow;
    async fn fetch(&mut self, sql: &'static str, binds: &[Bind]) -> Result<Vec<SqliteRow>, sqlx::Error> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Ids(ids) => query.bind(ids_as_json(ids)),
            };
        }
        query.fetch_all(&mut **self).await
    }
}

impl Fetch for PoolConnection<Postgres> {
    type Row = PgRow;
    async fn fetch(&mut self, sql: &'static str, binds: &[Bind]) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Ids(ids) => query.bind(ids.clone()),
            };
        }
        query.fetch_all(&mut **self).await
    }
}

fn ids_as_json(ids: &[i64]) -> String {
    let mut json = String::with_capacity(ids.len() * 8 + 2);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&id.to_string());
    }
    json.push(']');
    json
}

/// Typed column access shared by both row types.
trait Columns {
    fn int(&self, index: usize) -> Result<i64, sqlx::Error>;
    fn int32(&self, index: usize) -> Result<i32, sqlx::Error>;
    fn text(&self, index: usize) -> Result<String, sqlx::Error>;
    fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error>;
    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error>;
}

macro_rules! columns {
    ($row:ty) => {
        impl Columns for $row {
            fn int(&self, index: usize) -> Result<i64, sqlx::Error> {
                self.try_get(index)
            }
            fn int32(&self, index: usize) -> Result<i32, sqlx::Error> {
                self.try_get(index)
            }
            fn text(&self, index: usize) -> Result<String, sqlx::Error> {
                self.try_get(index)
            }
            fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
                self.try_get(index)
            }
            fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get(index)
            }
        }
    };
}

columns!(SqliteRow);
columns!(PgRow);

/// The database of the baseline.
pub enum Store {
    /// Embedded mode.
    Sqlite(SqlitePool),
    /// Cluster mode.
    Postgres(PgPool),
}

impl Store {
    /// Connects like the product does (pool of 16; SQLite in WAL mode).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .min_connections(1)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new().max_connections(MAX_CONNECTIONS).min_connections(1).connect(url).await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// True when the database answers.
    pub async fn ready(&self) -> bool {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
        }
    }

    /// The home-feed screen of `viewer` with `first` posts, as the product's JSON.
    pub async fn feed_screen(&self, viewer: i64, first: usize) -> anyhow::Result<shape::Response> {
        match self {
            Self::Sqlite(pool) => screen(&mut pool.acquire().await?, &SQLITE, viewer, first).await,
            Self::Postgres(pool) => screen(&mut pool.acquire().await?, &POSTGRES, viewer, first).await,
        }
    }
}

fn user(id: i64, handle: String, display_name: String, avatar_key: Option<String>) -> shape::User {
    shape::User {
        id: shape::global_id("User", id),
        handle,
        display_name,
        avatar_url: avatar_key.as_deref().map(shape::media_url),
    }
}

async fn screen<C: Fetch>(conn: &mut C, sql: &Sql, viewer_id: i64, first: usize) -> anyhow::Result<shape::Response> {
    let rows = conn.fetch(sql.viewer, &[Bind::Int(viewer_id)]).await?;
    let row = rows.first().context("viewer not found")?;
    let viewer = user(row.int(0)?, row.text(1)?, row.text(2)?, row.opt_text(3)?);

    let limit = i64::try_from(first + 1)?;
    let mut posts = conn.fetch(sql.feed, &[Bind::Int(viewer_id), Bind::Int(limit)]).await?;
    let has_next_page = posts.len() > first;
    posts.truncate(first);
    let ids = posts.iter().map(|p| p.int(0)).collect::<Result<Vec<i64>, _>>()?;

    let mut media: HashMap<i64, Vec<Media>> = HashMap::new();
    let mut comments: HashMap<i64, Vec<CommentEdge>> = HashMap::new();
    if !ids.is_empty() {
        for row in conn.fetch(sql.media, &[Bind::Ids(ids.clone())]).await? {
            media.entry(row.int(0)?).or_default().push(Media {
                url: shape::media_url(&row.text(1)?),
                width: row.int32(2)?,
                height: row.int32(3)?,
                blurhash: row.text(4)?,
            });
        }
        for row in conn.fetch(sql.comments, &[Bind::Ids(ids)]).await? {
            let edges = comments.entry(row.int(1)?).or_default();
            if edges.len() < PREVIEW_COMMENTS {
                edges.push(CommentEdge {
                    node: Comment {
                        id: shape::global_id("Comment", row.int(0)?),
                        body: row.text(2)?,
                        created_at: shape::timestamp(row.time(3)?),
                        author: CommentAuthor {
                            id: shape::global_id("User", row.int(4)?),
                            handle: row.text(5)?,
                            avatar_url: row.opt_text(6)?.as_deref().map(shape::media_url),
                        },
                    },
                });
            }
        }
    }

    let mut edges = Vec::with_capacity(posts.len());
    for row in &posts {
        let id = row.int(0)?;
        let created_at = row.time(3)?;
        let links: Vec<String> = serde_json::from_str(&row.text(2)?).unwrap_or_default();
        let viewer_reaction = row.opt_text(10)?;
        edges.push(PostEdge {
            cursor: shape::feed_cursor(created_at, id),
            node: shape::Post {
                id: shape::global_id("Post", id),
                body: row.text(1)?,
                links,
                created_at: shape::timestamp(created_at),
                author: user(row.int(4)?, row.text(5)?, row.text(6)?, row.opt_text(7)?),
                media: media.remove(&id).unwrap_or_default(),
                reaction_count: row.int(8)?,
                comment_count: row.int(9)?,
                viewer_reaction: shape::reaction(viewer_reaction.as_deref()),
                comments: CommentConnection { edges: comments.remove(&id).unwrap_or_default() },
            },
        });
    }
    let end_cursor = edges.last().map(|edge| edge.cursor.clone());
    Ok(shape::Response {
        data: shape::Data {
            viewer,
            feed: shape::Feed { edges, page_info: shape::PageInfo { has_next_page, end_cursor } },
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_become_a_json_array() {
        assert_eq!(super::ids_as_json(&[3, 1, 2]), "[3,1,2]");
        assert_eq!(super::ids_as_json(&[]), "[]");
    }
}
