//! Typed access to per-request data from resolvers.

use async_graphql::Context;

use crate::kernel::{
    graphql::error::{ErrorCode, api_error},
    request::Viewer,
};

/// Request data built on first use. Loaders are attached this way (`schema::OperationData`): an
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

/// The viewer (anonymous when the request carried no token).
pub fn viewer(ctx: &Context<'_>) -> Viewer {
    ctx.data::<Viewer>().copied().unwrap_or_default()
}

pub fn missing(what: &str) -> async_graphql::Error {
    tracing::error!(what, "request data missing");
    api_error(ErrorCode::Internal, "internal error")
}
