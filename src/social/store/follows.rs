//! Follow-graph queries: followers and following lists, newest first.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{
    kernel::db::keyset::{Keyset, NewestPerGroup, Page, older_than},
    social::entities::follow,
};

/// Which side of the follow graph to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// The newest `per_subject + 1` edges of each subject, in one statement (first page of
/// `User.followers`/`User.following` for every user on a screen).
pub async fn newest_per_subject(
    conn: &impl ConnectionTrait,
    subjects: &[i64],
    direction: Direction,
    per_subject: usize,
) -> Result<Vec<follow::Model>, DbErr> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let (group, tiebreak) = match direction {
        Direction::Followers => ("followee_id", "follower_id"),
        Direction::Following => ("follower_id", "followee_id"),
    };
    let stmt = NewestPerGroup {
        table: "follows",
        group,
        tiebreak,
        filter: "",
        columns: "t.follower_id, t.followee_id, t.created_at",
        join: "",
    }
    .statement(conn.get_database_backend(), subjects, per_subject);
    follow::Entity::find().from_raw_sql(stmt).all(conn).await
}
