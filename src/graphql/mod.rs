//! The GraphQL layer: schema, types mapped from storage rows, loaders, limits and the error
//! contract. [`build_schema`] is the single place the schema is assembled, used by the server
//! and by `mobile-bff schema` (which writes `schema.graphql`).

pub mod auth;
pub mod batch_driver;
pub mod context;
pub mod error;
pub mod error_codes;
pub mod ids;
pub mod loaders;
pub mod messaging;
pub mod mutation;
pub mod ordering;
pub mod pagination;
pub mod parsed;
pub mod query;
pub mod realtime;
pub mod suggestions;
pub mod types;
pub mod upstream;

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::{app::App, config::LimitSettings};

/// Every query field, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Query(
    query::SocialQuery,
    auth::AuthQuery,
    suggestions::SuggestionsQuery,
    messaging::MessagingQuery,
    realtime::RealtimeQuery,
);

/// Every mutation, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::SocialMutation,
    auth::AuthMutation,
    messaging::MessagingMutation,
    realtime::RealtimeMutation,
);

/// Every subscription, merged from the concerns.
#[derive(MergedSubscription, Default)]
pub struct Subscription(realtime::RealtimeSubscription);

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
