//! The schema: every concern's Query, Mutation and Subscription parts merged into one root each.
//! [`build_schema`] is the single place the schema is assembled, used by the server and by
//! `mobile-bff schema` (which writes `schema.graphql`).

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::{app::App, config::LimitSettings};

/// Every query field, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::social::query::SocialQuery,
    crate::auth::graphql::AuthQuery,
    crate::upstreams::suggestions::SuggestionsQuery,
    crate::messaging::graphql::MessagingQuery,
    crate::realtime::graphql::RealtimeQuery,
);

/// Every mutation, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::social::mutation::SocialMutation,
    crate::auth::graphql::AuthMutation,
    crate::messaging::graphql::MessagingMutation,
    crate::realtime::graphql::RealtimeMutation,
);

/// Every subscription, merged from the concerns.
#[derive(MergedSubscription, Default)]
pub struct Subscription(crate::realtime::graphql::RealtimeSubscription);

/// The executable schema.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema with the configured limits; `app` is attached as schema data.
pub fn build_schema(app: Option<Arc<App>>, limits: &LimitSettings) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(32);
    if let Some(app) = app {
        builder = builder.data(app);
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &LimitSettings::default()).sdl()
}
