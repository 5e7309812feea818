//! The schema: every concern's Query, Mutation and Subscription parts merged into one root each.
//! [`build_schema`] is the single place the schema is assembled, used by the server and by
//! `mobile-bff schema` (which writes `schema.graphql`).

use std::sync::Arc;

use async_graphql::{Data, Executor, MergedObject, MergedSubscription, Request, Response, Schema};
use futures_util::{StreamExt, future::BoxFuture, stream::BoxStream};

use crate::{
    app::App,
    config::LimitSettings,
    kernel::{
        graphql::context::Lazy,
        hooks::{Engine, Prepare, Scope},
    },
    messaging::loaders::MessagingLoaders,
    realtime::graphql::ResumeFrom,
    social::loaders::Loaders,
    upstreams::{CallScope, loaders::UpstreamContext},
};

/// Every query field, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::social::query::SocialQuery,
    crate::auth::graphql::AuthQuery,
    crate::upstreams::suggestions::SuggestionsQuery,
    crate::messaging::graphql::MessagingQuery,
    crate::realtime::graphql::RealtimeQuery,
    crate::flags::bootstrap::BootstrapQuery,
    crate::flags::graphql::FlagsQuery,
    crate::push::history::NotificationsQuery,
    crate::media::graphql::MediaQuery,
    crate::sync::graphql::SyncQuery,
);

/// Every mutation, merged from the concerns.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::social::mutation::SocialMutation,
    crate::auth::graphql::AuthMutation,
    crate::messaging::graphql::MessagingMutation,
    crate::realtime::graphql::RealtimeMutation,
    crate::push::graphql::PushMutation,
    crate::push::history::NotificationsMutation,
    crate::media::graphql::MediaMutation,
    crate::sync::graphql::SyncMutation,
);

/// Every subscription, merged from the concerns.
#[derive(MergedSubscription, Default)]
pub struct Subscription(crate::realtime::graphql::RealtimeSubscription, crate::sync::graphql::SyncSubscription);

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

/// The schema as the kernel's [`Engine`].
impl Engine for AppSchema {
    fn execute(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(Executor::execute(self, request))
    }

    fn execute_stream(&self, request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        match session {
            Some(session) => self.execute_stream_with_session_data(request, session).boxed(),
            None => Executor::execute_stream(self, request, None),
        }
    }
}

/// Each operation's request data: the social and messaging loaders (built on first use),
/// the upstream call scope (its deadline runs from the start of the operation) and an SSE
/// client's resume point.
pub struct OperationData(pub Arc<App>);

impl Prepare for OperationData {
    fn prepare(&self, request: Request, scope: &Scope<'_>) -> Request {
        let app = &self.0;
        let upstream = UpstreamContext {
            upstreams: app.upstreams.clone(),
            scope: CallScope::new(app.upstreams.screen_deadline, scope.request_id.map(str::to_owned), scope.trace),
        };
        let viewer = scope.viewer.id_or_zero();
        let (social_app, batches) = (app.clone(), scope.spawner.clone());
        let loaders = Lazy::new(move || {
            let app = &social_app;
            Loaders::new(
                app.db.clone(),
                app.metrics.clone(),
                viewer,
                &batches,
                &app.settings.dataloader,
                upstream.clone(),
            )
        });
        let (messaging_app, batches) = (app.clone(), scope.spawner.clone());
        let messaging = Lazy::new(move || {
            MessagingLoaders::new(messaging_app.db.clone(), viewer, &batches, &messaging_app.settings.dataloader)
        });
        let request = request.data(loaders).data(messaging);
        match scope.resume {
            Some(seq) => request.data(ResumeFrom(seq)),
            None => request,
        }
    }
}
