//! U1: the home screen with its upstream sections. The example recommendations service
//! (`mobile-bff example-upstream`, same dataset, pinned to the server core like the product)
//! answers `suggestedUsers`/`suggestedPosts`; the figures are
//!
//! - upstream calls per HomeScreen request at `first` = 1, 20, 100 with the cache off
//!   (`bff_upstream_calls_total` of the product; must be constant), and
//! - HomeScreen throughput and latency with the cache on (steady state: a suggestion is
//!   fetched once a minute per user) and off (every screen calls the service), against the
//!   HomeFeed screen without upstream fields on the product without upstreams, in the same run.
//!
//! Link previews are switched off in these servers: the seeded posts link to
//! `https://example.com/…`, which an offline benchmark machine cannot reach (every preview
//! would be an error); their fetch path is covered by the integration tests.

use std::fmt::Write as _;

use anyhow::Context;
use serde_json::json;

use crate::{
    http::{self, RequestSpec},
    load::{self, LoadConfig},
    machine::Pinning,
    report::{Measured, measurement_table},
    server::{Binaries, Dataset, Server},
};

const HOME_FEED: &str = include_str!("../../playground/queries/HomeFeed.graphql");
const HOME_SCREEN: &str = include_str!("../../playground/queries/HomeScreen.graphql");
const PAGES: [usize; 3] = [1, 20, 100];

/// The U1 figures.
pub struct UpstreamReport {
    backend: &'static str,
    /// (first, upstream calls, feed edges) per HomeScreen request, cache off.
    calls: Vec<(usize, u64, usize)>,
    runs: Vec<Measured>,
}

impl UpstreamReport {
    /// True when the call count was constant and every run succeeded.
    pub fn passed(&self) -> bool {
        let constant = self.calls.windows(2).all(|w| w[0].1 == w[1].1) && self.calls.first().is_some_and(|c| c.1 == 1);
        constant && self.runs.iter().all(|m| !m.result.failed())
    }

    /// The markdown block.
    pub fn markdown(&self) -> String {
        let mut out = format!("#### U1 — home screen with upstreams ({})\n\n", self.backend);
        out.push_str("Recommendations calls per HomeScreen request (cache off):\n\n| first | feed edges | upstream calls |\n|--:|--:|--:|\n");
        for (first, calls, edges) in &self.calls {
            let _ = writeln!(out, "| {first} | {edges} | {calls} |");
        }
        let verdict = if self.passed() { "constant (met)" } else { "**not constant / failed**" };
        let _ = writeln!(out, "\nUpstream calls per screen: {verdict}.\n");
        out.push_str(&measurement_table(&self.runs));
        if let [none, warm, cold] = self.runs.as_slice() {
            let ratio = |m: &Measured| {
                if m.result.failed() || none.result.failed() {
                    "n/a".to_owned()
                } else {
                    format!("{:.2}×", m.result.throughput() / none.result.throughput().max(f64::MIN_POSITIVE))
                }
            };
            let _ = writeln!(
                out,
                "\nThroughput relative to HomeFeed without upstreams: cache on {}, cache off {}.",
                ratio(warm),
                ratio(cold)
            );
        }
        out
    }
}

/// Successful recommendations calls so far.
async fn calls_total(server: &Server) -> anyhow::Result<u64> {
    let series = "bff_upstream_calls_total{upstream=\"recommendations\",outcome=\"ok\"}";
    Ok(server.metric(series).await?.map_or(0, |v| v as u64))
}

fn home_screen(first: usize, token: &str) -> anyhow::Result<RequestSpec> {
    RequestSpec::post_json("/graphql", &json!({ "query": HOME_SCREEN, "variables": { "first": first } }), Some(token))
}

/// Checks a HomeScreen answer: no errors, suggestions present; returns its feed edges and bytes.
async fn check(server: &Server, spec: &RequestSpec) -> anyhow::Result<(usize, usize)> {
    let (response, bytes) = http::json_once(server.addr, spec).await?;
    if let Some(errors) = response.get("errors") {
        anyhow::bail!("HomeScreen answered errors: {errors}");
    }
    let users = response["data"]["suggestedUsers"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(users > 0, "HomeScreen has no suggested users: {}", http::preview(&bytes));
    let edges = response["data"]["feed"]["edges"].as_array().map_or(0, Vec::len);
    Ok((edges, bytes.len()))
}

/// Runs U1 next to `product` (the server without upstreams).
pub async fn measure(
    bins: &Binaries,
    dataset: &Dataset,
    pinning: &Pinning,
    product: &mut Server,
    config: LoadConfig,
    backend: &'static str,
) -> anyhow::Result<UpstreamReport> {
    let service = Server::example_upstream(bins, dataset, pinning).await?;
    let base = format!("http://{}", service.addr);
    let common = [
        ("BFF_UPSTREAMS__RECOMMENDATIONS__BASE_URL", base),
        ("BFF_UPSTREAMS__LINK_PREVIEWS__ENABLED", "false".to_owned()),
    ];
    let mut cold_settings = common.to_vec();
    cold_settings.push(("BFF_UPSTREAMS__RECOMMENDATIONS__CACHE_TTL_SECONDS", "0".to_owned()));
    cold_settings.push(("BFF_UPSTREAMS__RECOMMENDATIONS__NEGATIVE_CACHE_TTL_SECONDS", "0".to_owned()));
    let mut cold = Server::product_with(bins, dataset, pinning, "mobile-bff-upstreams-cold", &cold_settings).await?;
    let mut warm = Server::product_with(bins, dataset, pinning, "mobile-bff-upstreams", &common).await?;

    let mut calls = Vec::new();
    for first in PAGES {
        let spec = home_screen(first, &dataset.token)?;
        let before = calls_total(&cold).await?;
        let (edges, _) = check(&cold, &spec).await.context("U1 call count")?;
        let after = calls_total(&cold).await?;
        calls.push((first, after.saturating_sub(before), edges));
    }
    eprintln!("bench: U1 {calls:?} (first, upstream calls, edges)");

    let feed = RequestSpec::post_json(
        "/graphql",
        &json!({ "query": HOME_FEED, "variables": { "first": 20 } }),
        Some(&dataset.token),
    )?;
    let (feed_response, feed_bytes) = http::json_once(product.addr, &feed).await?;
    anyhow::ensure!(feed_response.get("errors").is_none(), "HomeFeed answered errors");
    let screen = home_screen(20, &dataset.token)?;
    let (_, screen_bytes) = check(&warm, &screen).await?;
    let (_, cold_bytes) = check(&cold, &screen).await?;

    let mut runs = Vec::new();
    let plan: [(&mut Server, &'static str, &str, usize, &RequestSpec); 3] = [
        (product, "mobile-bff", "HomeFeed, first: 20 (no upstream fields)", feed_bytes.len(), &feed),
        (&mut warm, "mobile-bff + service", "HomeScreen, first: 20, suggestion cache on", screen_bytes, &screen),
        (
            &mut cold,
            "mobile-bff + service",
            "HomeScreen, first: 20, cache off (1 call per screen)",
            cold_bytes,
            &screen,
        ),
    ];
    for (server, name, workload, response_bytes, spec) in plan {
        let result = load::run(server.addr, server.pid(), spec, config).await?;
        server.ensure_alive()?;
        eprintln!(
            "bench: U1 {workload:<55} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            result.throughput(),
            result.percentile(0.5).as_secs_f64() * 1000.0,
            result.percentile(0.99).as_secs_f64() * 1000.0,
            result.errors()
        );
        if let Some(failure) = &result.first_failure {
            eprintln!("bench: U1 first failure: {failure}");
        }
        runs.push(Measured { bench: "U1", server: name, workload: workload.to_owned(), response_bytes, result });
    }
    drop(service);
    Ok(UpstreamReport { backend, calls, runs })
}
