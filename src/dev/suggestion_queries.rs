//! Queries of the example recommendations service (`mobile-bff example-upstream`): accounts
//! followed by the people a user follows, the most-followed accounts as a fallback, and the
//! newest posts of given authors.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};

use crate::kernel::db::sql::{head_and_ids, placeholders};

/// A candidate account with the number of signals behind it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Candidate {
    /// The user.
    pub id: i64,
    /// Followees of the subject who follow them (friends of friends), or their follower count
    /// (popular).
    pub n: i64,
}

/// Accounts followed by the accounts `subject` follows, that `subject` does not follow yet,
/// most signals first.
pub async fn friends_of_friends(
    conn: &impl ConnectionTrait,
    subject: i64,
    limit: usize,
) -> Result<Vec<Candidate>, DbErr> {
    let sql = "SELECT f2.followee_id AS id, COUNT(*) AS n \
               FROM follows f1 JOIN follows f2 ON f2.follower_id = f1.followee_id \
               WHERE f1.follower_id = $1 AND f2.followee_id <> $1 \
                 AND f2.followee_id NOT IN (SELECT followee_id FROM follows WHERE follower_id = $1) \
               GROUP BY f2.followee_id ORDER BY n DESC, f2.followee_id ASC LIMIT $2";
    let stmt =
        Statement::from_sql_and_values(conn.get_database_backend(), sql, [subject.into(), (limit as i64).into()]);
    Candidate::find_by_statement(stmt).all(conn).await
}

/// The most-followed accounts that `subject` does not follow (and is not).
pub async fn popular(conn: &impl ConnectionTrait, subject: i64, limit: usize) -> Result<Vec<Candidate>, DbErr> {
    let sql = "SELECT f.followee_id AS id, COUNT(*) AS n FROM follows f \
               WHERE f.followee_id <> $1 \
                 AND f.followee_id NOT IN (SELECT followee_id FROM follows WHERE follower_id = $1) \
               GROUP BY f.followee_id ORDER BY n DESC, f.followee_id ASC LIMIT $2";
    let stmt =
        Statement::from_sql_and_values(conn.get_database_backend(), sql, [subject.into(), (limit as i64).into()]);
    Candidate::find_by_statement(stmt).all(conn).await
}

/// A recent post and its author.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct RecentPost {
    /// The post.
    pub id: i64,
    /// Its author.
    pub author_id: i64,
}

/// The newest live posts of `authors`, newest first.
pub async fn newest_posts_of(
    conn: &impl ConnectionTrait,
    authors: &[i64],
    limit: usize,
) -> Result<Vec<RecentPost>, DbErr> {
    if authors.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT p.id, p.author_id FROM posts p WHERE p.deleted_at IS NULL AND p.author_id IN ({}) \
         ORDER BY p.created_at DESC, p.id DESC LIMIT $1",
        placeholders(2, authors.len())
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, head_and_ids(limit as i64, authors));
    RecentPost::find_by_statement(stmt).all(conn).await
}
