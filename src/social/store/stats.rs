//! Aggregates for lists of posts and users, one statement per batch: counts and the viewer's
//! relation to each row (their reaction, whether they follow) come from correlated subqueries
//! served by the keyset indexes.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};

use crate::kernel::db::sql::{head_and_ids, placeholders};

/// Counts and viewer state of one post.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct PostStats {
    /// The post.
    pub post_id: i64,
    /// Number of reactions of any kind.
    pub reaction_count: i64,
    /// Number of live comments.
    pub comment_count: i64,
    /// The viewer's reaction kind, if any.
    pub viewer_reaction: Option<String>,
}

/// Stats of the given posts as seen by `viewer` (0 for anonymous: no user has id 0).
pub async fn post_stats(conn: &impl ConnectionTrait, viewer: i64, post_ids: &[i64]) -> Result<Vec<PostStats>, DbErr> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT p.id AS post_id, \
           (SELECT COUNT(*) FROM reactions r WHERE r.post_id = p.id) AS reaction_count, \
           (SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id AND c.deleted_at IS NULL) AS comment_count, \
           (SELECT r.kind FROM reactions r WHERE r.post_id = p.id AND r.user_id = $1) AS viewer_reaction \
         FROM posts p WHERE p.id IN ({})",
        placeholders(2, post_ids.len())
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, head_and_ids(viewer, post_ids));
    PostStats::find_by_statement(stmt).all(conn).await
}

/// Counts and viewer state of one user.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct UserStats {
    /// The user.
    pub user_id: i64,
    /// Users following them.
    pub follower_count: i64,
    /// Users they follow.
    pub following_count: i64,
    /// Their live posts.
    pub post_count: i64,
    /// 1 when the viewer follows them.
    pub viewer_follows: i64,
}

/// Stats of the given users as seen by `viewer` (0 for anonymous).
pub async fn user_stats(conn: &impl ConnectionTrait, viewer: i64, user_ids: &[i64]) -> Result<Vec<UserStats>, DbErr> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT u.id AS user_id, \
           (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id) AS follower_count, \
           (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) AS following_count, \
           (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id AND p.deleted_at IS NULL) AS post_count, \
           (SELECT COUNT(*) FROM follows f WHERE f.follower_id = $1 AND f.followee_id = u.id) AS viewer_follows \
         FROM users u WHERE u.id IN ({})",
        placeholders(2, user_ids.len())
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, head_and_ids(viewer, user_ids));
    UserStats::find_by_statement(stmt).all(conn).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_from_start() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
        assert_eq!(super::placeholders(1, 0), "");
    }
}
