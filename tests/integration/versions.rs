//! App versions, maintenance and the bootstrap: a device matrix of `X-Platform` ×
//! `X-App-Version` × `X-App-Build` (garbage included) over HTTP, WebSocket and SSE — 426
//! exactly where expected, the bootstrap always answered — `versions set` and `maintenance`
//! through the binary taking effect on running servers (two processes on one database),
//! and the bootstrap's ETag / 304 as a persisted GET.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mobile_bff::{
    config::Settings,
    flags::settings::{PlatformVersions, VersionsSettings},
};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest},
};

use crate::common::{TestDatabase, TestServer, code};
use crate::replica::{Replica, cli, cli_ok};

const BOOTSTRAP: &str = "query Bootstrap { bootstrap { update { status platform currentVersion minimumVersion \
    recommendedVersion storeUrl } maintenance { active message until } api { graphql websocket sse media } \
    pins { sha256 } realtime { pingIntervalSeconds backoffMaxMs } limits { maxPageSize maxBodyBytes } serverTime } }";
const IOS_STORE: &str = "https://apps.apple.com/app/id000000001";

fn policy(settings: &mut Settings) {
    settings.versions = VersionsSettings {
        ios: PlatformVersions {
            minimum: Some("2.0.0 (100)".into()),
            recommended: Some("2.3".into()),
            store_url: Some(IOS_STORE.into()),
        },
        android: PlatformVersions { minimum: Some("3.1".into()), recommended: None, store_url: None },
        web: PlatformVersions::default(),
        refresh_seconds: 1,
        ..VersionsSettings::default()
    };
    settings.realtime.ws_ping_interval_seconds = 1;
    settings.realtime.ws_idle_timeout_seconds = 30;
}

/// One simulated device: its headers (raw bytes, so garbage can be sent) and the status the
/// policy above must give it.
struct Device {
    platform: &'static [u8],
    version: Vec<u8>,
    build: &'static [u8],
    expected: &'static str,
}

fn devices() -> Vec<Device> {
    let d = |platform: &'static [u8], version: &[u8], build: &'static [u8], expected| Device {
        platform,
        version: version.to_vec(),
        build,
        expected,
    };
    let long = "9".repeat(5000);
    vec![
        d(b"ios", b"1.9.9", b"", "FORCE"),
        d(b"iOS", b"1.0", b"", "FORCE"),
        d(b"ios", b"2.0.0-beta.3", b"", "FORCE"),
        d(b"ios", b"2.0.0", b"99", "FORCE"),
        d(b"ios", b"2.0.0 (99)", b"", "FORCE"),
        d(b"ios", b"2.0.0 (99)", b"100", "SOFT"), // X-App-Build wins over the version's build
        d(b"ios", b"2.0.0", b"", "SOFT"),         // same version, no build: not refused
        d(b"ios", b"2.0.0", b"100", "SOFT"),
        d(b"ios", b"2.0.0+150", b"", "SOFT"),
        d(b"ios", b"v2.2.9", b"7", "SOFT"),
        d(b"ios", b"2.3", b"", "NONE"),
        d(b"ios", b"10.0.0 (1)", b"", "NONE"),
        d(b"android", b"3.0.9", b"", "FORCE"),
        d(b"android", b"3", b"", "FORCE"),
        d(b"android", b"3.1.0", b"", "NONE"),
        d(b"ANDROID", b"4.0 (12345)", b"12345", "NONE"),
        d(b"web", b"0.0.1", b"", "NONE"),
        d(b"", b"0.0.1", b"", "NONE"),
        d(b"symbian", b"0.1", b"", "NONE"),
        // Garbage is treated as absent: the app cannot be judged, and is served.
        d(b"ios", b"", b"", "NONE"),
        d(b"ios", b"banana", b"", "NONE"),
        d(b"ios", b"1.2.3.4", b"", "NONE"),
        d(b"ios", b"1..2", b"", "NONE"),
        d(b"ios", b"1.2.x", b"", "NONE"),
        d(b"ios", b"1.0 (abc)", b"", "NONE"),
        d(b"ios", b"1.0 (", b"", "NONE"),
        d(b"ios", b"((((((", b"", "NONE"),
        d(b"ios", b"-1.0", b"", "NONE"),
        d(b"ios", b"1.0.0 (99999999999999999999999)", b"", "NONE"),
        d(b"ios", b"99999999999.0.0", b"", "NONE"),
        d(b"ios", "١.٢.٣".as_bytes(), b"", "NONE"),
        d(b"ios", b"\xff\xfe1.0", b"", "NONE"),
        d(b"ios", long.as_bytes(), b"", "NONE"),
        d(b"ios", b"1.0", b"../../etc/passwd", "FORCE"),
        d(b"ios", b"2.0.0", b"99999999999999999999999", "SOFT"),
        d(b"\xff\x00garbage", b"1.0", b"x", "NONE"),
    ]
}

fn headers_of(device: &Device) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut put = |name: &'static str, value: &[u8]| {
        if !value.is_empty()
            && let Ok(value) = reqwest::header::HeaderValue::from_bytes(value)
        {
            headers.insert(name, value);
        }
    };
    put("x-platform", device.platform);
    put("x-app-version", &device.version);
    put("x-app-build", device.build);
    put("user-agent", b"MyApp/1.0 CFNetwork/1494.0.7 Darwin/23.4.0 \xe2\x98\x83");
    put("accept-language", b"x-\xff;q=banana");
    headers
}

fn show(device: &Device) -> String {
    format!(
        "platform {:?} version {:?} build {:?}",
        String::from_utf8_lossy(device.platform),
        String::from_utf8_lossy(&device.version[..device.version.len().min(40)]),
        String::from_utf8_lossy(device.build)
    )
}

async fn post_as(server: &TestServer, device: &Device, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .headers(headers_of(device))
        .json(body)
        .send()
        .await
        .expect("request");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.expect("JSON body"))
}

fn min_header(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers.get("x-min-app-version").and_then(|v| v.to_str().ok())
}

fn platform_minimum(platform: &[u8]) -> Option<&'static str> {
    match platform.to_ascii_lowercase().as_slice() {
        b"ios" => Some("2.0.0 (100)"),
        b"android" => Some("3.1.0"),
        _ => None,
    }
}

#[tokio::test]
async fn device_matrix_over_http_426_exactly_below_the_minimum_and_the_bootstrap_always_answers() {
    let server = TestServer::start_with(3, policy).await;
    let alice = server.token("alice").await;
    for device in devices() {
        let who = show(&device);
        let forced = device.expected == "FORCE";
        // Any other operation: 426 below the minimum, served otherwise.
        let (status, headers, body) = post_as(&server, &device, &json!({ "query": "{ __typename }" })).await;
        assert_eq!(min_header(&headers), platform_minimum(device.platform), "{who}");
        if forced {
            assert_eq!((status, code(&body)), (426, "UPGRADE_REQUIRED"), "{who}: {body}");
            let extensions = &body["errors"][0]["extensions"];
            assert_eq!(extensions["minVersion"].as_str(), platform_minimum(device.platform), "{who}");
            let store = if device.platform.eq_ignore_ascii_case(b"ios") { json!(IOS_STORE) } else { Value::Null };
            assert_eq!(extensions["storeUrl"], store, "{who}");
            assert!(body.get("data").is_none(), "{who}: {body}");
        } else {
            assert_eq!(status, 200, "{who}: {body}");
            assert_eq!(body["data"]["__typename"], "Query", "{who}");
        }
        // The bootstrap: always 200, with the status the policy gives.
        let (status, headers, body) = post_as(&server, &device, &json!({ "query": BOOTSTRAP })).await;
        assert_eq!(status, 200, "{who}: {body}");
        assert!(body.get("errors").is_none(), "{who}: {body}");
        assert_eq!(body["data"]["bootstrap"]["update"]["status"], device.expected, "{who}: {body}");
        assert_eq!(min_header(&headers), platform_minimum(device.platform), "{who}");
        // GET refuses the same way.
        let response = server
            .client
            .get(format!("{}/graphql", server.base))
            .query(&[("query", "{ __typename }")])
            .headers(headers_of(&device))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), if forced { 426 } else { 200 }, "{who}");
    }

    let old = &devices()[0];
    // Signed in: the bootstrap is richer, and still answers an old app.
    let (status, _, body) = post_as(&server, old, &json!({ "query": "{ bootstrap { viewer { handle } } }" })).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["bootstrap"]["viewer"], Value::Null, "signed out");
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .headers(headers_of(old))
        .bearer_auth(&alice)
        .json(&json!({ "query": "{ bootstrap { viewer { handle } update { status } } }" }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["bootstrap"]["viewer"]["handle"], "alice", "{body}");
    // Only an operation whose root fields are all `bootstrap` is exempt: not alongside other
    // fields, not in a batch with other operations, not through a fragment, not a mutation.
    for refused in [
        json!({ "query": "{ bootstrap { serverTime } viewer { id } }" }),
        json!({ "query": "{ ... on Query { bootstrap { serverTime } } }" }),
        json!([{ "query": "{ bootstrap { serverTime } }" }, { "query": "{ __typename }" }]),
        json!({ "query": "mutation { logout }" }),
    ] {
        let (status, _, body) = post_as(&server, old, &refused).await;
        assert_eq!((status, code(&body)), (426, "UPGRADE_REQUIRED"), "{refused}: {body}");
    }
    let (status, _, body) = post_as(&server, old, &json!([{ "query": "{ b: bootstrap { serverTime } }" }])).await;
    assert_eq!(status, 200, "a batch of bootstraps: {body}");
    // Errors from other layers (404, 401) carry the header too.
    let response =
        server.client.get(format!("{}/nope", server.base)).headers(headers_of(old)).send().await.expect("404");
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(min_header(response.headers()), Some("2.0.0 (100)"));
    server.stop().await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &TestServer, device: &Device, token: &str) -> Ws {
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    for (name, value) in headers_of(device).iter() {
        request.headers_mut().insert(name, value.clone());
    }
    let (mut ws, _) = connect_async(request).await.expect("upgrade");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await.expect("send");
    ws
}

/// The next JSON message, or `{"close": code}`.
async fn ws_next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("json"),
            Some(Ok(Message::Close(frame))) => {
                return json!({ "close": frame.map(|f| u16::from(f.code)).unwrap_or(1005) });
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return json!({ "close": 1006 }),
        }
    }
}

async fn sse_status(server: &TestServer, device: &Device, token: &str, query: &str) -> (u16, String) {
    let response = server
        .client
        .post(format!("{}/graphql/sse", server.base))
        .headers(headers_of(device))
        .header("accept", "text/event-stream")
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("SSE request");
    let status = response.status().as_u16();
    if status != 200 {
        return (status, response.text().await.unwrap_or_default());
    }
    // The first event is enough.
    let mut response = response;
    let mut text = String::new();
    while !text.contains("\n\n") {
        match tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("an event in time") {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    (status, text)
}

#[tokio::test]
async fn device_matrix_over_websocket_and_sse() {
    let server = TestServer::start_with(3, policy).await;
    let alice = server.token("alice").await;
    for device in devices().into_iter().filter(|d| d.version.len() < 100) {
        let who = show(&device);
        let forced = device.expected == "FORCE";
        let mut ws = ws_connect(&server, &device, &alice).await;
        let first = ws_next(&mut ws).await;
        if forced {
            assert_eq!(first, json!({ "close": 4426 }), "{who}");
        } else {
            assert_eq!(first["type"], "connection_ack", "{who}: {first}");
            ws.close(None).await.ok();
        }
        let (status, text) = sse_status(&server, &device, &alice, "{ __typename }").await;
        if forced {
            assert_eq!(status, 426, "{who}: {text}");
            let body: Value = serde_json::from_str(&text).expect("JSON error");
            assert_eq!(code(&body), "UPGRADE_REQUIRED");
        } else {
            assert_eq!(status, 200, "{who}: {text}");
        }
        // The bootstrap over SSE answers everyone.
        let (status, text) = sse_status(&server, &device, &alice, "{ bootstrap { update { status } } }").await;
        assert_eq!(status, 200, "{who}: {text}");
        assert!(text.contains(&format!("\"status\":\"{}\"", device.expected)), "{who}: {text}");
    }

    // A minimum raised while a socket is open closes it at its next check (pings every 1 s),
    // and an operation sent meanwhile is refused with the same error.
    let current = devices().into_iter().find(|d| d.expected == "NONE" && d.platform == b"android").expect("device");
    let mut ws = ws_connect(&server, &current, &alice).await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    let versions = &server.app().settings.versions;
    let change = mobile_bff::flags::admin::VersionChange { minimum: Some("9.0".into()), ..Default::default() };
    mobile_bff::flags::admin::set_versions(
        &server.app().db,
        versions,
        mobile_bff::kernel::request::Platform::Android,
        change,
    )
    .await
    .expect("set");
    server.app().versions.reload(server.app().db.conn()).await.expect("reload");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } });
    ws.send(Message::Text(subscribe.to_string().into())).await.expect("send");
    let mut seen = Vec::new();
    loop {
        let message = ws_next(&mut ws).await;
        if message.get("close").is_some() {
            assert_eq!(message, json!({ "close": 4426 }), "{seen:?}");
            break;
        }
        seen.push(message);
    }
    let refused = seen.iter().find(|m| m["type"] == "next" || m["type"] == "error").expect("the operation answered");
    assert!(refused.to_string().contains("UPGRADE_REQUIRED"), "{refused}");

    // Maintenance: 1013 for every app (closing open sockets too), 503 over SSE.
    let web = devices().into_iter().find(|d| d.platform == b"web").expect("device");
    let mut open = ws_connect(&server, &web, &alice).await;
    assert_eq!(ws_next(&mut open).await["type"], "connection_ack");
    let settings = &server.app().settings.versions;
    mobile_bff::flags::admin::set_maintenance(
        &server.app().db,
        settings,
        Some(("Upgrading the database".into(), None)),
    )
    .await
    .expect("maintenance on");
    server.app().versions.reload(server.app().db.conn()).await.expect("reload");
    assert_eq!(ws_next(&mut open).await, json!({ "close": 1013 }));
    let mut ws = ws_connect(&server, &web, &alice).await;
    assert_eq!(ws_next(&mut ws).await, json!({ "close": 1013 }));
    let (status, text) = sse_status(&server, &web, &alice, "{ __typename }").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("MAINTENANCE"), "{text}");
    server.stop().await;
}

/// Polls `base` as an iOS 1.5 app until `{ __typename }` answers `status` (10 s at most).
async fn eventually(client: &reqwest::Client, base: &str, status: u16) -> (reqwest::header::HeaderMap, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = client
            .post(format!("{base}/graphql"))
            .header("x-platform", "ios")
            .header("x-app-version", "1.5")
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("request");
        let (got, headers) = (response.status().as_u16(), response.headers().clone());
        let body: Value = response.json().await.expect("json");
        if got == status {
            return (headers, body);
        }
        assert!(Instant::now() < deadline, "{base} still answers {got} instead of {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn versions_set_and_maintenance_from_the_command_line_reach_two_running_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    cli_ok(&database.url, dir.path(), &["migrate"]);
    let ios_minimum = [("BFF_VERSIONS__IOS__MINIMUM", "1.0")];
    let replicas = [
        Replica::start_with(&database.url, dir.path(), &ios_minimum).await,
        Replica::start_with(&database.url, dir.path(), &ios_minimum).await,
    ];
    let client = reqwest::Client::new();
    for replica in &replicas {
        let (headers, _) = eventually(&client, &replica.base, 200).await;
        assert_eq!(min_header(&headers), Some("1.0.0"), "the settings' starting value");
    }

    // Garbage is refused by the command, and changes nothing.
    for bad in [
        vec!["versions", "set", "--platform", "ios", "--minimum", "two"],
        vec!["versions", "set", "--platform", "blackberry", "--minimum", "2.0"],
        vec!["versions", "set", "--platform", "ios", "--minimum", "3.0", "--recommended", "2.0"],
        vec!["versions", "set", "--platform", "ios", "--store-url", "not a url"],
        vec!["maintenance", "on", "--message", "x", "--until", "yesterday"],
    ] {
        let output = cli(&database.url, dir.path(), &bad);
        assert!(!output.status.success(), "{bad:?} must fail");
    }

    let out = cli_ok(
        &database.url,
        dir.path(),
        &["versions", "set", "--platform", "ios", "--minimum", "2.0.0", "--store-url", IOS_STORE],
    );
    assert!(out.contains("ios       2.0.0"), "{out}");
    for replica in &replicas {
        let (headers, body) = eventually(&client, &replica.base, 426).await;
        assert_eq!(min_header(&headers), Some("2.0.0"));
        assert_eq!(body["errors"][0]["extensions"]["storeUrl"], IOS_STORE);
    }
    // `--recommended` alone keeps the minimum; `none` clears it.
    cli_ok(&database.url, dir.path(), &["versions", "set", "--platform", "ios", "--recommended", "2.5"]);
    let listed = cli_ok(&database.url, dir.path(), &["versions", "list"]);
    assert!(listed.contains("ios       2.0.0          2.5.0"), "{listed}");
    cli_ok(&database.url, dir.path(), &["versions", "set", "--platform", "ios", "--minimum", "none"]);
    for replica in &replicas {
        let (headers, _) = eventually(&client, &replica.base, 200).await;
        assert_eq!(min_header(&headers), None);
    }

    cli_ok(
        &database.url,
        dir.path(),
        &["maintenance", "on", "--message", "Back at 6", "--until", "2099-01-01T06:00:00Z"],
    );
    for replica in &replicas {
        let (headers, body) = eventually(&client, &replica.base, 503).await;
        assert_eq!(code(&body), "MAINTENANCE");
        assert_eq!(body["errors"][0]["message"], "Back at 6");
        assert_eq!(body["errors"][0]["extensions"]["until"], "2099-01-01T06:00:00Z");
        let retry: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=3600).contains(&retry), "{retry}");
        // The bootstrap reports it.
        let response = client
            .post(format!("{}/graphql", replica.base))
            .json(&json!({ "query": "{ bootstrap { maintenance { active message until } } }" }))
            .send()
            .await
            .expect("bootstrap");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        let maintenance = &body["data"]["bootstrap"]["maintenance"];
        assert_eq!(maintenance["active"], true, "{body}");
        assert_eq!(maintenance["message"], "Back at 6");
    }
    cli_ok(&database.url, dir.path(), &["maintenance", "off"]);
    for replica in &replicas {
        eventually(&client, &replica.base, 200).await;
    }
    drop(replicas);
    database.destroy().await;
}

#[tokio::test]
async fn the_bootstrap_as_a_persisted_get_revalidates_with_304_until_the_policy_changes() {
    let server = TestServer::start_with(0, |s| {
        policy(s);
        s.public_base_url = "https://cdn.example.com".into();
        s.bootstrap.api_base_url = "https://api.example.com/".into();
    })
    .await;
    let hash = mobile_bff::kernel::documents::sha256_hex(BOOTSTRAP);
    let apq = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let device = Device { platform: b"ios", version: b"2.1.0".to_vec(), build: b"", expected: "SOFT" };
    let (status, _, body) = post_as(&server, &device, &json!({ "query": BOOTSTRAP, "extensions": apq })).await;
    assert_eq!(status, 200, "{body}");
    let bootstrap = &body["data"]["bootstrap"];
    assert_eq!(bootstrap["update"]["status"], "SOFT");
    assert_eq!(bootstrap["update"]["recommendedVersion"], "2.3.0");
    assert_eq!(bootstrap["api"]["graphql"], "https://api.example.com/v1/graphql");
    assert_eq!(bootstrap["api"]["websocket"], "wss://api.example.com/v1/graphql/ws");
    assert_eq!(bootstrap["api"]["media"], "https://cdn.example.com/media/");
    assert_eq!(bootstrap["limits"]["maxPageSize"], 100);
    assert_eq!(bootstrap["realtime"]["pingIntervalSeconds"], 1);

    let get = |etag: Option<String>| {
        let mut request = server
            .client
            .get(format!("{}/graphql", server.base))
            .query(&[("extensions", apq.to_string()), ("operationName", "Bootstrap".to_owned())])
            .headers(headers_of(&device));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    let first = get(None).await.expect("GET");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, max-age=30");
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    let body: Value = first.json().await.expect("json");
    assert_eq!(body["data"]["bootstrap"]["update"]["status"], "SOFT");
    let again = get(Some(etag.clone())).await.expect("GET");
    assert_eq!(again.status(), 304, "nothing changed: no body");
    assert_eq!(min_header(again.headers()), Some("2.0.0 (100)"));
    assert!(again.headers().contains_key("date"), "the precise server time");
    assert!(again.bytes().await.expect("body").is_empty());

    // A new recommended version changes the bootstrap: the old ETag no longer matches.
    let change = mobile_bff::flags::admin::VersionChange { recommended: Some("2.1.0".into()), ..Default::default() };
    let app = server.app();
    mobile_bff::flags::admin::set_versions(
        &app.db,
        &app.settings.versions,
        mobile_bff::kernel::request::Platform::Ios,
        change,
    )
    .await
    .expect("set");
    app.versions.reload(app.db.conn()).await.expect("reload");
    let changed = get(Some(etag.clone())).await.expect("GET");
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().expect("etag"), etag);
    let body: Value = changed.json().await.expect("json");
    assert_eq!(body["data"]["bootstrap"]["update"]["status"], "NONE");
    server.stop().await;
}
