//! GraphQL plumbing shared by every concern: per-request data ([`context`]), Relay ids
//! ([`ids`]) and connections ([`pagination`]), the error contract ([`error`],
//! [`error_codes`]), the deterministic batch driver, response field order and the parse
//! cache.

pub mod batch_driver;
pub mod context;
pub mod error;
pub mod error_codes;
pub mod ids;
pub mod ordering;
pub mod pagination;
pub mod parsed;
pub mod pipeline;
