//! Keyset pagination over `(created_at, id)` in descending order.
//!
//! A page after a cursor is "rows strictly older than the cursor row", so rows inserted while
//! a user scrolls appear only at the top and never shift or repeat later pages.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition};

/// The sort key of one row: its creation time and its id as a tiebreaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Keyset {
    /// Creation time of the row.
    pub created_at: DateTime<Utc>,
    /// Id of the row (or of the other side, for follows).
    pub id: i64,
}

/// Rows strictly after `after` in `(created_at DESC, id DESC)` order.
pub fn older_than<C1: ColumnTrait, C2: ColumnTrait>(created_at: C1, id: C2, after: Keyset) -> Condition {
    Condition::any()
        .add(created_at.lt(after.created_at))
        .add(Condition::all().add(created_at.eq(after.created_at)).add(id.lt(after.id)))
}

/// One page of rows plus whether more follow.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The rows, at most the requested count.
    pub rows: Vec<T>,
    /// True when at least one more row exists after the last one.
    pub has_next: bool,
}

impl<T> Page<T> {
    /// Splits a result fetched with `limit + 1` into a page of `limit` rows.
    pub fn from_overfetch(mut rows: Vec<T>, limit: usize) -> Self {
        let has_next = rows.len() > limit;
        rows.truncate(limit);
        Self { rows, has_next }
    }
}

/// The newest rows of each group in one statement, for the first page of a list shown under
/// every item of a screen (comments under each post, posts under each user, ...).
pub struct NewestPerGroup<'a> {
    /// Table, aliased `t` in the generated SQL.
    pub table: &'a str,
    /// Grouping column (the parent's id).
    pub group: &'a str,
    /// Tiebreak column after `created_at`.
    pub tiebreak: &'a str,
    /// Extra condition on `t` (e.g. `t.deleted_at IS NULL`), or empty.
    pub filter: &'a str,
    /// Columns to return (may use a join alias).
    pub columns: &'a str,
    /// A join after the ranked subquery (e.g. `JOIN users u ON u.id = t.author_id`), or empty.
    pub join: &'a str,
}

impl NewestPerGroup<'_> {
    /// The statement returning up to `per_group + 1` rows of each group in `groups` (the extra
    /// row tells whether a next page exists).
    pub fn statement(&self, backend: sea_orm::DbBackend, groups: &[i64], per_group: usize) -> sea_orm::Statement {
        let values = crate::kernel::db::sql::head_and_ids(per_group as i64 + 1, groups);
        sea_orm::Statement::from_sql_and_values(backend, self.sql(groups.len()), values)
    }

    /// SQL ranking rows per group by `(created_at, tiebreak)` descending and keeping the first
    /// `$1`; the groups are bound as `$2..` (`groups` placeholders).
    fn sql(&self, groups: usize) -> String {
        let filter = if self.filter.is_empty() { String::new() } else { format!("{} AND ", self.filter) };
        format!(
            "SELECT {columns} FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.{group} \
             ORDER BY t.created_at DESC, t.{tiebreak} DESC) AS rn FROM {table} t WHERE {filter}t.{group} IN ({list})) t \
             {join} WHERE t.rn <= $1 ORDER BY t.{group}, t.rn",
            columns = self.columns,
            group = self.group,
            tiebreak = self.tiebreak,
            table = self.table,
            join = self.join,
            list = crate::kernel::db::sql::placeholders(2, groups),
        )
    }
}
