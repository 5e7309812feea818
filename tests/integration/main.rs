//! Integration tests: each test starts the real server on port 0 with a fresh database —
//! SQLite in a temp dir by default, a fresh PostgreSQL database when
//! `BFF_TEST_DATABASE_URL` is set — and talks to it over HTTP. `graphql_errors` runs the
//! schema in process, without a server.

// A failed `unwrap`/`expect` is a failed test here; the crate is not `cfg(test)` code to clippy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod common;

mod auth;
mod auth_attacks;
mod bad_input;
mod biometric;
mod cli;
mod connections;
mod draining;
mod feed;
mod flags;
mod graphql_errors;
mod http;
mod jobs;
mod media;
mod messaging;
mod mutations;
mod push;
mod rate_limits;
mod realtime;
mod replica;
mod sync;
mod transport;
mod upstreams;
mod versions;
mod websocket;
