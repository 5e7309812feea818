//! Relay connections over keyset pages: argument checks and opaque cursors.
//!
//! A cursor is `base64url("<list>|<created_at µs>|<id>")`. The list name inside it means a
//! cursor from one list (say, a user's followers) is refused by another (the feed) instead of
//! silently returning the wrong page.

use async_graphql::connection::{Connection, Edge};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::kernel::db::keyset::{Keyset, Page};
use crate::kernel::graphql::error::{ErrorCode, api_error};

/// Default page size when `first` is omitted.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Which list a cursor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `Query.feed`
    Feed,
    /// `User.posts`
    UserPosts,
    /// `Post.comments`
    Comments,
    /// `User.followers`
    Followers,
    /// `User.following`
    Following,
    /// `securityEvents`
    SecurityEvents,
    /// `conversations` (the inbox, keyed by last activity)
    Conversations,
    /// `notifications` (in-app history)
    Notifications,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Feed => "feed",
            Self::UserPosts => "posts",
            Self::Comments => "comments",
            Self::Followers => "followers",
            Self::Following => "following",
            Self::SecurityEvents => "events",
            Self::Conversations => "inbox",
            Self::Notifications => "notifications",
        }
    }
}

/// Encodes the cursor of a row.
pub fn encode_cursor(kind: ListKind, key: Keyset) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", kind.tag(), key.created_at.timestamp_micros(), key.id))
}

/// Decodes an `after` cursor of list `kind`.
pub fn decode_cursor(kind: ListKind, cursor: &str) -> async_graphql::Result<Keyset> {
    let invalid = || api_error(ErrorCode::BadUserInput, "invalid cursor");
    if cursor.len() > 128 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.split('|');
    let (Some(tag), Some(micros), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if tag != kind.tag() {
        return Err(invalid());
    }
    let micros = micros.parse::<i64>().map_err(|_| invalid())?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = id.parse::<i64>().map_err(|_| invalid())?;
    Ok(Keyset { created_at, id })
}

/// Checked page arguments.
#[derive(Clone, Copy, Debug)]
pub struct PageArgs {
    /// Rows wanted.
    pub first: usize,
    /// Start after this row.
    pub after: Option<Keyset>,
}

impl PageArgs {
    /// Checks `first` (1..=`max`) and decodes `after`.
    pub fn parse(kind: ListKind, first: Option<i32>, after: Option<&str>, max: usize) -> async_graphql::Result<Self> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        let first = usize::try_from(first)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| api_error(ErrorCode::BadUserInput, format!("first must be between 1 and {max}")))?;
        let after = after.map(|c| decode_cursor(kind, c)).transpose()?;
        Ok(Self { first, after })
    }
}

/// Complexity of a connection field: its page size times the cost of one node.
pub fn connection_complexity(child: usize, first: Option<i32>) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, 1000) as usize;
    first.saturating_mul(child).saturating_add(1)
}

/// Builds a Relay connection from a page; `key` gives each row's keyset and `node` its node
/// (rows whose node vanished between two statements are left out).
pub fn connection<R, N>(
    kind: ListKind,
    page: Page<R>,
    had_cursor: bool,
    key: impl Fn(&R) -> Keyset,
    node: impl Fn(R) -> Option<N>,
) -> Connection<String, N>
where
    N: async_graphql::OutputType,
{
    let mut conn = Connection::new(had_cursor, page.has_next);
    conn.edges.extend(page.rows.into_iter().filter_map(|row| {
        let cursor = encode_cursor(kind, key(&row));
        node(row).map(|n| Edge::new(cursor, n))
    }));
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_list_specific() {
        let key =
            Keyset { created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("t"), id: 7 };
        let cursor = encode_cursor(ListKind::Feed, key);
        assert_eq!(decode_cursor(ListKind::Feed, &cursor).expect("valid"), key);
        assert!(decode_cursor(ListKind::Comments, &cursor).is_err());
        assert!(decode_cursor(ListKind::Feed, "garbage!").is_err());
        assert!(decode_cursor(ListKind::Feed, &URL_SAFE_NO_PAD.encode("feed|x|1")).is_err());
    }

    #[test]
    fn first_is_bounded() {
        assert!(PageArgs::parse(ListKind::Feed, Some(100_000), None, 100).is_err());
        assert!(PageArgs::parse(ListKind::Feed, Some(0), None, 100).is_err());
        assert!(PageArgs::parse(ListKind::Feed, Some(-1), None, 100).is_err());
        assert_eq!(PageArgs::parse(ListKind::Feed, None, None, 100).expect("ok").first, 20);
    }
}
