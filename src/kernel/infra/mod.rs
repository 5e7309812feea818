//! Infrastructure every concern may use: metrics and bounded labels, the optional Redis
//! connection, rate limits and published certificate pins.

pub mod labels;
pub mod metrics;
pub mod pins;
pub mod rate_limit;
pub mod redis;
pub mod trace;
