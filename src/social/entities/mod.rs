//! SeaORM entities of the social domain, mirroring `migrations/`. Storage rows, not API
//! types: the GraphQL types map them so that a column can change without changing the schema.

pub mod comment;
pub mod follow;
pub mod post;
pub mod reaction;
pub mod user;

/// A post's media reference, owned by the media concern (one definition of the media shape).
pub use crate::media::post_media;
