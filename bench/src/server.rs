//! Process control: the dataset (a temp dir, and a fresh PostgreSQL database when asked), the
//! `mobile-bff seed` and `token` commands, and the servers under test, each a separate,
//! pinned process on a free loopback port.
//!
//! Every child is owned by a [`ChildGuard`] that kills it on drop — also when the run fails,
//! panics or is interrupted — and a PostgreSQL database created here is dropped by its
//! [`TempDatabase`] guard the same way.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
// The database name is generated here (`bff_bench_` + hex), never user input.
use sqlx::{AssertSqlSafe, Connection, Executor, postgres::PgConnection};

use crate::{
    RunArgs,
    http::{self, RequestSpec},
    machine::Pinning,
};

/// How long a server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long seeding may take.
const SEED_TIMEOUT: Duration = Duration::from_secs(600);
/// Query rate-limit budget (per minute and burst) given to the product: never reached.
const UNLIMITED_BUDGET: &str = "1000000000";
/// Time a server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The binaries under test.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `mobile-bff`.
    pub product: PathBuf,
    /// This binary (it is also the baseline server).
    pub bench: PathBuf,
    /// Root of the repository (for `git`, and as the working directory of children).
    pub repo: PathBuf,
}

impl Binaries {
    /// Finds `mobile-bff` in `bin_dir` or next to this binary.
    pub fn locate(bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        let bench = std::env::current_exe().context("locating this binary")?;
        let dir = match bin_dir {
            Some(dir) => dir.to_path_buf(),
            None => bench.parent().context("binary without a directory")?.to_path_buf(),
        };
        let product = dir.join("mobile-bff");
        anyhow::ensure!(
            product.is_file(),
            "{} not found: build it with `cargo build --release -p mobile-bff -p mobile-bff-bench` (or pass --bin-dir)",
            product.display()
        );
        // target/release/bench → the repository is two levels up; fall back to the cwd.
        let repo = dir
            .ancestors()
            .find(|p| p.join("Cargo.toml").is_file())
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .context("no working directory")?;
        Ok(Self { product, bench, repo })
    }
}

/// Kills its child process when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    fn new(child: Child, name: &str) -> Self {
        Self { child: Some(child), name: name.to_owned() }
    }

    /// The child's pid (the server itself: `taskset` execs it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status, if the child already exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, a short grace period, then SIGKILL; always reaps the child.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("bench: {} did not stop within {STOP_GRACE:?}; killing it", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL database created for one run; dropped (with its connections) on drop.
pub struct TempDatabase {
    admin_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
    dropped: bool,
}

impl TempDatabase {
    /// Creates `bff_bench_<random>` through `admin_url` (a loopback PostgreSQL URL).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(admin_url).context("--pg is not a URL")?;
        anyhow::ensure!(matches!(url.scheme(), "postgres" | "postgresql"), "--pg must be a postgres:// URL");
        let loopback = match url.host() {
            // postgres:// is not a "special" scheme: IP literals come back as opaque hosts.
            Some(url::Host::Domain(host)) => {
                host == "localhost"
                    || host
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        anyhow::ensure!(loopback, "--pg must point at a loopback PostgreSQL (127.0.0.1, ::1 or localhost)");
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("random database name: {e}"))?;
        let name = format!("bff_bench_{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut admin = PgConnection::connect(admin_url).await.context("connecting to --pg")?;
        admin
            .execute(sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))))
            .await
            .context("creating the bench database")?;
        let _ = admin.close().await;
        url.set_path(&format!("/{name}"));
        Ok(Self { admin_url: admin_url.to_owned(), name, url: url.to_string(), dropped: false })
    }

    /// Drops the database now (the servers must be stopped, or are disconnected by force).
    pub async fn drop_now(&mut self) -> anyhow::Result<()> {
        if self.dropped {
            return Ok(());
        }
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))).await?;
    let _ = admin.close().await;
    Ok(())
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside the runtime (error, Ctrl-C): use a runtime on its own thread.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("bench: could not drop database {}: {err:#}", self.name),
            Err(_) => eprintln!("bench: could not drop database {} (panic)", self.name),
        }
    }
}

/// The seeded dataset every server of a run reads.
pub struct Dataset {
    /// Data dir of the product (SQLite file, signing key, server logs).
    pub dir: tempfile::TempDir,
    /// Database URL given to the product and the baseline.
    pub database_url: String,
    /// Access token of `@alice`.
    pub token: String,
    /// The PostgreSQL database, when there is one (declared last: dropped after `dir`).
    pub database: Option<TempDatabase>,
}

impl Dataset {
    /// Creates the database, seeds it with `mobile-bff seed` and mints alice's token.
    pub async fn prepare(bins: &Binaries, args: &RunArgs) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("bff-bench-").tempdir().context("creating a temp dir")?;
        let (database, database_url) = match &args.pg {
            Some(admin_url) => {
                let database = TempDatabase::create(admin_url).await?;
                let url = database.url.clone();
                (Some(database), url)
            }
            None => (None, format!("sqlite://{}/bench.db?mode=rwc", dir.path().display())),
        };
        let backend = if database.is_some() { "PostgreSQL" } else { "SQLite" };
        let mut dataset = Self { dir, database_url, token: String::new(), database };
        let started = Instant::now();
        let seed = dataset.product_command(bins, &["seed", "--users", &args.users.to_string()]);
        run_to_end(seed, "mobile-bff seed", SEED_TIMEOUT)?;
        eprintln!("bench: seeded {} users on {} in {:.1} s", args.users, backend, started.elapsed().as_secs_f64());
        dataset.token = dataset.token_for(bins, "alice")?;
        Ok(dataset)
    }

    /// A 30-minute access token for the seeded user `handle`, from `mobile-bff token`.
    pub fn token_for(&self, bins: &Binaries, handle: &str) -> anyhow::Result<String> {
        let token = self.product_command(bins, &["token", "--user", handle, "--ttl", "1800"]);
        let stdout = run_to_end(token, "mobile-bff token", Duration::from_secs(60))?;
        stdout.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned()).context("no token printed")
    }

    /// One-hour access tokens of the first `n` users by id, from `mobile-bff tokens`.
    pub fn tokens_for_first(&self, bins: &Binaries, n: usize) -> anyhow::Result<Vec<(i64, String)>> {
        let first = n.to_string();
        let command = self.product_command(bins, &["tokens", "--first", &first, "--ttl", "3600"]);
        let stdout = run_to_end(command, "mobile-bff tokens", Duration::from_secs(120))?;
        let tokens: Vec<(i64, String)> = stdout
            .lines()
            .filter_map(|line| {
                let (id, token) = line.trim().split_once(' ')?;
                Some((id.parse().ok()?, token.trim().to_owned()))
            })
            .collect();
        anyhow::ensure!(tokens.len() == n, "mobile-bff tokens printed {} tokens, not {n}", tokens.len());
        Ok(tokens)
    }

    /// `mobile-bff <args>` with this dataset's environment (and no inherited `BFF_*`).
    fn product_command(&self, bins: &Binaries, args: &[&str]) -> Command {
        let mut command = Command::new(&bins.product);
        command.args(args);
        self.environment(&mut command);
        command.current_dir(&bins.repo);
        command
    }

    fn environment(&self, command: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BFF_") {
                command.env_remove(key);
            }
        }
        command.env("BFF_DATA_DIR", self.dir.path()).env("BFF_DATABASE_URL", &self.database_url).env("BFF_LOG", "warn");
    }

    /// Drops the PostgreSQL database, reporting failures (the guard would only print them).
    pub async fn cleanup(&mut self) -> anyhow::Result<()> {
        match self.database.as_mut() {
            Some(database) => database.drop_now().await,
            None => Ok(()),
        }
    }
}

/// Runs a command to completion within `timeout`; returns its stdout, or its stderr as error.
fn run_to_end(mut command: Command, what: &str, timeout: Duration) -> anyhow::Result<String> {
    let stdout = tempfile::tempfile()?;
    let stderr = tempfile::tempfile()?;
    command.stdin(Stdio::null()).stdout(stdout.try_clone()?).stderr(stderr.try_clone()?);
    let mut guard = ChildGuard::new(command.spawn().with_context(|| format!("starting {what}"))?, what);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.exited() {
            break status;
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} took longer than {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    guard.child = None;
    let read = |mut file: std::fs::File| -> anyhow::Result<String> {
        use std::io::{Read, Seek};
        file.rewind()?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text)
    };
    let (out, err) = (read(stdout)?, read(stderr)?);
    anyhow::ensure!(status.success(), "{what} failed ({status}): {}", tail(&err));
    Ok(out)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A server under test.
pub struct Server {
    /// What it is, for messages (`mobile-bff`, `baseline`).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    process: ChildGuard,
}

impl Server {
    /// Starts `mobile-bff serve` on the server core.
    pub async fn product(bins: &Binaries, dataset: &Dataset, pinning: &Pinning) -> anyhow::Result<Self> {
        Self::product_with(bins, dataset, pinning, "mobile-bff", &[]).await
    }

    /// Starts `mobile-bff serve` on the server core with extra `BFF_*` settings; `name` also
    /// names its log file.
    pub async fn product_with(
        bins: &Binaries,
        dataset: &Dataset,
        pinning: &Pinning,
        name: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let mut command = pinning.server_command(&bins.product);
        command.arg("serve");
        dataset.environment(&mut command);
        command.envs(settings.iter().map(|(k, v)| (*k, v.as_str())));
        command.env("BFF_LISTEN", addr.to_string()).current_dir(&bins.repo);
        // One simulated client sends thousands of queries a second: raise its query budget far
        // above any load here, so the limiter is still consulted on every request (its cost is
        // measured) but never refuses one.
        command
            .env("BFF_RATE_LIMITS__QUERY_CLIENT__PER_MINUTE", UNLIMITED_BUDGET)
            .env("BFF_RATE_LIMITS__QUERY_CLIENT__BURST", UNLIMITED_BUDGET);
        Self::start(name, command, addr, dataset).await
    }

    /// Starts `mobile-bff example-upstream` (the example recommendations service) on the
    /// server core, reading the same dataset.
    pub async fn example_upstream(bins: &Binaries, dataset: &Dataset, pinning: &Pinning) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let mut command = pinning.server_command(&bins.product);
        command.arg("example-upstream").arg("--listen").arg(addr.to_string());
        dataset.environment(&mut command);
        command.current_dir(&bins.repo);
        Self::start("example-upstream", command, addr, dataset).await
    }

    /// Starts `bench baseline-server` on the server core.
    pub async fn baseline(bins: &Binaries, dataset: &Dataset, pinning: &Pinning) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let mut command = pinning.server_command(&bins.bench);
        command.arg("baseline-server").arg("--database-url").arg(&dataset.database_url).arg("--listen");
        command.arg(addr.to_string()).current_dir(&bins.repo);
        Self::start("baseline", command, addr, dataset).await
    }

    async fn start(name: &str, mut command: Command, addr: SocketAddr, dataset: &Dataset) -> anyhow::Result<Self> {
        let log = dataset.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        let mut server = Self { name: name.to_owned(), addr, log, process: ChildGuard::new(child, name) };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let readyz = RequestSpec::get("/readyz");
        loop {
            if let Some(status) = self.process.exited() {
                anyhow::bail!("{} exited during start ({status}):\n{}", self.name, self.log_tail());
            }
            if let Ok((status, _)) = http::send_once(self.addr, &readyz).await
                && status.is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("{} not ready within {READY_TIMEOUT:?}:\n{}", self.name, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of one series of `/metrics` (the metric name with its labels, exactly as
    /// printed), or `None` when the server has not exported it yet.
    pub async fn metric(&self, series: &str) -> anyhow::Result<Option<f64>> {
        let (status, body) = http::send_once(self.addr, &RequestSpec::get("/metrics")).await?;
        anyhow::ensure!(status.is_success(), "/metrics answered {status}");
        let text = String::from_utf8_lossy(&body);
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse::<f64>().ok()))
    }

    /// The server's pid (for `/proc`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Fails with the server's log when it has died.
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        match self.process.exited() {
            Some(status) => anyhow::bail!("{} died ({status}):\n{}", self.name, self.log_tail()),
            None => Ok(()),
        }
    }

    fn log_tail(&self) -> String {
        std::fs::read_to_string(&self.log).map(|text| tail(&text)).unwrap_or_default()
    }
}

/// A loopback port nobody listens on right now (bound and released; the server binds it next).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?)
}
