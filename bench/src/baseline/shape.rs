//! The JSON the baseline answers: the same field names, nesting, order and value formats as
//! the product's GraphQL response to `playground/queries/HomeFeed.graphql`, written as plain
//! serde structs (global ids, cursors, media URLs and timestamps encoded like the product).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// `{"data": …}`
#[derive(Serialize)]
pub struct Response {
    /// The screen.
    pub data: Data,
}

/// The two roots of the HomeFeed query.
#[derive(Serialize)]
pub struct Data {
    /// The signed-in user.
    pub viewer: User,
    /// A page of the home feed.
    pub feed: Feed,
}

/// A user with the fields the screen shows (viewer and post authors).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Global id.
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Display name.
    pub display_name: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}

/// The feed connection.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Feed {
    /// Posts with cursors.
    pub edges: Vec<PostEdge>,
    /// Paging state.
    pub page_info: PageInfo,
}

/// One feed entry.
#[derive(Serialize)]
pub struct PostEdge {
    /// Keyset cursor of the post.
    pub cursor: String,
    /// The post.
    pub node: Post,
}

/// A post as the feed shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    /// Global id.
    pub id: String,
    /// Text.
    pub body: String,
    /// URLs in the post.
    pub links: Vec<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Who wrote it.
    pub author: User,
    /// Attached media.
    pub media: Vec<Media>,
    /// Reactions of any kind.
    pub reaction_count: i64,
    /// Live comments.
    pub comment_count: i64,
    /// The viewer's reaction (`LIKE`, …).
    pub viewer_reaction: Option<&'static str>,
    /// The newest three comments.
    pub comments: CommentConnection,
}

/// One media object of a post.
#[derive(Serialize)]
pub struct Media {
    /// URL of the object.
    pub url: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// BlurHash placeholder.
    pub blurhash: String,
}

/// The comment preview under a post.
#[derive(Serialize)]
pub struct CommentConnection {
    /// Newest first.
    pub edges: Vec<CommentEdge>,
}

/// One comment of the preview.
#[derive(Serialize)]
pub struct CommentEdge {
    /// The comment.
    pub node: Comment,
}

/// A comment as the preview shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Global id.
    pub id: String,
    /// Text.
    pub body: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Who wrote it.
    pub author: CommentAuthor,
}

/// The author fields of a comment preview.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentAuthor {
    /// Global id.
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}

/// Paging state of the feed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// More posts after this page.
    pub has_next_page: bool,
    /// Cursor of the last edge.
    pub end_cursor: Option<String>,
}

/// Relay global id, as the product encodes it: `base64url("<Type>:<id>")`.
pub fn global_id(type_name: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

/// Feed cursor, as the product encodes it: `base64url("feed|<created_at µs>|<id>")`.
pub fn feed_cursor(created_at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("feed|{}|{id}", created_at.timestamp_micros()))
}

/// Media URL with the product's default (empty) `public_base_url`.
pub fn media_url(key: &str) -> String {
    format!("/media/{key}")
}

/// The GraphQL timestamp format (async-graphql writes `DateTime<Utc>` with `to_rfc3339`).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// The GraphQL enum value of a stored reaction kind (unknown kinds are null, as in the product).
pub fn reaction(kind: Option<&str>) -> Option<&'static str> {
    match kind? {
        "like" => Some("LIKE"),
        "love" => Some("LOVE"),
        "haha" => Some("HAHA"),
        "wow" => Some("WOW"),
        "sad" => Some("SAD"),
        "angry" => Some("ANGRY"),
        _ => None,
    }
}
