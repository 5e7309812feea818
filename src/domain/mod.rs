//! The domain: business rules and use cases of the social app, in plain Rust.
//!
//! Nothing here knows about HTTP or GraphQL. Use cases take the database handle (or an open
//! write transaction) and plain inputs, validate them, and return plain results or a
//! [`DomainError`]. The GraphQL layer maps those to API types and error codes.

pub mod auth;
pub mod documents;
pub mod error;
pub mod idempotency;
pub mod messaging;
pub mod posts;
pub mod realtime;
pub mod seed;
pub mod social;
pub mod validate;

pub use error::DomainError;
