//! The `mobile-bff` binary: migrate, seed, token, schema and configuration errors.

use std::process::Command;

use crate::common::TestDatabase;

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mobile-bff"));
    command.env_remove("BFF_TEST_DATABASE_URL").env("BFF_LOG", "warn");
    command
}

#[tokio::test]
async fn migrate_seed_and_token_work_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    let run = |args: &[&str]| {
        let output = bin()
            .args(args)
            .env("BFF_DATA_DIR", dir.path())
            .env("BFF_DATABASE_URL", &database.url)
            .output()
            .expect("run binary");
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8")
    };
    run(&["migrate"]);
    run(&["seed", "--users", "25"]);
    let out = run(&["token", "--user", "alice"]);
    let token = out.lines().last().expect("a line");
    assert_eq!(token.split('.').count(), 3, "a JWT alone on the last line: {out}");

    // The token verifies against the key the command generated in the data directory.
    let mut settings = crate::common::settings(dir.path(), &database.url);
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    let app = mobile_bff::app::App::init(settings).await.expect("app");
    let user_id = app.keys.verify(token).expect("valid token");
    let alice = mobile_bff::social::store::users::by_handle(app.db.conn(), "alice").await.expect("q").expect("alice");
    assert_eq!(user_id, alice.id);
    // Many at once, for load tests: `<user id> <token>` per line.
    let many = run(&["tokens", "--first", "20"]);
    let lines: Vec<(i64, &str)> = many
        .lines()
        .map(|l| l.split_once(' ').map(|(id, t)| (id.parse().expect("id"), t)).expect("two fields"))
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|(id, t)| app.keys.verify(t).expect("valid") == *id));
    // Seeding again is a no-op, not a duplicate dataset.
    run(&["seed", "--users", "25"]);
    let count =
        mobile_bff::social::store::users::by_ids(app.db.conn(), &(1..=100).collect::<Vec<_>>()).await.expect("q").len();
    assert_eq!(count, 25);
    database.destroy().await;
}

#[test]
fn schema_command_prints_the_sdl() {
    let output = bin().arg("schema").output().expect("run");
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).expect("utf-8"), mobile_bff::schema::sdl());
}

#[test]
fn unknown_configuration_keys_are_rejected_and_secrets_not_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = bin()
        .arg("migrate")
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_LISTN", "127.0.0.1:1")
        .env("BFF_AUTH__SIGNING_KEY_PEM", "super-secret-value")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listn"), "{stderr}");
    assert!(!stderr.contains("super-secret-value"), "{stderr}");

    let output = bin()
        .args(["token", "--user", "alice"])
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_DATABASE_URL", format!("sqlite://{}/x.db?mode=rwc", dir.path().display()))
        .env("BFF_AUTH__SIGNING_KEY_PEM", "super-secret-value")
        .output()
        .expect("run");
    assert!(!output.status.success(), "an invalid key is refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("super-secret-value"), "{stderr}");
}

#[tokio::test]
async fn documents_import_command_reads_a_codegen_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    let manifest = dir.path().join("persisted-documents.json");
    let query = "query Ping { __typename }";
    let id = mobile_bff::kernel::documents::sha256_hex(query);
    std::fs::write(&manifest, serde_json::json!({ &id: query }).to_string()).expect("write");
    let output = bin()
        .args(["documents", "import"])
        .arg(&manifest)
        .args(["--app-version", "2.0.0"])
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_DATABASE_URL", &database.url)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported 1 operations"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"x\": \"query {\"}").expect("write");
    let output = bin()
        .args(["documents", "import"])
        .arg(&bad)
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_DATABASE_URL", &database.url)
        .output()
        .expect("run");
    assert!(!output.status.success(), "a manifest whose documents do not parse is refused");
    database.destroy().await;
}

/// A `mobile-bff serve` child process, killed on drop; its stderr goes to `log`.
struct Served {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Runs `mobile-bff serve` as `configure` sets it up, on `port`; waits until `/readyz`
/// answers (bounded), or returns its stderr when it exits first.
async fn serve(dir: &std::path::Path, port: u16, configure: impl FnOnce(&mut Command)) -> Result<Served, String> {
    let log = dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
    let mut command = bin();
    command.arg("serve").stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&log).expect("log"));
    configure(&mut command);
    let child = command.spawn().expect("spawn mobile-bff");
    let mut served = Served { child, base: format!("http://127.0.0.1:{port}"), log };
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(_)) = served.child.try_wait() {
            return Err(served.log());
        }
        if client.get(format!("{}/readyz", served.base)).send().await.is_ok_and(|r| r.status() == 200) {
            return Ok(served);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("mobile-bff did not become ready: {}", served.log());
}

async fn status(served: &Served, path: &str) -> u16 {
    reqwest::get(format!("{}{path}", served.base)).await.expect("request").status().as_u16()
}

fn config_file(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("bff.toml");
    let database = format!("sqlite://{}/file.db?mode=rwc", dir.display());
    let toml = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {dir:?}\ndatabase_url = {database:?}\n\n[playground]\nenabled = false\n",
        dir = dir.display().to_string()
    );
    std::fs::write(&path, toml).expect("write config");
    path
}

#[tokio::test]
async fn every_documented_way_of_configuring_the_server_works() {
    let dir = tempfile::tempdir().expect("tempdir");

    // `--config file.toml`: the file's listen address and playground switch apply.
    let port = free_port();
    let file = config_file(dir.path(), port);
    let served = serve(dir.path(), port, |c| {
        c.arg("--config").arg(&file);
    })
    .await
    .expect("serves with --config");
    assert_eq!(status(&served, "/playground").await, 404, "the file turned the playground off");
    drop(served);

    // `BFF_CONFIG=file.toml`, the documented equivalent.
    let port = free_port();
    let file = config_file(dir.path(), port);
    let served = serve(dir.path(), port, |c| {
        c.env("BFF_CONFIG", &file);
    })
    .await
    .expect("serves with BFF_CONFIG");
    assert_eq!(status(&served, "/playground").await, 404);
    drop(served);

    // Nested `BFF_A__B` variables override the file.
    let port = free_port();
    let file = config_file(dir.path(), port);
    let served = serve(dir.path(), port, |c| {
        c.env("BFF_CONFIG", &file).env("BFF_PLAYGROUND__ENABLED", "true");
    })
    .await
    .expect("serves with BFF_CONFIG and a nested variable");
    assert_eq!(status(&served, "/playground").await, 200, "BFF_PLAYGROUND__ENABLED overrides the file");
    drop(served);

    // Environment only: `BFF_LISTEN`, `BFF_DATABASE_URL`, a nested limit.
    let port = free_port();
    let served = serve(dir.path(), port, |c| {
        c.env("BFF_LISTEN", format!("127.0.0.1:{port}"))
            .env("BFF_DATA_DIR", dir.path())
            .env("BFF_DATABASE_URL", format!("sqlite://{}/env.db?mode=rwc", dir.path().display()))
            .env("BFF_LIMITS__MAX_DEPTH", "2");
    })
    .await
    .expect("serves from the environment");
    let deep = reqwest::Client::new()
        .post(format!("{}/graphql", served.base))
        .json(&serde_json::json!({ "query": "{ viewer { followers(first: 1) { edges { node { handle } } } } }" }))
        .send()
        .await
        .expect("request")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(deep["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP", "{deep}");
    drop(served);

    // A missing file named by BFF_CONFIG is an error, not a silent default.
    let missing = serve(dir.path(), free_port(), |c| {
        c.env("BFF_CONFIG", dir.path().join("nope.toml"));
    })
    .await
    .err()
    .expect("refuses to start");
    assert!(missing.contains("nope.toml"), "{missing}");
}

#[tokio::test]
async fn the_production_profile_closes_the_playground_introspection_and_open_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = |c: &mut Command, port: u16| {
        c.env("BFF_LISTEN", format!("127.0.0.1:{port}"))
            .env("BFF_DATA_DIR", dir.path())
            .env("BFF_DATABASE_URL", format!("sqlite://{}/p.db?mode=rwc", dir.path().display()))
            .env("BFF_PROFILE", "production");
    };
    let ask = async |served: &Served, query: &str| {
        reqwest::Client::new()
            .post(format!("{}/graphql", served.base))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("request")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    let port = free_port();
    let served = serve(dir.path(), port, |c| env(c, port)).await.expect("serves");
    assert_eq!(status(&served, "/playground").await, 404);
    let refused = ask(&served, "{ __typename }").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_REQUIRED", "{refused}");
    drop(served);

    // Explicit settings win; introspection stays closed unless it is opened too.
    let port = free_port();
    let served = serve(dir.path(), port, |c| {
        env(c, port);
        c.env("BFF_PERSISTED__MODE", "open").env("BFF_PLAYGROUND__ENABLED", "true");
    })
    .await
    .expect("serves");
    assert_eq!(status(&served, "/playground").await, 200);
    assert_eq!(ask(&served, "{ __typename }").await["data"]["__typename"], "Query");
    let introspection = ask(&served, "{ __schema { queryType { name } } }").await;
    assert!(introspection["data"]["__schema"].is_null(), "introspection answers nothing: {introspection}");
    drop(served);
}

#[tokio::test]
async fn a_production_looking_deployment_on_the_development_defaults_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = |c: &mut Command, port: u16| {
        c.env("BFF_LISTEN", format!("0.0.0.0:{port}"))
            .env("BFF_DATA_DIR", dir.path())
            .env("BFF_DATABASE_URL", format!("sqlite://{}/w.db?mode=rwc", dir.path().display()));
    };
    let port = free_port();
    let served = serve(dir.path(), port, |c| env(c, port)).await.expect("serves");
    let log = served.log();
    assert!(log.contains("looks like a production deployment") && log.contains("0.0.0.0"), "{log}");
    drop(served);
    let port = free_port();
    let served = serve(dir.path(), port, |c| {
        env(c, port);
        c.env("BFF_PROFILE", "production");
    })
    .await
    .expect("serves");
    assert!(!served.log().contains("looks like a production deployment"), "{}", served.log());
}
