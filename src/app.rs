//! The application state: every long-lived dependency, built once at start and shared (in an
//! `Arc`) by handlers, resolvers and background tasks.

use std::sync::Arc;

use crate::{
    auth::{
        gate::DeviceGate,
        keys::{KeyError, SigningKeys},
        sessions::RecentPairs,
    },
    config::Settings,
    flags::{catalog::FlagsCell, policy::PolicyCell},
    kernel::Kernel,
    kernel::{
        db::Db,
        documents::{DocumentError, DocumentStore},
        graphql::parsed::ParsedDocuments,
        infra::{
            metrics::Metrics,
            pins::{self, PinError},
            rate_limit::RateLimiter,
            redis::Redis,
        },
        jobs::JobQueue,
    },
    media::Media,
    push::Push,
    realtime::{bus::EventBus, presence::Presence},
    upstreams::{BuildError, Upstreams},
};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The signing key could not be loaded or generated.
    #[error("signing key: {0}")]
    Keys(#[from] KeyError),
    /// Pin files are missing, malformed or incomplete.
    #[error("pins: {0}")]
    Pins(#[from] PinError),
    /// Redis is configured but unreachable.
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    /// A manifest in `persisted.manifest_dir` could not be imported.
    #[error("persisted documents: {0}")]
    Documents(#[from] DocumentError),
    /// An upstream client could not be built.
    #[error("upstreams: {0}")]
    Upstreams(#[from] BuildError),
    /// The media storage or its URL-signing key could not be opened.
    #[error("media: {0}")]
    Media(std::io::Error),
    /// A push provider's credentials could not be loaded.
    #[error("push: {0}")]
    Push(#[from] crate::push::PushError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Everything a request may need: the kernel's services (through `Deref`: `app.db`,
/// `app.metrics`, `app.documents`, `app.limits`, ...) and each concern's long-lived state.
#[derive(Debug)]
pub struct App {
    /// The configuration the process started with.
    pub settings: Settings,
    /// The kernel's services, shared with the transport.
    pub kernel: Arc<Kernel>,
    /// Redis, when configured (cluster mode).
    pub redis: Option<Redis>,
    /// Access-token signing and verification keys.
    pub keys: SigningKeys,
    /// Whether an access token's device is still signed in.
    pub gate: DeviceGate,
    /// Token pairs of recent refreshes (grace window for concurrent refreshes).
    pub recent_pairs: RecentPairs,
    /// HTTP services screens aggregate (recommendations, link previews), with their caches.
    pub upstreams: Arc<Upstreams>,
    /// Wakes real-time subscribers when their event log grows.
    pub bus: Arc<EventBus>,
    /// Presence of users connected to this replica.
    pub presence: Arc<Presence>,
    /// The app version policy and maintenance switch, refreshed from the database.
    pub versions: Arc<PolicyCell>,
    /// The feature flags, refreshed from the database with the version policy.
    pub flags: Arc<FlagsCell>,
    /// Push notifications: the providers (APNs, FCM, or the log fallback) and the send path.
    pub push: Arc<Push>,
    /// Media: the object storage and the upload URL signer.
    pub media: Arc<Media>,
    /// The hybrid logical clock that stamps note field writes (sync).
    pub sync_clock: Arc<crate::sync::clock::Clock>,
}

impl std::ops::Deref for App {
    type Target = Kernel;

    fn deref(&self) -> &Kernel {
        &self.kernel
    }
}

impl App {
    /// Creates the data directory, connects and migrates the database and loads the keys.
    pub async fn init(settings: Settings) -> Result<Arc<Self>, StartError> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|source| StartError::DataDir { path: settings.data_dir.display().to_string(), source })?;
        let metrics = Arc::new(Metrics::new());
        let db =
            Db::connect(settings.database_url.expose(), settings.database_max_connections, metrics.clone()).await?;
        db.migrate().await?;
        let keys = SigningKeys::load(&settings.auth, &settings.data_dir)?;
        let redis = match &settings.redis_url {
            Some(url) => Some(Redis::connect(url.expose()).await.map_err(StartError::Redis)?),
            None => None,
        };
        let documents = DocumentStore::new(db.clone(), redis.clone(), settings.persisted.clone());
        let imported = documents.import_dir().await?;
        if imported.imported > 0 {
            tracing::info!(operations = imported.imported, "imported persisted-operation manifests");
        }
        let gate =
            DeviceGate::new(db.clone(), std::time::Duration::from_secs(settings.auth.revocation_cache_seconds.max(1)));
        let limits = Arc::new(RateLimiter::new(settings.rate_limits.clone(), redis.clone()));
        let pins = pins::pins(&settings.pins)?;
        let recent_pairs = RecentPairs::new(settings.auth.refresh_grace_seconds);
        let upstreams = Arc::new(Upstreams::new(&settings.upstreams, metrics.clone())?);
        let bus = Arc::new(EventBus::new());
        let presence = Presence::new(db.clone(), bus.clone(), settings.realtime.clone());
        let versions = Arc::new(PolicyCell::new(settings.versions.clone()));
        versions.reload(db.conn()).await?;
        let flags = Arc::new(FlagsCell::default());
        flags.reload(db.conn()).await?;
        let jobs = Arc::new(JobQueue::new(db.clone(), settings.jobs.clone(), metrics.clone()));
        let push = Arc::new(Push::new(&settings.push)?);
        let media = Arc::new(Media::new(&settings.media, &settings.data_dir).map_err(StartError::Media)?);
        let settings_sync_ahead = settings.sync.max_clock_ahead_ms;
        let kernel = Arc::new(Kernel {
            settings: settings.kernel(),
            db,
            metrics,
            documents,
            jobs,
            parsed: ParsedDocuments::default(),
            limits,
            pins,
            closing: tokio::sync::watch::Sender::new(false),
        });
        Ok(Arc::new(Self {
            settings,
            kernel,
            redis,
            keys,
            gate,
            recent_pairs,
            upstreams,
            bus,
            presence,
            versions,
            flags,
            push,
            media,
            sync_clock: Arc::new(crate::sync::clock::Clock::new(settings_sync_ahead)),
        }))
    }

    /// The URL of a media object by storage key.
    pub fn media_url(&self, key: &str) -> String {
        format!("{}/media/{key}", self.settings.public_base_url.trim_end_matches('/'))
    }
}

/// The application state of a resolver's request.
pub fn app<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Arc<App>> {
    ctx.data::<Arc<App>>().map_err(|_| crate::kernel::graphql::context::missing("app"))
}
