//! The social domain: users, follows, posts with media and links, comments and reactions,
//! and the screens over them (home feed, profile, post detail, user search).

pub mod commands;
pub mod entities;
pub mod interactions;
pub mod loaders;
pub mod mutation;
pub mod posts;
pub mod query;
pub mod store;
pub mod types;

// The API other concerns use (they reach social only through these names).
pub use self::entities::{post as post_entity, user as user_entity};
pub use self::loaders::{LoadError, loaders};
pub use self::store::posts::latest_id as latest_post_id;
pub use self::store::users::{by_handle as user_by_handle, by_ids as users_by_ids, first as first_user};
pub use self::types::{
    comment::Comment,
    post::{Post, ReactionKind},
    user::User,
};
