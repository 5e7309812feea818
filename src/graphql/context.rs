//! Typed access to per-request data from resolvers.

use std::sync::Arc;

use async_graphql::Context;

use super::{
    error::{ErrorCode, api_error},
    loaders::Loaders,
};
use crate::{app::App, request::Viewer};

/// The application state.
pub fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<App>> {
    ctx.data::<Arc<App>>().map_err(|_| missing("app"))
}

/// The loaders of this operation.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|_| missing("loaders"))
}

/// The viewer (anonymous when the request carried no token).
pub fn viewer(ctx: &Context<'_>) -> Viewer {
    ctx.data::<Viewer>().copied().unwrap_or_default()
}

fn missing(what: &str) -> async_graphql::Error {
    tracing::error!(what, "request data missing");
    api_error(ErrorCode::Internal, "internal error")
}
