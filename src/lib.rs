//! mobile-bff: a GraphQL backend-for-frontend for mobile apps.
//!
//! Layers (see docs/ARCHITECTURE.md): [`http`] (routes, middleware, transport) →
//! [`graphql`] (schema, loaders, error contract) → [`domain`] (use cases, plain Rust) →
//! [`db`] and [`infra`] (storage, keys, metrics). [`app::App`] holds every dependency;
//! [`server::start`] runs it.

pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod example_upstream;
pub mod graphql;
pub mod http;
pub mod infra;
pub mod request;
pub mod server;
