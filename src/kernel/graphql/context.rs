//! Typed access to per-request data from resolvers.

use std::sync::Arc;

use async_graphql::Context;

use crate::{app::App, kernel::request::Viewer};
use crate::{
    kernel::graphql::error::{ErrorCode, api_error},
    social::loaders::Loaders,
};

/// The application state.
pub fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<App>> {
    ctx.data::<Arc<App>>().map_err(|_| missing("app"))
}

/// Request data built on first use. Loaders are attached this way ([`with_loaders`]): an
/// operation that reads nothing (`{ __typename }`) or an idle subscription (most of them,
/// most of the time) then never allocates them.
pub struct Lazy<T> {
    cell: std::sync::OnceLock<T>,
    build: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T> Lazy<T> {
    /// Data that `build` makes when a resolver first asks for it.
    pub fn new(build: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self { cell: std::sync::OnceLock::new(), build: Box::new(build) }
    }

    /// The data, built now if needed.
    pub fn get(&self) -> &T {
        self.cell.get_or_init(|| (self.build)())
    }
}

/// `T` attached to the request as [`Lazy<T>`], built now if needed.
pub fn lazy_data<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> Option<&'a T> {
    ctx.data::<Lazy<T>>().ok().map(Lazy::get)
}

/// The loaders of this operation.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    lazy_data::<Loaders>(ctx).ok_or_else(|| missing("loaders"))
}

/// The viewer (anonymous when the request carried no token).
pub fn viewer(ctx: &Context<'_>) -> Viewer {
    ctx.data::<Viewer>().copied().unwrap_or_default()
}

fn missing(what: &str) -> async_graphql::Error {
    tracing::error!(what, "request data missing");
    api_error(ErrorCode::Internal, "internal error")
}
