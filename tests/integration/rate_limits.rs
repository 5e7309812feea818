//! Rate limits: 429 with Retry-After and `RATE_LIMITED`, per IP, per account, per device,
//! and one shared budget across replicas through Redis.

use mobile_bff::kernel::infra::rate_limit::{Budget, RateLimitSettings};
use serde_json::{Value, json};

use crate::common::{TestServer, code};

fn limits(login_ip: u32, login_account: u32) -> RateLimitSettings {
    RateLimitSettings {
        enabled: true,
        login_ip: Budget { per_minute: 6, burst: login_ip },
        login_account: Budget { per_minute: 6, burst: login_account },
        ..Default::default()
    }
}

async fn try_login(server: &TestServer, email: &str, from_ip: &str) -> (u16, Option<String>, Value) {
    let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    let input = json!({ "email": email, "password": "not the password", "device": {
        "clientDeviceId": "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e", "platform": "ANDROID" } });
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-forwarded-for", from_ip)
        .json(&json!({ "query": query, "variables": { "input": input } }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn login_brute_force_is_slowed_per_ip_and_per_account() {
    let server = TestServer::start_with(0, |s| {
        s.rate_limits = limits(3, 100);
        s.trust_forwarded_for = true;
    })
    .await;
    for _ in 0..3 {
        let (status, _, body) = try_login(&server, "victim@example.com", "203.0.113.7").await;
        assert_eq!((status, code(&body)), (200, "UNAUTHENTICATED"));
    }
    let (status, retry, body) = try_login(&server, "victim@example.com", "203.0.113.7").await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"));
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], retry);
    // Another address still has its budget.
    let (status, _, _) = try_login(&server, "victim@example.com", "198.51.100.9").await;
    assert_eq!(status, 200);
    server.stop().await;

    // Per account: many addresses, one account.
    let server = TestServer::start_with(0, |s| {
        s.rate_limits = limits(100, 2);
        s.trust_forwarded_for = true;
    })
    .await;
    for i in 0..2 {
        let (status, _, _) = try_login(&server, "victim@example.com", &format!("203.0.113.{i}")).await;
        assert_eq!(status, 200);
    }
    let (status, _, body) = try_login(&server, "Victim@Example.com", "203.0.113.99").await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "same account, case-insensitive");
    let (status, _, _) = try_login(&server, "someone-else@example.com", "203.0.113.99").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn queries_are_limited_per_device_of_the_token() {
    let server = TestServer::start_with(0, |s| {
        s.rate_limits = RateLimitSettings {
            enabled: true,
            query_client: Budget { per_minute: 60, burst: 5 },
            ..Default::default()
        };
    })
    .await;
    let token = register_on(&server, "kim", PHONE).await;
    let ask = |device: &'static str| {
        server
            .client
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&token)
            .header("x-device-id", device)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(ask(PHONE).await.expect("ok").status(), 200);
    }
    assert_eq!(ask(PHONE).await.expect("ok").status(), 429);
    assert_eq!(ask("22222222-2222-4222-8222-222222222222").await.expect("ok").status(), 429, "a header is no escape");
    server.stop().await;
}

/// A `mobile-bff serve` child process, killed on drop.
struct Replica {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(redis_url: &str) -> Replica {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mobile-bff"))
        .arg("serve")
        .env_remove("BFF_TEST_DATABASE_URL")
        .env("BFF_LISTEN", format!("127.0.0.1:{port}"))
        .env("BFF_DATA_DIR", dir.path())
        .env("BFF_DATABASE_URL", format!("sqlite://{}/r.db?mode=rwc", dir.path().display()))
        .env("BFF_REDIS_URL", redis_url)
        .env("BFF_TRUST_FORWARDED_FOR", "true")
        // Refills of one token a minute: a slow machine (each login hashes a password) cannot
        // refill a bucket while the test runs. The account budget stays out of the way.
        .env("BFF_RATE_LIMITS__LOGIN_IP__PER_MINUTE", "1")
        .env("BFF_RATE_LIMITS__LOGIN_IP__BURST", "4")
        .env("BFF_RATE_LIMITS__LOGIN_ACCOUNT__PER_MINUTE", "1000")
        .env("BFF_RATE_LIMITS__LOGIN_ACCOUNT__BURST", "1000")
        .env("BFF_RATE_LIMITS__QUERY_IP__PER_MINUTE", "1")
        .env("BFF_RATE_LIMITS__QUERY_IP__BURST", "3")
        .env("BFF_LOG", "warn")
        .spawn()
        .expect("spawn mobile-bff");
    let replica = Replica { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{}/readyz", replica.base)).send().await.is_ok_and(|r| r.status() == 200) {
            return replica;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("replica did not become ready");
}

/// Needs Redis: `.ci/run` runs it with `BFF_TEST_REDIS_URL`. Two server processes, one budget.
#[tokio::test]
#[ignore = "needs Redis: run with BFF_TEST_REDIS_URL=redis://127.0.0.1:6379 -- --ignored"]
async fn two_replica_processes_share_one_budget_through_redis() {
    let url = std::env::var("BFF_TEST_REDIS_URL").expect("BFF_TEST_REDIS_URL must be set for this test");
    let ip = format!("192.0.2.{}", (uuid::Uuid::new_v4().as_bytes()[0] % 250) + 1);
    let (a, b) = (replica(&url).await, replica(&url).await);
    let client = reqwest::Client::new();
    let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    // A fresh account each run: Redis outlives the test.
    let email = format!("shared-{}@example.com", uuid::Uuid::new_v4().simple());
    let input = json!({ "email": email, "password": "not the password", "device": {
        "clientDeviceId": "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e", "platform": "ANDROID" } });
    let mut statuses = Vec::new();
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let response = client
            .post(format!("{base}/graphql"))
            .header("x-forwarded-for", &ip)
            .json(&json!({ "query": query, "variables": { "input": input } }))
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429], "4 in total across both processes");

    // Queries spend several keys at once (IP, client) in one script: a random device id per
    // request, alternating replicas, still spends the one IP budget.
    let ip =
        format!("198.18.{}.{}", uuid::Uuid::new_v4().as_bytes()[0], (uuid::Uuid::new_v4().as_bytes()[1] % 250) + 1);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let response = client
            .post(format!("{base}/graphql"))
            .header("x-forwarded-for", &ip)
            .header("x-device-id", random_device())
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429], "3 in total across both processes");
}

const PHONE: &str = "0f8e3a52-9a55-4c1e-9d8e-2f1a3c4b5d6e";

/// Registers `handle` on `device`; returns its access token (bound to a device session).
async fn register_on(server: &TestServer, handle: &str, device: &str) -> String {
    let query = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = json!({ "email": format!("{handle}@example.com"), "password": "correct horse battery",
        "handle": handle, "displayName": handle, "device": { "clientDeviceId": device, "platform": "IOS" } });
    let body = server.data(query, json!({ "input": input }), None).await;
    body["register"]["accessToken"].as_str().expect("access token").to_owned()
}

/// A query over `POST /graphql` with `X-Device-Id: device`, from `ip`; the HTTP status.
async fn query_as(server: &TestServer, token: Option<&str>, device: &str, ip: &str) -> u16 {
    let mut request = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-device-id", device)
        .header("x-forwarded-for", ip)
        .json(&json!({ "query": "{ __typename }" }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").status().as_u16()
}

fn random_device() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn budgets(tweak: impl FnOnce(&mut RateLimitSettings)) -> impl FnOnce(&mut mobile_bff::config::Settings) {
    move |s| {
        let mut limits = RateLimitSettings { enabled: true, ..Default::default() };
        tweak(&mut limits);
        s.rate_limits = limits;
        s.trust_forwarded_for = true;
    }
}

#[tokio::test]
async fn a_random_device_id_per_request_does_not_escape_the_user_budget() {
    let server = TestServer::start_with(0, budgets(|l| l.query_client = Budget { per_minute: 6, burst: 5 })).await;
    let token = register_on(&server, "dana", PHONE).await;
    for _ in 0..5 {
        assert_eq!(query_as(&server, Some(&token), &random_device(), "203.0.113.1").await, 200);
    }
    assert_eq!(query_as(&server, Some(&token), &random_device(), "203.0.113.1").await, 429, "user budget spent");
    assert_eq!(query_as(&server, Some(&token), PHONE, "203.0.113.2").await, 429, "its own device too");
    // Another user behind the same address has a budget of its own.
    let other = register_on(&server, "erin", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f").await;
    assert_eq!(query_as(&server, Some(&other), &random_device(), "203.0.113.1").await, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_anonymous_client_with_random_device_ids_still_spends_its_ip_budget() {
    let server = TestServer::start_with(0, budgets(|l| l.query_client = Budget { per_minute: 6, burst: 5 })).await;
    for _ in 0..5 {
        assert_eq!(query_as(&server, None, &random_device(), "203.0.113.7").await, 200);
    }
    assert_eq!(query_as(&server, None, &random_device(), "203.0.113.7").await, 429);
    assert_eq!(query_as(&server, None, &random_device(), "198.51.100.9").await, 200, "per address");

    // The IP budget holds whoever is signed in: many accounts from one address.
    let server2 = TestServer::start_with(0, budgets(|l| l.query_ip = Budget { per_minute: 6, burst: 4 })).await;
    let tokens = [
        register_on(&server2, "fay", PHONE).await,
        register_on(&server2, "gus", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f").await,
    ];
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(query_as(&server2, Some(&tokens[i % 2]), &random_device(), "203.0.113.8").await);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429]);
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn random_device_ids_do_not_escape_the_refresh_budget_of_an_address() {
    let server = TestServer::start_with(0, budgets(|l| l.mutation_ip = Budget { per_minute: 6, burst: 4 })).await;
    let query = "mutation($input: RefreshInput!) { refreshTokens(input: $input) { accessToken } }";
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = server
            .client
            .post(format!("{}/graphql", server.base))
            .header("x-device-id", random_device())
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "query": query, "variables": { "input": { "refreshToken": "guess", "clientDeviceId": PHONE } } }))
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429]);
    server.stop().await;
}

/// `{ __typename }` over SSE with `X-Device-Id: device`: whether it was refused as `RATE_LIMITED`.
async fn sse_refused(server: &TestServer, token: &str, device: &str) -> bool {
    let response = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("x-device-id", device)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sse request");
    assert_eq!(response.status(), 200);
    // The stream completes after the one result.
    let text = tokio::time::timeout(std::time::Duration::from_secs(20), response.text())
        .await
        .expect("the stream completes")
        .expect("body");
    assert!(text.contains("event: complete"), "{text}");
    text.contains("RATE_LIMITED")
}

/// `{ __typename }` over a new WebSocket opened with `X-Device-Id: device`: whether it was
/// refused as `RATE_LIMITED`.
async fn ws_refused(server: &TestServer, token: &str, device: &str) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    request.headers_mut().insert("x-device-id", device.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    async fn next(ws: &mut (impl StreamExt<Item = tokio_tungstenite::tungstenite::Result<Message>> + Unpin)) -> Value {
        loop {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("in time");
            if let Some(Ok(Message::Text(text))) = frame {
                return serde_json::from_str::<Value>(&text).expect("json");
            }
        }
    }
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await.expect("send");
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } });
    ws.send(Message::Text(subscribe.to_string().into())).await.expect("send");
    let answer = next(&mut ws).await;
    ws.close(None).await.ok();
    answer.to_string().contains("RATE_LIMITED")
}

#[tokio::test]
async fn the_live_transports_spend_the_same_budgets() {
    let server = TestServer::start_with(0, budgets(|l| l.query_client = Budget { per_minute: 6, burst: 3 })).await;
    let token = register_on(&server, "hal", PHONE).await;
    let mut sse = Vec::new();
    for _ in 0..4 {
        sse.push(sse_refused(&server, &token, &random_device()).await);
    }
    assert_eq!(sse, vec![false, false, false, true], "SSE: a random device id per request is the same user");
    server.stop().await;

    let server = TestServer::start_with(0, budgets(|l| l.query_client = Budget { per_minute: 6, burst: 3 })).await;
    let token = register_on(&server, "ivy", PHONE).await;
    let mut ws = Vec::new();
    for _ in 0..4 {
        ws.push(ws_refused(&server, &token, &random_device()).await);
    }
    assert_eq!(ws, vec![false, false, false, true], "WebSocket: a random device id per socket is the same user");
    server.stop().await;
}
