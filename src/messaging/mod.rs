//! Messaging: direct and group conversations, messages with per-conversation sequence
//! numbers and client ids for dedupe, read markers; the inbox and conversation screens.

pub mod conversations;
pub mod entities;
pub mod graphql;
pub mod loaders;
pub mod store;
pub mod types;

// The API other concerns use (they reach messaging only through these names).
pub use self::entities::message as message_entity;
pub use self::graphql::{member_conversation, node_conversation, node_message};
pub use self::store::{contacts, conversations_by_ids, messages_after};
pub use self::types::Message;
