//! SeaORM entities of the social domain, mirroring `migrations/`. Storage rows, not API
//! types: the GraphQL types map them so that a column can change without changing the schema.

pub mod comment;
pub mod follow;
pub mod post;
pub mod post_media;
pub mod reaction;
pub mod user;
