//! The shared kernel: what every concern uses — the database handle and its helpers
//! ([`db`]), idempotency keys ([`idempotency`]), persisted documents ([`documents`]), the
//! GraphQL plumbing ([`graphql`]), the HTTP transport ([`http`]) and infrastructure
//! ([`infra`]). Nothing here imports a concern: concerns plug in through the hooks the
//! transport takes.

pub mod db;
pub mod documents;
pub mod error;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod infra;
pub mod request;
pub mod validate;
