//! The shared kernel: what every concern uses — the database handle and its helpers
//! ([`db`]), idempotency keys ([`idempotency`]), persisted documents ([`documents`]), the
//! GraphQL plumbing and the one operation pipeline ([`graphql`]), the HTTP transport
//! ([`http`]), infrastructure ([`infra`]) and the durable job queue ([`jobs`]). Nothing here imports a concern or the
//! composition root: concerns plug into the transport through [`hooks`].

pub mod db;
pub mod documents;
pub mod error;
pub mod graphql;
pub mod hooks;
pub mod http;
pub mod idempotency;
pub mod infra;
pub mod jobs;
pub mod request;
pub mod settings;
pub mod validate;

use std::sync::Arc;

use self::{
    db::Db,
    documents::DocumentStore,
    graphql::parsed::ParsedDocuments,
    infra::{metrics::Metrics, pins::Pin, rate_limit::RateLimiter},
    jobs::JobQueue,
    settings::KernelSettings,
};

/// The services the kernel itself runs, shared (in an `Arc`) by the transport and the
/// composition root's `App`.
#[derive(Debug)]
pub struct Kernel {
    /// The settings sections the kernel reads.
    pub settings: KernelSettings,
    /// The database (SQLite or PostgreSQL).
    pub db: Db,
    /// This server's metrics registry.
    pub metrics: Arc<Metrics>,
    /// Persisted queries and trusted documents.
    pub documents: DocumentStore,
    /// The durable job queue (background work of every concern).
    pub jobs: Arc<JobQueue>,
    /// Parsed GraphQL documents by query text.
    pub parsed: ParsedDocuments,
    /// Rate limits (shared through Redis when configured).
    pub limits: Arc<RateLimiter>,
    /// Published certificate pins.
    pub pins: Vec<Pin>,
    /// Becomes `true` when the server starts shutting down: sockets and event streams drain
    /// and close ("going away, reconnect").
    pub closing: tokio::sync::watch::Sender<bool>,
}
