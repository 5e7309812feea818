//! SeaORM entities: one module per table, mirroring `migrations/`.
//!
//! These are storage rows, not API types: the GraphQL layer maps them to its own types so that
//! a column can change without changing the public schema.

pub mod biometric_challenge;
pub mod comment;
pub mod conversation;
pub mod conversation_member;
pub mod credential;
pub mod device;
pub mod device_key;
pub mod document_usage;
pub mod event_ack;
pub mod event_head;
pub mod follow;
pub mod idempotency_key;
pub mod message;
pub mod oauth_code;
pub mod persisted_document;
pub mod post;
pub mod post_media;
pub mod reaction;
pub mod refresh_token;
pub mod security_event;
pub mod user;
pub mod user_event;
pub mod user_presence;
