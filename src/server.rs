//! Starting and stopping the HTTP server, used by `mobile-bff serve` and by the integration
//! tests (which start it on port 0 with a fresh database).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use axum::Router;

use crate::{
    app::{App, StartError},
    auth::{self, bearer::BearerVerifier},
    config::Settings,
    flags::{self, gate::VersionGate, policy},
    kernel::{
        graphql::pipeline::Pipeline,
        hooks::Hooks,
        http::{self, HttpState},
        idempotency,
        jobs::{self, JobRegistry},
    },
    playground,
    realtime::{connections::PresenceConnections, fanout::Fanout, log, shared::SharedFeeds},
    schema::{OperationData, build_schema},
};

/// A running server.
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// The application state, for tests that look inside.
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
    /// Real-time background tasks (retention, presence, cross-replica notifications).
    realtime: Vec<JoinHandle<()>>,
    /// Job-queue workers (one loop per kind) and the queue's maintenance task.
    workers: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish (bounded by the configured
    /// grace period) and waits for the server to end.
    ///
    /// Closing first tells everything long-lived to finish: sockets close with "going away",
    /// SSE streams end, waiting `pollEvents` answer at once, `/readyz` says `draining`. The
    /// background tasks (the LISTEN task that wakes subscribers for other replicas' events
    /// among them) stop only after the requests have drained.
    pub async fn shutdown(self) {
        self.app.closing.send_replace(true);
        let _ = self.shutdown.send(true);
        let grace = Duration::from_secs(self.app.settings.shutdown_grace_seconds);
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "server ended with an error"),
            Ok(Err(err)) => tracing::warn!(error = %err, "server task failed"),
            Err(_) => tracing::warn!("shutdown grace period elapsed with requests in flight"),
        }
        self.sweeper.abort();
        for task in self.realtime.iter().chain(&self.workers) {
            task.abort();
        }
    }

    /// Waits until the server ends by itself (it only does when shut down).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Builds the app and starts serving on `settings.listen`.
pub async fn start(settings: Settings) -> Result<RunningServer, StartError> {
    let app = App::init(settings).await?;
    start_with(app).await
}

/// Starts serving an already initialised app.
pub async fn start_with(app: Arc<App>) -> Result<RunningServer, StartError> {
    let schema = build_schema(Some(app.clone()), &app.settings.limits);
    let sdl: Arc<str> = schema.sdl().into();
    let hooks = Hooks {
        engine: Arc::new(schema),
        verifier: Arc::new(BearerVerifier(app.clone())),
        prepare: Arc::new(OperationData(app.clone())),
        subscriptions: Arc::new(SharedFeeds(Fanout::new(app.clone()))),
        connections: Arc::new(PresenceConnections(app.presence.clone())),
        budgets: auth::graphql::FIELD_BUDGETS,
        gate: Arc::new(VersionGate(app.versions.clone())),
    };
    let state = HttpState { pipeline: Pipeline::new(app.kernel.clone(), hooks), sdl };
    let concerns = Router::new()
        .merge(auth::routes::routes(app.clone()))
        .merge(flags::ofrep::routes(app.clone()))
        .merge(playground::routes(app.clone()))
        .merge(crate::media::routes(app.clone()));
    let listener = tokio::net::TcpListener::bind(app.settings.listen)
        .await
        .map_err(|source| StartError::Bind { addr: app.settings.listen.to_string(), source })?;
    let addr =
        listener.local_addr().map_err(|source| StartError::Bind { addr: app.settings.listen.to_string(), source })?;
    let (shutdown, mut signal) = watch::channel(false);
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
        http::service(state, concerns),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    let sweeper = idempotency::spawn_sweeper(app.db.clone(), Duration::from_secs(600));
    let realtime = realtime_tasks(&app);
    let workers = job_workers(&app);
    tracing::info!(%addr, "mobile-bff listening");
    Ok(RunningServer { addr, app, shutdown, task, sweeper, realtime, workers })
}

/// The job handlers of every concern, by kind.
pub fn job_registry(app: &Arc<App>) -> JobRegistry {
    JobRegistry::default()
        .register(Arc::new(crate::push::worker::SendHandler(app.clone())))
        .register(Arc::new(crate::media::worker::ProcessHandler(app.clone())))
}

/// Starts the job workers (when `jobs.workers` is on) and the queue's maintenance task.
fn job_workers(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    if app.settings.jobs.workers {
        jobs::worker::spawn_workers(app.jobs.clone(), job_registry(app))
    } else {
        vec![jobs::worker::spawn_maintenance(app.jobs.clone())]
    }
}

/// Event-log retention, the presence ticker, the version-policy refresher and, on PostgreSQL, the LISTEN task that wakes
/// subscribers for events written by other replicas.
fn realtime_tasks(app: &Arc<App>) -> Vec<JoinHandle<()>> {
    let settings = &app.settings.realtime;
    let mut tasks = vec![
        log::spawn_retention_sweeper(app.db.clone(), settings.clone()),
        app.presence.spawn_ticker(),
        policy::spawn_refresher(&app.versions, &app.flags, app.settings.database_url.expose().to_owned()),
        crate::media::uploads::spawn_sweeper(app.media.finisher(app), app.settings.media.clone()),
        crate::sync::retention::spawn_sweeper(app.db.clone(), app.settings.sync.clone()),
    ];
    if app.settings.is_postgres() && settings.pg_notify {
        // The listener holds the app only weakly: it must not keep a stopped server alive.
        let gate_app = Arc::downgrade(app);
        tasks.push(crate::realtime::bus::spawn_pg_listener(
            app.bus.clone(),
            app.settings.database_url.expose().to_owned(),
            settings.pg_notify_channel.clone(),
            Box::new(move |device| {
                if let Some(app) = gate_app.upgrade() {
                    app.gate.revoked(device);
                }
            }),
        ));
    }
    tasks
}
