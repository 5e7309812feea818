//! The social domain: users, follows, posts with media and links, comments and reactions,
//! and the screens over them (home feed, profile, post detail, user search).

pub mod entities;
pub mod interactions;
pub mod loaders;
pub mod mutation;
pub mod posts;
pub mod query;
pub mod store;
pub mod types;
