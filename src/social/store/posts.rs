//! Post queries: the home feed, a user's posts, posts by id and their media.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Query, UnionType},
};

use crate::{
    kernel::db::keyset::{Keyset, NewestPerGroup, Page, older_than},
    social::entities::{follow, post, post_media, user},
};

/// A post together with its author, fetched in one statement.
pub type PostWithAuthor = (post::Model, Option<user::Model>);

/// One page of the viewer's home feed: posts by the viewer and everyone they follow, newest
/// first, each with its author.
pub async fn feed_page(
    conn: &impl ConnectionTrait,
    viewer: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<PostWithAuthor>, DbErr> {
    let mut authors = Query::select()
        .column(follow::Column::FolloweeId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(viewer))
        .to_owned();
    authors.union(UnionType::All, Query::select().expr(Expr::val(viewer)).to_owned());
    let filter = Condition::all().add(post::Column::AuthorId.in_subquery(authors));
    page_with_authors(conn, filter, after, limit).await
}

/// One page of a user's posts, newest first.
pub async fn by_author_page(
    conn: &impl ConnectionTrait,
    author: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<PostWithAuthor>, DbErr> {
    let filter = Condition::all().add(post::Column::AuthorId.eq(author));
    page_with_authors(conn, filter, after, limit).await
}

async fn page_with_authors(
    conn: &impl ConnectionTrait,
    filter: Condition,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<PostWithAuthor>, DbErr> {
    let mut query =
        post::Entity::find().find_also_related(user::Entity).filter(post::Column::DeletedAt.is_null()).filter(filter);
    if let Some(after) = after {
        query = query.filter(older_than(post::Column::CreatedAt, post::Column::Id, after));
    }
    let rows = query
        .order_by_desc(post::Column::CreatedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit as u64 + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// Live (not deleted) posts with the given ids.
pub async fn by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<post::Model>, DbErr> {
    post::Entity::find()
        .filter(post::Column::Id.is_in(ids.iter().copied()))
        .filter(post::Column::DeletedAt.is_null())
        .all(conn)
        .await
}

/// Media references of the given posts, in display order.
pub async fn media_for(conn: &impl ConnectionTrait, post_ids: &[i64]) -> Result<Vec<post_media::Model>, DbErr> {
    post_media::Entity::find()
        .filter(post_media::Column::PostId.is_in(post_ids.iter().copied()))
        .order_by_asc(post_media::Column::PostId)
        .order_by_asc(post_media::Column::Position)
        .all(conn)
        .await
}

/// Id of the newest live post (for playground defaults).
pub async fn latest_id(conn: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    let row = post::Entity::find()
        .filter(post::Column::DeletedAt.is_null())
        .order_by_desc(post::Column::Id)
        .one(conn)
        .await?;
    Ok(row.map(|p| p.id))
}

/// The newest `per_author + 1` live posts of each author, in one statement (first page of
/// `User.posts` for every user on a screen).
pub async fn newest_per_author(
    conn: &impl ConnectionTrait,
    author_ids: &[i64],
    per_author: usize,
) -> Result<Vec<post::Model>, DbErr> {
    if author_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = NewestPerGroup {
        table: "posts",
        group: "author_id",
        tiebreak: "id",
        filter: "t.deleted_at IS NULL",
        columns: "t.id, t.author_id, t.body, t.links, t.created_at, t.updated_at, t.deleted_at",
        join: "",
    }
    .statement(conn.get_database_backend(), author_ids, per_author);
    post::Entity::find().from_raw_sql(stmt).all(conn).await
}
