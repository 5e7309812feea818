//! Feature flags on a running server: a 50 % rollout decided per key exactly as Unleash's
//! formula says (so stable, and about half of many users), platform and app-version
//! targeting from the app's headers, `flags` and the bootstrap for a signed-in user, OFREP
//! (single, bulk with ETag / 304, errors, a token's user winning over a claimed key), and
//! `flags set` / `flags kill` through the binary reaching two running replicas.

use std::time::{Duration, Instant};

use mobile_bff::flags::{
    hash,
    manage::{self, FlagChange},
};
use serde_json::{Value, json};

use crate::common::{TestDatabase, TestServer};
use crate::replica::{Replica, cli_ok};

async fn set_flag(server: &TestServer, key: &str, change: FlagChange) {
    manage::set(&server.app().db, "test", key, change).await.expect("flag stored");
    server.app().flags.reload(server.app().db.conn()).await.expect("reload");
}

async fn ofrep(server: &TestServer, key: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(format!("{}/ofrep/v1/evaluate/flags/{key}", server.base)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn unleash_in(key: &str, group: &str, percentage: u32) -> bool {
    hash::normalized(key, group, 100, 0) <= percentage
}

#[tokio::test]
async fn a_rollout_is_unleash_exact_per_user_and_targets_platform_and_app_version() {
    let server = TestServer::start(0).await;
    let change = FlagChange {
        rollout: Some(50.0),
        platforms: vec!["ios".into()],
        min_version: Some("3.2".into()),
        ..FlagChange::default()
    };
    set_flag(&server, "new-checkout", change).await;
    let ios32 = [("x-platform", "ios"), ("x-app-version", "3.2.1")];
    let mut on = 0;
    for i in 0..400 {
        let key = format!("user-{i}");
        let (status, body) =
            ofrep(&server, "new-checkout", &json!({ "context": { "targetingKey": key } }), &ios32).await;
        assert_eq!(status, 200, "{body}");
        let expected = unleash_in(&key, "new-checkout", 50);
        assert_eq!(body["value"], json!(expected), "{key}: {body}");
        assert_eq!(body["reason"], if expected { "SPLIT" } else { "DEFAULT" }, "{body}");
        on += usize::from(expected);
        if i < 20 {
            // The same user, asked again, is in the same bucket.
            let (_, again) =
                ofrep(&server, "new-checkout", &json!({ "context": { "targetingKey": key } }), &ios32).await;
            assert_eq!(again["value"], body["value"]);
        }
    }
    assert!((160..=240).contains(&on), "a 50 % rollout enabled {on} of 400");
    // A key inside the rollout, on the wrong platform or below the version, is out.
    let inside = (0..400).map(|i| format!("user-{i}")).find(|k| unleash_in(k, "new-checkout", 50)).expect("one inside");
    for headers in [
        [("x-platform", "android"), ("x-app-version", "3.2.1")],
        [("x-platform", "ios"), ("x-app-version", "3.1.9")],
        [("x-platform", "ios"), ("x-app-version", "garbage")],
    ] {
        let (status, body) =
            ofrep(&server, "new-checkout", &json!({ "context": { "targetingKey": inside } }), &headers).await;
        assert_eq!(
            (status, body["value"].clone(), body["reason"].clone()),
            (200, json!(false), json!("DEFAULT")),
            "{headers:?}"
        );
    }
    // Growing the rollout keeps everyone who was in.
    set_flag(
        &server,
        "new-checkout",
        FlagChange { rollout: Some(75.0), platforms: vec!["ios".into()], ..FlagChange::default() },
    )
    .await;
    for i in 0..100 {
        let key = format!("user-{i}");
        let (_, body) = ofrep(&server, "new-checkout", &json!({ "context": { "targetingKey": key } }), &ios32).await;
        if unleash_in(&key, "new-checkout", 50) {
            assert_eq!(body["value"], json!(true), "{key} left the rollout when it grew");
        }
        assert_eq!(body["value"], json!(unleash_in(&key, "new-checkout", 75)));
    }
    server.stop().await;
}

#[tokio::test]
async fn flags_and_the_bootstrap_evaluate_for_the_signed_in_user_and_say_why() {
    let server = TestServer::start(3).await;
    set_flag(&server, "half", FlagChange { rollout: Some(50.0), ..FlagChange::default() }).await;
    set_flag(
        &server,
        "everyone",
        FlagChange { variants: vec!["blue:1".into(), "green:1".into()], ..FlagChange::default() },
    )
    .await;
    let token = server.token("alice").await;
    let alice =
        mobile_bff::social::user_by_handle(server.app().db.conn(), "alice").await.expect("query").expect("alice");
    let query = json!({ "query": "{ flags(keys: [\"half\", \"everyone\", \"missing\"]) { key enabled variant reason errorCode } \
        bootstrap { flags { key enabled } } }" });
    let (status, body) = server.post(&query, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let flags = &body["data"]["flags"];
    let half_on = unleash_in(&alice.id.to_string(), "half", 50);
    assert_eq!(flags[0]["enabled"], json!(half_on), "{body}");
    assert_eq!(flags[0]["reason"], if half_on { "SPLIT" } else { "DEFAULT" });
    assert_eq!(flags[1]["enabled"], json!(true));
    assert!(["blue", "green"].contains(&flags[1]["variant"].as_str().unwrap_or_default()), "{body}");
    assert_eq!(flags[1]["reason"], "SPLIT");
    assert_eq!((flags[2]["enabled"].clone(), flags[2]["reason"].clone()), (json!(false), json!("ERROR")));
    assert_eq!(flags[2]["errorCode"], "FLAG_NOT_FOUND");
    let keys: Vec<&str> =
        body["data"]["bootstrap"]["flags"].as_array().expect("list").iter().filter_map(|f| f["key"].as_str()).collect();
    assert_eq!(keys, ["everyone", "half"]);
    // Signed out with nothing to stick to: an error that says so, never a coin toss.
    let (_, body) =
        server.post(&json!({ "query": "{ flags(keys: [\"half\"]) { enabled reason errorCode } }" }), None).await;
    assert_eq!(
        body["data"]["flags"][0],
        json!({ "enabled": false, "reason": "ERROR", "errorCode": "TARGETING_KEY_MISSING" })
    );
    // Signed out on a device: the device decides.
    let device = "5f0c6c2e-8a3b-4f3e-9d57-1b2a3c4d5e6f";
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("x-device-id", device)
        .json(&json!({ "query": "{ flags(keys: [\"half\"]) { enabled } }" }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["flags"][0]["enabled"], json!(unleash_in(device, "half", 50)), "{body}");
    // Bounded input.
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let (_, body) = server
        .post(&json!({ "query": "query($k: [String!]) { flags(keys: $k) { key } }", "variables": { "k": many } }), None)
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    server.stop().await;
}

#[tokio::test]
async fn ofrep_answers_errors_as_ofrep_binds_the_token_user_and_revalidates_with_etags() {
    let server = TestServer::start(2).await;
    set_flag(&server, "half", FlagChange { rollout: Some(50.0), ..FlagChange::default() }).await;
    let (status, body) = ofrep(&server, "nope", &json!({ "context": { "targetingKey": "u" } }), &[]).await;
    assert_eq!((status, body["errorCode"].clone()), (404, json!("FLAG_NOT_FOUND")), "{body}");
    let (status, body) = ofrep(&server, "half", &json!({ "context": {} }), &[]).await;
    assert_eq!((status, body["errorCode"].clone()), (400, json!("TARGETING_KEY_MISSING")), "{body}");
    let (status, body) = ofrep(&server, "half", &json!({ "context": "nope" }), &[]).await;
    assert_eq!((status, body["errorCode"].clone()), (400, json!("INVALID_CONTEXT")), "{body}");
    let response = server
        .client
        .post(format!("{}/ofrep/v1/evaluate/flags/half", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
    let (status, body) = ofrep(&server, "half", &json!({}), &[("authorization", "Bearer not-a-token")]).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].clone()), (401, json!("UNAUTHENTICATED")), "{body}");

    // With a token, the token's user is evaluated, whatever key the body claims.
    let token = server.token("alice").await;
    let alice = mobile_bff::social::user_by_handle(server.app().db.conn(), "alice").await.expect("q").expect("alice");
    let mine = unleash_in(&alice.id.to_string(), "half", 50);
    let claimed = (0..100)
        .map(|i| format!("other-{i}"))
        .find(|k| unleash_in(k, "half", 50) != mine)
        .expect("a key on the other side");
    let bearer = format!("Bearer {token}");
    let (status, body) = ofrep(
        &server,
        "half",
        &json!({ "context": { "targetingKey": claimed } }),
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!((status, body["value"].clone()), (200, json!(mine)), "{body}");

    // Bulk: every flag, an ETag, 304 while nothing changed, a new ETag after a change.
    let bulk = |etag: Option<String>| {
        let mut request = server
            .client
            .post(format!("{}/ofrep/v1/evaluate/flags", server.base))
            .json(&json!({ "context": { "targetingKey": "user-7" } }));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    let response = bulk(None).await.expect("bulk");
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().expect("etag").to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["flags"][0]["key"], "half", "{body}");
    assert_eq!(body["flags"][0]["value"], json!(unleash_in("user-7", "half", 50)));
    let response = bulk(Some(etag.clone())).await.expect("bulk");
    assert_eq!(response.status(), 304);
    manage::kill(&server.app().db, "test", "half").await.expect("kill");
    server.app().flags.reload(server.app().db.conn()).await.expect("reload");
    let response = bulk(Some(etag.clone())).await.expect("bulk");
    assert_eq!(response.status(), 200);
    assert_ne!(response.headers()["etag"].to_str().expect("etag"), etag);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        (body["flags"][0]["value"].clone(), body["flags"][0]["reason"].clone()),
        (json!(false), json!("DISABLED"))
    );
    server.stop().await;
}

async fn flag_state(client: &reqwest::Client, base: &str) -> Value {
    let response = client
        .post(format!("{base}/ofrep/v1/evaluate/flags/checkout"))
        .json(&json!({ "context": { "targetingKey": "user-1" } }))
        .send()
        .await
        .expect("request");
    response.json().await.expect("json")
}

#[tokio::test]
async fn flags_set_and_kill_from_the_command_line_reach_two_running_replicas_and_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    cli_ok(&database.url, dir.path(), &["migrate"]);
    let replicas = [Replica::start(&database.url, dir.path()).await, Replica::start(&database.url, dir.path()).await];
    let client = reqwest::Client::new();
    cli_ok(&database.url, dir.path(), &["flags", "set", "checkout", "--rollout", "100", "--actor", "ops@example.com"]);
    let wait_for = |reason: &'static str| {
        let client = client.clone();
        let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            for base in bases {
                loop {
                    let state = flag_state(&client, &base).await;
                    if state["reason"] == reason {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{base} still answers {state} instead of {reason}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    wait_for("STATIC").await;
    let killed_at = Instant::now();
    let out = cli_ok(&database.url, dir.path(), &["flags", "kill", "checkout", "--actor", "ops@example.com"]);
    assert!(out.contains("OFF"), "{out}");
    wait_for("DISABLED").await;
    // Within the refresh interval (1 s here) plus a little: "in a second", not a deploy.
    assert!(killed_at.elapsed() < Duration::from_secs(5), "the kill took {:?}", killed_at.elapsed());
    let list = cli_ok(&database.url, dir.path(), &["flags", "list"]);
    assert!(list.lines().any(|l| l.starts_with("checkout") && l.contains("OFF")), "{list}");
    let audit = cli_ok(&database.url, dir.path(), &["flags", "audit", "checkout"]);
    assert_eq!(audit.matches("checkout by ops@example.com").count(), 2, "{audit}");
    assert!(audit.contains("before: (none)"), "the creation has no before: {audit}");
    assert!(audit.contains("\"enabled\":false"), "the kill's after: {audit}");
    drop(replicas);
    database.destroy().await;
}
