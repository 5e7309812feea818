//! Comment queries. Comments come with their author in the same statement, so rendering a
//! comment never costs a second query.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};

use crate::{
    kernel::db::{
        keyset::{Keyset, NewestPerGroup, Page},
        sql::placeholders,
    },
    social::entities::{comment, user},
};

/// A comment row joined with its author's row.
#[derive(Clone, Debug, FromQueryResult)]
struct CommentRow {
    id: i64,
    post_id: i64,
    author_id: i64,
    body: String,
    created_at: DateTime<Utc>,
    author_handle: String,
    author_display_name: String,
    author_bio: String,
    author_avatar_key: Option<String>,
    author_created_at: DateTime<Utc>,
}

/// A comment and its author, shared: loaders hand out copies to every resolver that asks,
/// and the author also goes into the user loader, so a copy is two reference counts rather
/// than six strings.
pub type CommentWithAuthor = (Arc<comment::Model>, Arc<user::Model>);

impl From<CommentRow> for CommentWithAuthor {
    fn from(row: CommentRow) -> Self {
        (
            Arc::new(comment::Model {
                id: row.id,
                post_id: row.post_id,
                author_id: row.author_id,
                body: row.body,
                created_at: row.created_at,
                deleted_at: None,
            }),
            Arc::new(user::Model {
                id: row.author_id,
                handle: row.author_handle,
                display_name: row.author_display_name,
                bio: row.author_bio,
                avatar_key: row.author_avatar_key,
                created_at: row.author_created_at,
            }),
        )
    }
}

const SELECT_WITH_AUTHOR: &str = "t.id, t.post_id, t.author_id, t.body, t.created_at, \
     u.handle AS author_handle, u.display_name AS author_display_name, u.bio AS author_bio, \
     u.avatar_key AS author_avatar_key, u.created_at AS author_created_at";

/// The newest `per_post + 1` live comments of each post, in one statement (a window function
/// ranks comments per post). The extra row tells the caller whether a next page exists.
pub async fn newest_per_post(
    conn: &impl ConnectionTrait,
    post_ids: &[i64],
    per_post: usize,
) -> Result<Vec<CommentWithAuthor>, DbErr> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = NewestPerGroup {
        table: "comments",
        group: "post_id",
        tiebreak: "id",
        filter: "t.deleted_at IS NULL",
        columns: SELECT_WITH_AUTHOR,
        join: "JOIN users u ON u.id = t.author_id",
    }
    .statement(conn.get_database_backend(), post_ids, per_post);
    let rows = CommentRow::find_by_statement(stmt).all(conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One page of a post's live comments, newest first, after a cursor.
pub async fn page(
    conn: &impl ConnectionTrait,
    post_id: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<CommentWithAuthor>, DbErr> {
    let mut values: Vec<Value> = vec![post_id.into(), (limit as i64 + 1).into()];
    let keyset = match after {
        Some(after) => {
            values.push(after.created_at.into());
            values.push(after.id.into());
            " AND (t.created_at < $3 OR (t.created_at = $3 AND t.id < $4))"
        }
        None => "",
    };
    let sql = format!(
        "SELECT {SELECT_WITH_AUTHOR} FROM comments t JOIN users u ON u.id = t.author_id \
         WHERE t.post_id = $1 AND t.deleted_at IS NULL{keyset} \
         ORDER BY t.created_at DESC, t.id DESC LIMIT $2"
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let rows = CommentRow::find_by_statement(stmt).all(conn).await?;
    Ok(Page::from_overfetch(rows.into_iter().map(Into::into).collect(), limit))
}

/// Live comments with the given ids, with their authors.
pub async fn by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<CommentWithAuthor>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {SELECT_WITH_AUTHOR} FROM comments t JOIN users u ON u.id = t.author_id \
         WHERE t.deleted_at IS NULL AND t.id IN ({})",
        placeholders(1, ids.len())
    );
    let values = ids.iter().map(|id| Value::from(*id));
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let rows = CommentRow::find_by_statement(stmt).all(conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
