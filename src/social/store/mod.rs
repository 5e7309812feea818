//! The social domain's queries: posts and the home feed, comments, follows, users, and the
//! per-batch aggregates (counts, the viewer's reaction and follow state).

pub mod comments;
pub mod follows;
pub mod posts;
pub mod stats;
pub mod users;
