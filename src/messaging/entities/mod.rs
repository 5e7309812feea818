//! SeaORM entities of messaging, mirroring `migrations/`.

pub mod conversation;
pub mod conversation_member;
pub mod message;
