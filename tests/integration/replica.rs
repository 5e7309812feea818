//! The binary as operators run it: `mobile-bff <command>` on a database, and `mobile-bff
//! serve` replicas sharing one database (for changes that must reach every replica).

use std::time::{Duration, Instant};

/// `mobile-bff` with `args` on `database_url`.
pub fn cli(database_url: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"))
        .args(args)
        .env_remove("BFF_TEST_DATABASE_URL")
        .env("BFF_DATA_DIR", dir)
        .env("BFF_DATABASE_URL", database_url)
        .env("BFF_LOG", "warn")
        .output()
        .expect("run mobile-bff")
}

pub fn cli_ok(database_url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let output = cli(database_url, dir, args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `mobile-bff serve` process.
pub struct Replica {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Replica {
    /// A replica on `database_url` with its data in `dir` (so the same signing key), the
    /// version policy and flags refreshed every second.
    pub async fn start(database_url: &str, dir: &std::path::Path) -> Self {
        Self::start_with(database_url, dir, &[]).await
    }

    /// Like [`Replica::start`], with more `BFF_*` settings.
    pub async fn start_with(database_url: &str, dir: &std::path::Path, settings: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"))
            .arg("serve")
            .env_remove("BFF_TEST_DATABASE_URL")
            .env("BFF_LISTEN", format!("127.0.0.1:{port}"))
            .env("BFF_DATA_DIR", dir)
            .env("BFF_DATABASE_URL", database_url)
            .env("BFF_RATE_LIMITS__ENABLED", "false")
            .env("BFF_VERSIONS__REFRESH_SECONDS", "1")
            .envs(settings.iter().copied())
            .env("BFF_LOG", "warn")
            .stderr(std::fs::File::create(dir.join(format!("replica-{port}.log"))).expect("log file"))
            .spawn()
            .expect("spawn mobile-bff");
        let mut replica = Self { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if client.get(format!("{}/readyz", replica.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return replica;
            }
            if let Ok(Some(status)) = replica.child.try_wait() {
                let stderr = std::fs::read_to_string(dir.join(format!("replica-{port}.log"))).unwrap_or_default();
                panic!("replica exited with {status}: {stderr}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica did not become ready");
    }
}

impl Replica {
    /// Kills the process (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
