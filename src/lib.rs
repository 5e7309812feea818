//! mobile-bff: a GraphQL backend-for-frontend for mobile apps.
//!
//! One folder per concern ([`auth`], [`social`], [`messaging`], [`realtime`], [`upstreams`],
//! [`flags`], [`push`], [`media`], [`sync`])
//! over a shared [`kernel`] (database, GraphQL plumbing, HTTP transport, infrastructure) that
//! imports no concern. The composition root ([`app`], [`schema`], [`server`], [`config`]) is
//! the only code that knows every concern; [`dev`] holds development tools (the demo seed and
//! the example upstream service). See docs/ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod config;
pub mod dev;
pub mod flags;
pub mod kernel;
pub mod media;
pub mod messaging;
pub mod node;
pub mod playground;
pub mod push;
pub mod realtime;
pub mod schema;
pub mod server;
pub mod social;
pub mod sync;
pub mod upstreams;
