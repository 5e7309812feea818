//! Presence as the transport's [`Connections`] hook: a WebSocket or SSE connection counts
//! towards its user's limit and keeps them `online` while it is open.

use std::{any::Any, sync::Arc};

use futures_util::future::BoxFuture;

use super::presence::Presence;
use crate::kernel::hooks::Connections;

/// The presence registry, counting live connections.
pub struct PresenceConnections(pub Arc<Presence>);

impl Connections for PresenceConnections {
    fn open(&self, user: i64) -> usize {
        self.0.connections_of(user)
    }

    fn connect(&self, user: i64) -> BoxFuture<'_, Box<dyn Any + Send + Sync>> {
        Box::pin(async move {
            let connected = self.0.connect(user).await;
            Box::new(connected) as Box<dyn Any + Send + Sync>
        })
    }
}
