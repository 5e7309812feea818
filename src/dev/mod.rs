//! Development tools, kept out of the request path: the deterministic demo dataset
//! (`mobile-bff seed`) and the example recommendations service (`mobile-bff example-upstream`).

pub mod example_upstream;
pub mod seed;
pub mod suggestion_queries;
