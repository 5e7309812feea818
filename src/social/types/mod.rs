//! GraphQL object types of the social domain, mapped from storage rows.

pub mod comment;
pub mod post;
pub mod user;

/// Converts a database count to GraphQL `Int`, saturating.
pub fn count(n: i64) -> i32 {
    i32::try_from(n.max(0)).unwrap_or(i32::MAX)
}
