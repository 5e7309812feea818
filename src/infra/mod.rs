//! Infrastructure: metrics, signing keys and other dependencies that sit behind the domain.

pub mod event_bus;
pub mod keys;
pub mod labels;
pub mod metrics;
pub mod pins;
pub mod rate_limit;
pub mod redis;
pub mod upstream;
