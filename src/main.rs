//! The `mobile-bff` command: `serve` (default), `migrate`, `seed`, `token`, `tokens`, `schema`,
//! `documents`, `versions`, `maintenance`, `devices`, `jobs`, `push` and `example-upstream`.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mobile_bff::{
    app::App,
    config::Settings,
    dev::seed,
    flags,
    kernel::{db::Db, documents::DocumentStore, infra::metrics::Metrics},
    schema, server,
};

/// A GraphQL backend-for-frontend for mobile apps.
#[derive(Parser)]
#[command(name = "mobile-bff", version, about)]
struct Cli {
    /// TOML configuration file (BFF_* environment variables override it).
    #[arg(long, global = true, env = "BFF_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve {
        /// Seed the demo dataset first if the database is empty.
        #[arg(long)]
        seed: bool,
        /// Users in the demo dataset (with --seed).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Offer a one-click login as the demo user in the playground (development only).
        #[arg(long)]
        dev_login: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Fill an empty database with the deterministic demo dataset.
    Seed {
        /// Number of users.
        #[arg(long, default_value_t = 1000)]
        users: usize,
    },
    /// Mint an access token for a user (development and tests); printed alone on the last line.
    Token {
        /// The user's handle.
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (default: the configured access-token lifetime).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Mint access tokens for the first N users by id, one `<user id> <token>` line each (load
    /// tests: thousands of sockets, each its own user).
    Tokens {
        /// How many users.
        #[arg(long)]
        first: u64,
        /// Lifetime in seconds (default: the configured access-token lifetime).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    Schema,
    /// Run the example recommendations service (docs/upstreams.md) over this database; point
    /// `BFF_UPSTREAMS__RECOMMENDATIONS__BASE_URL` at it.
    ExampleUpstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: std::net::SocketAddr,
        /// Extra latency added to every answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Manage persisted documents (trusted operations from client codegen).
    Documents {
        #[command(subcommand)]
        command: DocumentsCommand,
    },
    /// Minimum and recommended app versions per platform (every replica picks a change up
    /// within `versions.refresh_seconds`).
    Versions {
        #[command(subcommand)]
        command: VersionsCommand,
    },
    /// Feature flags (every replica picks a change up within `versions.refresh_seconds`;
    /// every change is audited).
    Flags {
        #[command(subcommand)]
        command: FlagsCommand,
    },
    /// Maintenance mode: every operation but `bootstrap` answers 503 `MAINTENANCE`.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// Test devices (development).
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Inspect the job queue (dead letters and what is pending).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Push notifications (docs/push-setup.md).
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
}

#[derive(Subcommand)]
enum FlagsCommand {
    /// Every flag: on/off, rules, variants, last change.
    List,
    /// Create or change a flag: on (unless `--disable`), for a rollout of users, platforms
    /// and app versions; variants as `name:weight`.
    Set {
        /// The flag's key.
        key: String,
        /// Percentage of users (0 to 100, two decimals), sticky per user (else device).
        #[arg(long)]
        rollout: Option<f64>,
        /// Only on this platform (repeat for several).
        #[arg(long = "platform")]
        platforms: Vec<String>,
        /// Only this app version and newer.
        #[arg(long)]
        min_version: Option<String>,
        /// Variants, `name:weight` (repeat).
        #[arg(long = "variant")]
        variants: Vec<String>,
        /// What the flag is for.
        #[arg(long)]
        description: Option<String>,
        /// Store it switched off.
        #[arg(long)]
        disable: bool,
        /// Who makes the change (the audit log), default `$USER`.
        #[arg(long)]
        actor: Option<String>,
    },
    /// The kill switch: off for everyone at once (rules kept).
    Kill {
        /// The flag's key.
        key: String,
        /// Who makes the change.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Store a flag from an Unleash feature definition (JSON file).
    Import {
        /// The file.
        file: PathBuf,
        /// Who makes the change.
        #[arg(long)]
        actor: Option<String>,
    },
    /// The newest changes (of one flag, or of all).
    Audit {
        /// Only this flag.
        key: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

#[derive(Subcommand)]
enum VersionsCommand {
    /// Print every platform's versions and store URL, and maintenance.
    List,
    /// Store a platform's versions; options left out keep their value, `none` clears one.
    Set {
        /// `ios`, `android` or `web`.
        #[arg(long)]
        platform: String,
        /// Oldest version served (`2.0.0`, `2.0.0 (512)`); older apps get 426.
        #[arg(long)]
        minimum: Option<String>,
        /// Older apps are told to update (`SOFT`).
        #[arg(long)]
        recommended: Option<String>,
        /// Where the app is updated.
        #[arg(long)]
        store_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The newest jobs with a status: one `<id> <kind> <attempts> <last error>` line each.
    List {
        /// `dead` (the dead letter), `queued`, `running` or `done`.
        #[arg(long, default_value = "dead")]
        status: String,
        /// Only this kind (`push.send`).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Start maintenance.
    On {
        /// What apps show their users.
        #[arg(long)]
        message: String,
        /// Announced end (RFC 3339, e.g. 2026-12-01T06:00:00Z); maintenance ends by itself then.
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// End maintenance.
    Off,
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Sign test devices of a user in with push tokens; prints `device <id> <provider> <token>`.
    Seed {
        /// The user's handle.
        #[arg(long)]
        user: String,
        /// An APNs token (hex); repeat for more devices.
        #[arg(long)]
        apns: Vec<String>,
        /// An FCM registration token; repeat for more devices.
        #[arg(long)]
        fcm: Vec<String>,
        /// APNs tokens are sandbox (development build) tokens.
        #[arg(long)]
        sandbox: bool,
        /// Also this many devices with random APNs-shaped tokens.
        #[arg(long, default_value_t = 0)]
        random: usize,
    },
}

#[derive(Subcommand)]
enum PushCommand {
    /// Send a notification to every device of a user; prints the notification id and each
    /// device's outcome (runs the sends in this process through the job queue).
    Send {
        /// The recipient's handle.
        #[arg(long)]
        user: String,
        /// Title.
        #[arg(long, default_value = "")]
        title: String,
        /// Body.
        #[arg(long, default_value = "")]
        body: String,
        /// MESSAGES, SOCIAL, SYSTEM, SECURITY or MARKETING.
        #[arg(long, default_value = "SYSTEM")]
        category: String,
        /// high or normal.
        #[arg(long, default_value = "high")]
        priority: String,
        /// Data-only (background) push: no alert.
        #[arg(long)]
        silent: bool,
        /// Custom keys, as a JSON object.
        #[arg(long)]
        data: Option<String>,
        /// Collapse key (at most 64 bytes).
        #[arg(long)]
        collapse_key: Option<String>,
        /// Seconds to wait for the outcomes.
        #[arg(long, default_value_t = 30)]
        wait_seconds: u64,
    },
}

#[derive(Subcommand)]
enum DocumentsCommand {
    /// Import a manifest: graphql-codegen `persisted-documents.json`, Apollo
    /// `persisted-query-manifest.json` or Relay `persisted_queries.json`.
    Import {
        /// The manifest file.
        file: PathBuf,
        /// The app version that ships these operations (recorded per operation).
        #[arg(long)]
        app_version: Option<String>,
    },
}

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&settings.data_dir).context("creating the data directory")?;
    let db = Db::connect(settings.database_url.expose(), settings.database_max_connections, Arc::new(Metrics::new()))
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("migrating the database")?;
    Ok(db)
}

async fn run_seed(db: &Db, users: usize) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = seed::seed(db, users).await.context("seeding")?;
    if report.skipped {
        tracing::info!("database already has users; demo data not seeded");
    } else {
        tracing::info!(
            users = report.users,
            follows = report.follows,
            posts = report.posts,
            media = report.media,
            comments = report.comments,
            reactions = report.reactions,
            conversations = report.conversations,
            messages = report.messages,
            seconds = started.elapsed().as_secs_f64(),
            "seeded the demo dataset"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve { seed: false, users: 1000, dev_login: false });
    if let Command::Schema = command {
        print!("{}", schema::sdl());
        return Ok(());
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    init_tracing(&settings);
    match command {
        Command::Serve { seed, users, dev_login } => {
            for warning in settings.production_warnings() {
                tracing::warn!("{warning}");
            }
            if dev_login {
                settings.playground.dev_login = true;
            }
            if settings.playground.dev_login {
                tracing::warn!("playground dev login is ON: anyone reaching this server can act as the demo user");
            }
            let app = App::init(settings).await?;
            if seed {
                run_seed(&app.db, users).await?;
            }
            let server = server::start_with(app).await?;
            println!("mobile-bff listening on http://{} (playground: /playground)", server.addr);
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        Command::Migrate => {
            open_db(&settings).await?;
            println!("migrations applied");
        }
        Command::Seed { users } => {
            let db = open_db(&settings).await?;
            run_seed(&db, users).await?;
        }
        Command::Token { user, ttl } => {
            let app = App::init(settings).await?;
            let row = mobile_bff::social::store::users::by_handle(app.db.conn(), &user)
                .await?
                .with_context(|| format!("no user with handle {user:?}"))?;
            let token = app.keys.mint(row.id, ttl)?;
            println!("{token}");
        }
        Command::Tokens { first, ttl } => {
            use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
            let app = App::init(settings).await?;
            let ids: Vec<i64> = mobile_bff::social::entities::user::Entity::find()
                .select_only()
                .column(mobile_bff::social::entities::user::Column::Id)
                .order_by_asc(mobile_bff::social::entities::user::Column::Id)
                .limit(first)
                .into_tuple()
                .all(app.db.conn())
                .await?;
            let mut out = String::with_capacity(ids.len() * 300);
            for id in ids {
                out.push_str(&format!("{id} {}\n", app.keys.mint(id, ttl)?));
            }
            print!("{out}");
        }
        Command::Documents { command: DocumentsCommand::Import { file, app_version } } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let db = open_db(&settings).await?;
            let redis = match &settings.redis_url {
                Some(url) => Some(mobile_bff::kernel::infra::redis::Redis::connect(url.expose()).await?),
                None => None,
            };
            let store = DocumentStore::new(db, redis, settings.persisted.clone());
            let report = store.import(&bytes, app_version.as_deref()).await?;
            println!("imported {} operations from {}", report.imported, file.display());
        }
        Command::Versions { command } => {
            let db = open_db(&settings).await?;
            let policy = match command {
                VersionsCommand::List => flags::admin::current_policy(&db, &settings.versions).await?,
                VersionsCommand::Set { platform, minimum, recommended, store_url } => {
                    let platform = flags::admin::parse_platform(&platform)?;
                    let change = flags::admin::VersionChange { minimum, recommended, store_url };
                    flags::admin::set_versions(&db, &settings.versions, platform, change).await?
                }
            };
            print!("{}", flags::admin::describe(&policy));
        }
        Command::Flags { command } => {
            let db = open_db(&settings).await?;
            let actor = |given: Option<String>| given.or_else(|| std::env::var("USER").ok()).unwrap_or_default();
            let out = match command {
                FlagsCommand::List => flags::manage::list(&db).await?,
                FlagsCommand::Set {
                    key,
                    rollout,
                    platforms,
                    min_version,
                    variants,
                    description,
                    disable,
                    actor: who,
                } => {
                    let change =
                        flags::manage::FlagChange { disable, rollout, platforms, min_version, variants, description };
                    let feature = flags::manage::set(&db, &actor(who), &key, change).await?;
                    format!("{}\n", serde_json::to_string_pretty(&feature)?)
                }
                FlagsCommand::Kill { key, actor: who } => {
                    flags::manage::kill(&db, &actor(who), &key).await?;
                    format!("{key}: OFF for everyone (replicas within {} s)\n", settings.versions.refresh_seconds)
                }
                FlagsCommand::Import { file, actor: who } => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    let feature = flags::manage::import(&db, &actor(who), &text).await?;
                    format!("imported {}\n", feature.name)
                }
                FlagsCommand::Audit { key, limit } => {
                    flags::manage::audit(&db, key.as_deref(), limit.min(1000)).await?
                }
            };
            print!("{out}");
        }
        Command::Maintenance { command } => {
            let db = open_db(&settings).await?;
            let on = match command {
                MaintenanceCommand::On { message, until } => Some((message, until)),
                MaintenanceCommand::Off => None,
            };
            let policy = flags::admin::set_maintenance(&db, &settings.versions, on).await?;
            print!("{}", flags::admin::describe(&policy));
        }
        Command::ExampleUpstream { listen, latency_ms } => {
            let db = open_db(&settings).await?;
            let router = mobile_bff::dev::example_upstream::router(db, std::time::Duration::from_millis(latency_ms));
            let listener =
                tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            println!(
                "example recommendations service on http://{} (BFF_UPSTREAMS__RECOMMENDATIONS__BASE_URL=http://{0})",
                listener.local_addr()?
            );
            axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
        }
        Command::Push {
            command:
                PushCommand::Send { user, title, body, category, priority, silent, data, collapse_key, wait_seconds },
        } => {
            let app = App::init(settings).await?;
            let workers = mobile_bff::kernel::jobs::worker::spawn_workers(app.jobs.clone(), server::job_registry(&app));
            let args = mobile_bff::push::cli::SendArgs {
                user,
                title,
                body,
                category,
                priority,
                silent,
                data,
                collapse_key,
                wait: std::time::Duration::from_secs(wait_seconds),
            };
            let report = mobile_bff::push::cli::send(&app, args).await;
            for worker in workers {
                worker.abort();
            }
            print!("{}", report?);
        }
        Command::Devices { command: DevicesCommand::Seed { user, apns, fcm, sandbox, random } } => {
            let app = App::init(settings).await?;
            let environment = if sandbox {
                mobile_bff::push::tokens::Environment::Sandbox
            } else {
                mobile_bff::push::tokens::Environment::Production
            };
            print!("{}", mobile_bff::push::cli::seed_devices(&app, &user, &apns, &fcm, environment, random).await?);
        }
        Command::Jobs { command: JobsCommand::List { status, kind, limit } } => {
            let db = open_db(&settings).await?;
            let rows = mobile_bff::kernel::jobs::store::list(db.conn(), &status, kind.as_deref(), limit).await?;
            for row in rows {
                println!(
                    "{} {} attempts={} {}",
                    row.id,
                    row.kind,
                    row.attempts,
                    row.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        Command::Schema => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mobile-bff: {err:#}");
            ExitCode::FAILURE
        }
    }
}
