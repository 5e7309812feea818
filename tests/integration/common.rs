//! The test harness: a server on port 0 with its own database, and an HTTP client for it.

use std::{sync::Arc, time::Duration};

use mobile_bff::{
    config::{Secret, Settings},
    dev::seed,
    server::{self, RunningServer},
};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

/// A fresh database for one test. A PostgreSQL database is dropped by [`TestDatabase::destroy`]
/// or, when the test never gets there (it failed, or returned early), when the value is dropped.
pub struct TestDatabase {
    /// URL the server connects to.
    pub url: String,
    /// For PostgreSQL: the admin URL and database name to drop afterwards (`None` once dropped).
    drop: Option<(String, String)>,
}

impl TestDatabase {
    /// SQLite in `dir`, or a new PostgreSQL database when `BFF_TEST_DATABASE_URL` is set.
    pub async fn create(dir: &std::path::Path) -> Self {
        match std::env::var("BFF_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("bff_test_{}", uuid::Uuid::new_v4().simple());
                let conn = Database::connect(&admin).await.expect("connect to BFF_TEST_DATABASE_URL");
                conn.execute_raw(Statement::from_string(
                    conn.get_database_backend(),
                    format!("CREATE DATABASE {name}"),
                ))
                .await
                .expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(base, _)| base.to_owned()).expect("admin URL has a database");
                Self { url: format!("{base}/{name}"), drop: Some((admin, name)) }
            }
            _ => Self { url: format!("sqlite://{}/test.db?mode=rwc", dir.display()), drop: None },
        }
    }

    /// Drops the PostgreSQL database (no-op for SQLite, whose temp dir is removed).
    pub async fn destroy(mut self) {
        if let Some((admin, name)) = self.drop.take() {
            drop_database(&admin, &name).await;
        }
    }
}

impl Drop for TestDatabase {
    /// Drops a database [`TestDatabase::destroy`] did not, also while a failed test unwinds.
    /// The caller may be on a runtime (a `#[tokio::test]`, possibly shutting down), so the drop
    /// runs on its own thread with its own runtime, and is waited for so the database is gone
    /// before the test process exits. Never panics: a failure leaves the database behind.
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop.take() else { return };
        let dropper = std::thread::Builder::new().name("drop-test-database".into()).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(30), drop_database(&admin, &name)).await;
            });
        });
        if let Ok(dropper) = dropper {
            let _ = dropper.join();
        }
    }
}

/// `DROP DATABASE … WITH (FORCE)`: ends the connections still open to it (a server that was
/// not shut down) first. Errors are ignored; this is clean-up.
async fn drop_database(admin: &str, name: &str) {
    if let Ok(conn) = Database::connect(admin).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql)).await;
        conn.close().await.ok();
    }
}

/// Settings for a test server in `dir` with database `url`.
pub fn settings(dir: &std::path::Path, url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        database_url: Secret::new(url),
        database_max_connections: 8,
        shutdown_grace_seconds: 2,
        // Cheap password hashing: tests exercise the flows, not argon2's cost.
        auth: mobile_bff::config::AuthSettings { argon2_memory_kib: 256, argon2_iterations: 1, ..Default::default() },
        // Suites fire hundreds of requests from one address; the limits have their own tests.
        rate_limits: mobile_bff::kernel::infra::rate_limit::RateLimitSettings { enabled: false, ..Default::default() },
        ..Settings::default()
    }
}

/// A running server with its database and client.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    pub database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with `users` seeded demo users (0 for an empty database).
    pub async fn start(users: usize) -> Self {
        Self::start_with(users, |_| {}).await
    }

    /// Like [`TestServer::start`], with settings adjusted by `tweak`.
    pub async fn start_with(users: usize, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = TestDatabase::create(dir.path()).await;
        let mut settings = settings(dir.path(), &database.url);
        tweak(&mut settings);
        let server = server::start(settings).await.expect("server starts");
        if users > 0 {
            seed::seed(&server.app.db, users).await.expect("seed");
        }
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Self { server: Some(server), base, client, database: Some(database), _dir: dir }
    }

    /// The app behind the server.
    pub fn app(&self) -> &Arc<mobile_bff::app::App> {
        &self.server.as_ref().expect("running").app
    }

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(database) = self.database.take() {
            database.destroy().await;
        }
    }

    /// An access token for the user with `handle`.
    pub async fn token(&self, handle: &str) -> String {
        let user = mobile_bff::social::store::users::by_handle(self.app().db.conn(), handle)
            .await
            .expect("query")
            .expect("user exists");
        self.app().keys.mint(user.id, None).expect("mint")
    }

    /// POSTs a GraphQL request; returns status and JSON body.
    pub async fn post(&self, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}/graphql", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let json = response.json::<Value>().await.expect("JSON body");
        (status, json)
    }

    /// Runs `query` with `variables` as `token`'s user; returns the body (asserting 200).
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let (status, body) = self.post(&json!({ "query": query, "variables": variables }), token).await;
        assert_eq!(status, 200, "unexpected status, body: {body}");
        body
    }

    /// Like [`TestServer::gql`] but asserts there are no errors and returns `data`.
    pub async fn data(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let body = self.gql(query, variables, token).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The value of `bff_db_statements_total` from `/metrics`.
    pub async fn statements(&self) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix("bff_db_statements_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .expect("statement counter present")
    }

    /// The value of the metric line starting with `series` (name and labels, e.g.
    /// `bff_live_polls_waiting` or `bff_live_connections{transport="ws"}`); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// Waits (bounded: 10 s, then panics) until `series` satisfies `ok`; returns its value.
    /// For a condition the server reaches asynchronously (a subscription joined, a poll
    /// waiting, a socket dropped), instead of sleeping and hoping.
    pub async fn wait_for_metric(&self, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.metric(series).await;
            if ok(value) {
                return value;
            }
            assert!(tokio::time::Instant::now() < deadline, "{series} never got there (last {value})");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.base)).send().await.expect("metrics").text().await.expect("text")
    }
}

/// The first error's `extensions.code`.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>")
}

/// The checked-in screen query `name` from `playground/queries/`.
pub fn screen(name: &str) -> String {
    let path = format!("{}/playground/queries/{name}.graphql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("screen query")
}
