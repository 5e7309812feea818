//! Follow-graph queries: followers and following lists, newest first.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    entities::follow,
    keyset::{Keyset, Page, older_than},
};

/// Which side of the follow graph to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Users who follow the subject.
    Followers,
    /// Users the subject follows.
    Following,
}

/// One page of the subject's followers or followees; the keyset id is the other user's id.
pub async fn page(
    conn: &impl ConnectionTrait,
    subject: i64,
    direction: Direction,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<follow::Model>, DbErr> {
    let (subject_col, other_col) = match direction {
        Direction::Followers => (follow::Column::FolloweeId, follow::Column::FollowerId),
        Direction::Following => (follow::Column::FollowerId, follow::Column::FolloweeId),
    };
    let mut query = follow::Entity::find().filter(subject_col.eq(subject));
    if let Some(after) = after {
        query = query.filter(older_than(follow::Column::CreatedAt, other_col, after));
    }
    let rows = query
        .order_by_desc(follow::Column::CreatedAt)
        .order_by_desc(other_col)
        .limit(limit as u64 + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}
