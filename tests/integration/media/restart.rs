//! kill -9 of the server in the middle of a chunk: the committed offset survives, the resume
//! re-sends only the chunk that was in flight, and the processing job runs after the restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::TestDatabase;

/// A `mobile-bff serve` child process.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    async fn start(database_url: &str, dir: &std::path::Path, seed: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"));
        command.arg("serve");
        if seed {
            command.args(["--seed", "--users", "3"]);
        }
        let child = command
            .env_remove("BFF_TEST_DATABASE_URL")
            .env("BFF_LISTEN", format!("127.0.0.1:{port}"))
            .env("BFF_DATA_DIR", dir)
            .env("BFF_DATABASE_URL", database_url)
            .env("BFF_RATE_LIMITS__ENABLED", "false")
            .env("BFF_JOBS__LEASE_SECONDS", "2")
            .env("BFF_LOG", "warn")
            .spawn()
            .expect("spawn mobile-bff");
        let server = Self { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client.get(format!("{}/readyz", server.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mobile-bff did not become ready");
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

#[tokio::test]
async fn a_server_killed_mid_chunk_loses_only_that_chunk_and_processes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    let mut server = Server::start(&database.url, dir.path(), true).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"))
        .args(["token", "--user", "alice"])
        .env_remove("BFF_TEST_DATABASE_URL")
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_DATABASE_URL", &database.url)
        .env("BFF_LOG", "warn")
        .output()
        .expect("token");
    let token = String::from_utf8(output.stdout).expect("utf-8").lines().last().expect("token line").trim().to_owned();
    let client = reqwest::Client::new();
    let tus =
        |method: Method, url: String| client.request(method, url).header("tus-resumable", "1.0.0").bearer_auth(&token);

    let image = super::fixtures::rotated_jpeg_with_gps();
    let bytes = [image.clone(), vec![0u8; 200_000]].concat(); // trailing bytes after the JPEG's end are ignored by decoders
    let created = tus(Method::POST, format!("{}/uploads/", server.base))
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", super::metadata(&[("filename", "a.jpg"), ("filetype", "image/jpeg")]))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let path = created.headers()["location"].to_str().expect("location").to_owned();
    let first = 50_000;
    let patched = tus(Method::PATCH, format!("{}{path}", server.base))
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[..first].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);

    // The second chunk is half sent when the server dies.
    let mut socket = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.expect("connect");
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {first}\r\nContent-Length: {}\r\n\r\n",
        bytes.len() - first
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&bytes[first..first + 40_000]).await.expect("half");
    socket.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();
    drop(socket);

    let server = Server::start(&database.url, dir.path(), false).await;
    let url = format!("{}{path}", server.base);
    let head = tus(Method::HEAD, url.clone()).send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    let offset: usize = head.headers()["upload-offset"].to_str().expect("offset").parse().expect("number");
    assert_eq!(offset, first, "the committed offset survived; the chunk in flight was not committed");
    let resumed = tus(Method::PATCH, url)
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[offset..].to_vec())
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), StatusCode::NO_CONTENT);
    let original = dir.path().join("media/objects/originals").join(super::upload_id(&path));
    assert_eq!(std::fs::read(original).expect("original"), bytes, "whole and in order");

    // The processing job is queued durably and runs on this (restarted) process.
    let query = "query($id: String!) { upload(id: $id) { status width height } }";
    let id = super::upload_id(&path);
    let mut last = json!(null);
    for _ in 0..600 {
        let body: serde_json::Value = client
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&token)
            .json(&json!({ "query": query, "variables": { "id": id } }))
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        last = body["data"]["upload"].clone();
        if last["status"] == "READY" || last["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, json!({ "status": "READY", "width": 200, "height": 400 }));
    drop(server);
    database.destroy().await;
}
