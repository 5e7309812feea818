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
