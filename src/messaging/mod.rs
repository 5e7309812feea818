//! Messaging: direct and group conversations, messages with per-conversation sequence
//! numbers and client ids for dedupe, read markers; the inbox and conversation screens.

pub mod conversations;
pub mod entities;
pub mod graphql;
pub mod loaders;
pub mod store;
pub mod types;
