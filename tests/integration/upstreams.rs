//! Upstream aggregation against real HTTP servers on loopback: the recommendations service
//! (healthy, slow, hanging, failing, flapping, returning garbage, absent) and pages for link
//! previews (including every address the SSRF guard must refuse).

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mobile_bff::config::Settings;
use serde_json::{Value, json};

use crate::common::{TestServer, code, screen};

/// How the fake recommendations service behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Healthy,
    /// Answers after a delay.
    Slow(u64),
    /// Never answers.
    Hang,
    /// Answers 500.
    Failing,
    /// Answers 503 to every other request.
    Flapping,
    /// Answers 200 with a body that is not the contract.
    Garbage,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Fake {
    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn subjects(&self) -> Vec<Vec<String>> {
        let requests = self.requests.lock().expect("lock");
        requests
            .iter()
            .map(|(_, body)| {
                body["subjects"]
                    .as_array()
                    .expect("subjects")
                    .iter()
                    .map(|s| s.as_str().expect("id").to_owned())
                    .collect()
            })
            .collect()
    }
}

/// Suggests users 2, 3, 4 (and posts 1, 2) to every subject, or misbehaves per `mode`.
async fn suggestions(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let n = fake.hits.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.requests.lock().expect("lock").push((headers, request.clone()));
    let mode = *fake.mode.lock().expect("lock");
    match mode {
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Mode::Failing => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Flapping if n % 2 == 0 => return (StatusCode::SERVICE_UNAVAILABLE, "flap").into_response(),
        Mode::Garbage => {
            return ([(header::CONTENT_TYPE, "application/json")], "{\"results\": \"nope\"").into_response();
        }
        Mode::Healthy | Mode::Flapping => {}
    }
    let results: Vec<Value> = request["subjects"]
        .as_array()
        .map(|subjects| {
            subjects
                .iter()
                .map(|s| {
                    json!({ "subject": s, "users": [
                        { "id": "2", "score": 0.9, "reason": "FOLLOWED_BY_PEOPLE_YOU_FOLLOW" },
                        { "id": "3", "score": 0.8 },
                        { "id": "4", "score": 0.7, "extra": "ignored" },
                        { "id": "999999", "score": 0.6 }
                    ], "posts": [ { "id": "1", "score": 0.5 }, { "id": "2", "score": 0.4 } ] })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "results": results })).into_response()
}

async fn serve(router: Router, ip: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0")).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn fake_service(mode: Mode) -> (Fake, String) {
    let fake = Fake {
        mode: Arc::new(Mutex::new(mode)),
        hits: Arc::new(AtomicUsize::new(0)),
        requests: Arc::new(Mutex::new(Vec::new())),
    };
    let router = Router::new().route("/v1/suggestions:batch", post(suggestions)).with_state(fake.clone());
    let addr = serve(router, "127.0.0.1").await;
    (fake, format!("http://{addr}"))
}

fn with_service(base: &str, tweak: impl FnOnce(&mut Settings)) -> impl FnOnce(&mut Settings) {
    let base = base.to_owned();
    move |s: &mut Settings| {
        s.upstreams.recommendations.base_url = Some(base);
        s.upstreams.link_previews.enabled = false;
        tweak(s);
    }
}

const SUGGESTED: &str = "{ viewer { handle } suggestedUsers(first: 3) { score reason user { handle } } \
                         suggestedPosts(first: 2) { post { id author { handle } } } }";

fn error_at<'a>(body: &'a Value, field: &str) -> &'a Value {
    body["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["path"][0] == field))
        .unwrap_or_else(|| panic!("no error at {field}: {body}"))
}

#[tokio::test]
async fn home_screen_makes_one_upstream_call_per_screen_at_every_page_size() {
    let (fake, base) = fake_service(Mode::Healthy).await;
    // No caching: every screen must ask the service, so the count is per screen.
    let server = TestServer::start_with(
        30,
        with_service(&base, |s| {
            s.upstreams.recommendations.cache_ttl_seconds = 0;
            s.upstreams.recommendations.negative_cache_ttl_seconds = 0;
        }),
    )
    .await;
    let alice = server.token("alice").await;
    let query = screen("HomeScreen");
    for first in [1, 20, 100] {
        let before = fake.hits();
        let body = server.gql(&query, json!({ "first": first }), Some(&alice)).await;
        assert!(body.get("errors").is_none(), "{body}");
        let data = &body["data"];
        assert_eq!(data["suggestedUsers"].as_array().map(Vec::len), Some(3), "{data}");
        let handles: Vec<&str> = data["suggestedUsers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|s| s["user"]["handle"].as_str())
            .collect();
        assert_eq!(handles.len(), 3);
        assert_eq!(data["suggestedUsers"][0]["reason"], "FOLLOWED_BY_PEOPLE_YOU_FOLLOW");
        assert_eq!(data["suggestedUsers"][0]["score"], 0.9);
        assert_eq!(data["suggestedPosts"].as_array().map(Vec::len), Some(2));
        assert!(!data["feed"]["edges"].as_array().expect("edges").is_empty());
        assert_eq!(fake.hits() - before, 1, "one upstream call for the screen at first={first}");
    }
    server.stop().await;
}

#[tokio::test]
async fn related_users_of_a_list_batch_into_calls_split_at_the_service_limit() {
    let (fake, base) = fake_service(Mode::Healthy).await;
    let server =
        TestServer::start_with(40, with_service(&base, |s| s.upstreams.recommendations.max_batch_size = 8)).await;
    let alice = server.token("alice").await;
    let query =
        "{ viewer { following(first: 20) { edges { node { id relatedUsers(first: 2) { user { handle } } } } } } }";
    let data = server.data(query, json!({}), Some(&alice)).await;
    let edges = data["viewer"]["following"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 20);
    for edge in edges {
        assert_eq!(edge["node"]["relatedUsers"].as_array().map(Vec::len), Some(2), "{edge}");
    }
    // 20 subjects, at most 8 per call: 3 calls, none larger than the limit, covering all.
    let calls = fake.subjects();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|c| c.len() <= 8), "{calls:?}");
    let all: HashSet<&String> = calls.iter().flatten().collect();
    assert_eq!(all.len(), 20);

    // The same screen again: answered from the cache.
    let again = server.data(query, json!({}), Some(&alice)).await;
    assert_eq!(again, data);
    assert_eq!(fake.hits(), 3, "cache hits on repeat");
    let metrics = server.metrics().await;
    assert!(metrics.contains("bff_upstream_cache_total{upstream=\"recommendations\",outcome=\"hit\"} 20"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_screens_share_one_in_flight_call() {
    let (fake, base) = fake_service(Mode::Slow(300)).await;
    let server = TestServer::start_with(10, with_service(&base, |_| {})).await;
    let alice = server.token("alice").await;
    let (a, b, c) = tokio::join!(
        server.data(SUGGESTED, json!({}), Some(&alice)),
        server.data(SUGGESTED, json!({}), Some(&alice)),
        server.data(SUGGESTED, json!({}), Some(&alice)),
    );
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(fake.hits(), 1, "coalesced into one upstream call");
    server.stop().await;
}

#[tokio::test]
async fn request_id_and_traceparent_are_propagated() {
    let (fake, base) = fake_service(Mode::Healthy).await;
    let server = TestServer::start_with(10, with_service(&base, |_| {})).await;
    let alice = server.token("alice").await;
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&alice)
        .header("x-request-id", "screen-req-123")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&json!({ "query": SUGGESTED }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let requests = fake.requests.lock().expect("lock").clone();
    let (headers, _) = requests.first().expect("one call");
    assert_eq!(headers["x-request-id"], "screen-req-123");
    let traceparent = headers["traceparent"].to_str().expect("ascii");
    assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
    assert!(!traceparent.contains("00f067aa0ba902b7"), "a new span id for the upstream call: {traceparent}");
    server.stop().await;
}

#[tokio::test]
async fn upstream_down_still_renders_the_screen_with_the_section_null() {
    // A port with nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let server = TestServer::start_with(10, with_service(&format!("http://{closed}"), |_| {})).await;
    let alice = server.token("alice").await;
    let body = server.gql(&screen("HomeScreen"), json!({ "first": 5 }), Some(&alice)).await;
    assert_eq!(body["data"]["suggestedUsers"], Value::Null, "{body}");
    assert_eq!(body["data"]["suggestedPosts"], Value::Null);
    assert_eq!(body["data"]["viewer"]["handle"], "alice");
    assert_eq!(body["data"]["feed"]["edges"].as_array().map(Vec::len), Some(5), "the feed renders");
    let error = error_at(&body, "suggestedUsers");
    assert_eq!(error["extensions"]["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(error["extensions"]["reason"], "CONNECT_FAILED");
    assert_eq!(error["extensions"]["upstream"], "recommendations");
    assert_eq!(error["path"], json!(["suggestedUsers"]));
    assert!(!error["message"].as_str().unwrap_or("").contains("127.0.0.1"), "no internals: {error}");
    server.stop().await;
}

#[tokio::test]
async fn no_service_configured_says_so_with_a_code() {
    let server = TestServer::start(10).await;
    let alice = server.token("alice").await;
    let body = server.gql(SUGGESTED, json!({}), Some(&alice)).await;
    assert_eq!(body["data"]["suggestedUsers"], Value::Null, "{body}");
    assert_eq!(body["data"]["viewer"]["handle"], "alice");
    let error = error_at(&body, "suggestedUsers");
    assert_eq!(error["extensions"]["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(error["extensions"]["reason"], "NOT_CONFIGURED");
    server.stop().await;
}

#[tokio::test]
async fn hanging_upstream_cannot_hold_the_screen_past_its_deadline() {
    let (fake, base) = fake_service(Mode::Hang).await;
    let server = TestServer::start_with(
        10,
        with_service(&base, |s| {
            s.upstreams.screen_deadline_ms = 300;
            s.upstreams.recommendations.request_timeout_ms = 20_000;
        }),
    )
    .await;
    let alice = server.token("alice").await;
    // Without the deadline the server would wait the 20 s request timeout; this client gives
    // up after 5 s, so an answer at all proves the deadline was kept.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let response = client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&alice)
        .json(&json!({ "query": screen("HomeScreen"), "variables": { "first": 10 } }))
        .send()
        .await
        .expect("the screen answers before the client's 5 s timeout");
    let body: Value = response.json().await.expect("json");
    assert_eq!(fake.hits(), 1);
    assert_eq!(body["data"]["feed"]["edges"].as_array().map(Vec::len), Some(10), "{body}");
    assert_eq!(body["data"]["suggestedUsers"], Value::Null);
    let error = error_at(&body, "suggestedUsers");
    assert_eq!(error["extensions"]["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(error_at(&body, "suggestedPosts")["extensions"]["code"], "UPSTREAM_TIMEOUT");
    server.stop().await;
}

#[tokio::test]
async fn failing_upstream_opens_the_breaker_then_recovers_through_a_probe() {
    let (fake, base) = fake_service(Mode::Failing).await;
    let server = TestServer::start_with(
        10,
        with_service(&base, |s| {
            let r = &mut s.upstreams.recommendations;
            r.retries = 0;
            r.breaker_failures = 3;
            r.breaker_window_ms = 60_000;
            r.breaker_open_ms = 400;
        }),
    )
    .await;
    let alice = server.token("alice").await;
    for _ in 0..3 {
        let body = server.gql(SUGGESTED, json!({}), Some(&alice)).await;
        assert_eq!(error_at(&body, "suggestedUsers")["extensions"]["reason"], "HTTP_STATUS", "{body}");
    }
    assert_eq!(fake.hits(), 3);
    let body = server.gql(SUGGESTED, json!({}), Some(&alice)).await;
    assert_eq!(error_at(&body, "suggestedUsers")["extensions"]["reason"], "CIRCUIT_OPEN", "{body}");
    assert_eq!(body["data"]["viewer"]["handle"], "alice");
    assert_eq!(fake.hits(), 3, "an open breaker does not call the service");
    assert!(server.metrics().await.contains("bff_upstream_breaker_state{upstream=\"recommendations\"} 2"));

    fake.set(Mode::Healthy);
    // The breaker stays open for its open period (answering without calling), then lets one
    // probe through: ask until it does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let data = loop {
        let body = server.gql(SUGGESTED, json!({}), Some(&alice)).await;
        if body.get("errors").is_none() {
            break body["data"].clone();
        }
        assert_eq!(error_at(&body, "suggestedUsers")["extensions"]["reason"], "CIRCUIT_OPEN", "{body}");
        assert!(tokio::time::Instant::now() < deadline, "the breaker never let a probe through");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(data["suggestedUsers"].as_array().map(Vec::len), Some(3));
    assert_eq!(fake.hits(), 4, "one probe closed the breaker");
    assert!(server.metrics().await.contains("bff_upstream_breaker_state{upstream=\"recommendations\"} 0"));
    server.stop().await;
}

#[tokio::test]
async fn flapping_upstream_is_retried_with_backoff() {
    let (fake, base) = fake_service(Mode::Flapping).await;
    let server = TestServer::start_with(10, with_service(&base, |s| s.upstreams.recommendations.retries = 2)).await;
    let alice = server.token("alice").await;
    let data = server.data(SUGGESTED, json!({}), Some(&alice)).await;
    assert_eq!(data["suggestedUsers"].as_array().map(Vec::len), Some(3));
    assert_eq!(fake.hits(), 2, "a 503, then a successful retry");
    assert!(
        server.metrics().await.contains("bff_upstream_calls_total{upstream=\"recommendations\",outcome=\"retried\"} 1")
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_from_the_upstream_is_unavailable_not_a_crash() {
    let (_fake, base) = fake_service(Mode::Garbage).await;
    let server = TestServer::start_with(10, with_service(&base, |_| {})).await;
    let alice = server.token("alice").await;
    let body = server.gql(SUGGESTED, json!({}), Some(&alice)).await;
    let error = error_at(&body, "suggestedUsers");
    assert_eq!(error["extensions"]["code"], "UPSTREAM_UNAVAILABLE", "{body}");
    assert_eq!(error["extensions"]["reason"], "INVALID_RESPONSE");
    assert_eq!(body["data"]["viewer"]["handle"], "alice");
    let body = server.gql("{ suggestedUsers(first: 21) { score } }", json!({}), Some(&alice)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let body = server.gql("{ suggestedUsers { score } }", json!({}), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn the_example_service_fills_the_home_screen_from_seeded_data() {
    // The shipped example service over a seeded database, as `mobile-bff example-upstream` runs it.
    let seeded = TestServer::start(60).await;
    let router = mobile_bff::dev::example_upstream::router(seeded.app().db.clone(), Duration::ZERO);
    let addr = serve(router, "127.0.0.1").await;
    let base = format!("http://{addr}");
    let raw: Value = seeded
        .client
        .post(format!("{base}/v1/suggestions:batch"))
        .json(&json!({ "subjects": ["1", "2"], "limit": 5 }))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json");
    assert_eq!(raw["results"].as_array().map(Vec::len), Some(2), "{raw}");
    assert_eq!(raw["results"][0]["users"].as_array().map(Vec::len), Some(5));
    let bad = seeded.client.post(format!("{base}/v1/suggestions:batch")).body("{").send().await.expect("call");
    assert_eq!(bad.status(), 400);

    // A BFF pointed at it (the example reads the same database).
    let mut settings = mobile_bff::config::Settings::clone(&seeded.app().settings);
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    settings.upstreams.recommendations.base_url = Some(base);
    settings.upstreams.link_previews.enabled = false;
    let bff = mobile_bff::server::start(settings).await.expect("server");
    let alice = seeded.token("alice").await;
    let body: Value = seeded
        .client
        .post(format!("http://{}/graphql", bff.addr))
        .bearer_auth(&alice)
        .json(&json!({ "query": screen("HomeScreen"), "variables": { "first": 5 } }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    let users = body["data"]["suggestedUsers"].as_array().expect("users");
    assert_eq!(users.len(), 5);
    assert!(users.iter().all(|u| u["user"]["viewerIsFollowing"] == false), "suggests only unfollowed users: {body}");
    assert!(!body["data"]["suggestedPosts"].as_array().expect("posts").is_empty());
    bff.shutdown().await;
    seeded.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Link previews

#[derive(Clone)]
struct Pages {
    hits: Arc<AtomicUsize>,
}

const ARTICLE: &str = r#"<!doctype html><html><head><meta charset="utf-8">
<title>Fallback title</title>
<meta property="og:title" content="Offline-first sync, explained">
<meta property="og:description" content="How the app keeps working in a tunnel.">
<meta property="og:site_name" content="Mobile Weekly">
<meta property="og:image" content="/img/cover.jpg">
</head><body><p>article</p></body></html>"#;

async fn pages(redirect_to: Option<String>) -> (Pages, Router) {
    let state = Pages { hits: Arc::new(AtomicUsize::new(0)) };
    let count = |state: &Pages| {
        state.hits.fetch_add(1, Ordering::SeqCst);
    };
    let router = Router::new()
        .route(
            "/article",
            get(move |State(s): State<Pages>| async move {
                count(&s);
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], ARTICLE)
            }),
        )
        .route(
            "/image.png",
            get(move |State(s): State<Pages>| async move {
                count(&s);
                ([(header::CONTENT_TYPE, "image/png")], vec![0x89u8, b'P', b'N', b'G'])
            }),
        )
        .route(
            "/loop",
            get(move |State(s): State<Pages>| async move {
                count(&s);
                (StatusCode::FOUND, [(header::LOCATION, "/loop")])
            }),
        )
        .route(
            "/redirect",
            get(move |State(s): State<Pages>| {
                let target = redirect_to.clone().unwrap_or_else(|| "/article".into());
                async move {
                    count(&s);
                    (StatusCode::FOUND, [(header::LOCATION, target)])
                }
            }),
        )
        .with_state(state.clone());
    (state, router)
}

async fn post_link(server: &TestServer, token: &str, link: &str) -> Value {
    let create = "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }";
    let data = server.data(create, json!({ "input": { "body": "look", "links": [link] } }), Some(token)).await;
    data["createPost"]["post"]["id"].clone()
}

const PREVIEW: &str =
    "query($id: ID!) { post(id: $id) { id linkPreview { url title description siteName imageUrl } } }";

fn previews_allowing(hosts: &[&str]) -> impl FnOnce(&mut Settings) {
    let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    move |s: &mut Settings| {
        s.upstreams.link_previews.allow_hosts = hosts;
        s.upstreams.link_previews.retries = 0;
    }
}

#[tokio::test]
async fn link_preview_from_opengraph_tags_is_fetched_once_and_cached() {
    let (state, router) = pages(None).await;
    let addr = serve(router, "127.0.0.1").await;
    let server = TestServer::start_with(5, previews_allowing(&["127.0.0.1"])).await;
    let alice = server.token("alice").await;
    let link = format!("http://{addr}/article");
    let id = post_link(&server, &alice, &link).await;
    let data = server.data(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(
        data["post"]["linkPreview"],
        json!({
            "url": link,
            "title": "Offline-first sync, explained",
            "description": "How the app keeps working in a tunnel.",
            "siteName": "Mobile Weekly",
            "imageUrl": format!("http://{addr}/img/cover.jpg"),
        })
    );
    let again = server.data(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(again, data);
    assert_eq!(state.hits.load(Ordering::SeqCst), 1, "fetched once, then cached");

    // Redirects are followed; a non-HTML link has no preview and no error.
    let id = post_link(&server, &alice, &format!("http://{addr}/redirect")).await;
    let data = server.data(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(data["post"]["linkPreview"]["title"], "Offline-first sync, explained");
    let id = post_link(&server, &alice, &format!("http://{addr}/image.png")).await;
    let data = server.data(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(data["post"]["linkPreview"], Value::Null);
    // A redirect loop stops at the cap.
    let id = post_link(&server, &alice, &format!("http://{addr}/loop")).await;
    let body = server.gql(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(body["data"]["post"]["id"], id, "the post renders");
    assert_eq!(error_at(&body, "post")["extensions"]["reason"], "TOO_MANY_REDIRECTS", "{body}");
    server.stop().await;
}

#[tokio::test]
async fn link_previews_to_private_addresses_are_refused_without_a_request() {
    let (state, router) = pages(None).await;
    let addr = serve(router, "127.0.0.1").await;
    let port = addr.port();
    let server = TestServer::start(5).await;
    let alice = server.token("alice").await;
    for (link, reason) in [
        (format!("http://127.0.0.1:{port}/article"), "BLOCKED_ADDRESS"),
        ("http://10.0.0.1/".to_owned(), "BLOCKED_ADDRESS"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "BLOCKED_ADDRESS"),
        (format!("http://[::ffff:127.0.0.1]:{port}/article"), "BLOCKED_ADDRESS"),
        ("http://[::1]/".to_owned(), "BLOCKED_ADDRESS"),
        ("http://2130706433/".to_owned(), "BLOCKED_ADDRESS"),
        // A name that resolves to loopback is refused after resolution.
        ("http://localhost:8080/article".to_owned(), "BLOCKED_ADDRESS"),
        ("https://example.com:6379/".to_owned(), "BLOCKED_PORT"),
    ] {
        let id = post_link(&server, &alice, &link).await;
        let body = server.gql(PREVIEW, json!({ "id": id }), Some(&alice)).await;
        assert_eq!(body["data"]["post"]["id"], id, "{link}: the post still renders: {body}");
        assert_eq!(body["data"]["post"]["linkPreview"], Value::Null, "{link}");
        let error = error_at(&body, "post");
        assert_eq!(error["extensions"]["code"], "UPSTREAM_UNAVAILABLE", "{link}: {body}");
        assert_eq!(error["extensions"]["reason"], reason, "{link}: {body}");
        assert_eq!(error["path"], json!(["post", "linkPreview"]));
    }
    assert_eq!(state.hits.load(Ordering::SeqCst), 0, "the loopback server was never reached");
    server.stop().await;
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused() {
    // The inner server is on 127.0.0.1 (not allowlisted); the outer one on 127.0.0.2 is.
    let (inner, inner_router) = pages(None).await;
    let inner_addr = serve(inner_router, "127.0.0.1").await;
    let (outer, outer_router) = pages(Some(format!("http://127.0.0.1:{}/article", inner_addr.port()))).await;
    let outer_addr = serve(outer_router, "127.0.0.2").await;
    let server = TestServer::start_with(5, previews_allowing(&["127.0.0.2"])).await;
    let alice = server.token("alice").await;
    let id = post_link(&server, &alice, &format!("http://{outer_addr}/redirect")).await;
    let body = server.gql(PREVIEW, json!({ "id": id }), Some(&alice)).await;
    assert_eq!(error_at(&body, "post")["extensions"]["reason"], "BLOCKED_ADDRESS", "{body}");
    assert_eq!(outer.hits.load(Ordering::SeqCst), 1);
    assert_eq!(inner.hits.load(Ordering::SeqCst), 0, "the redirect target was never requested");
    server.stop().await;
}
