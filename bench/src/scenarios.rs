//! The benchmarks B1-B4 and the order they run in: seed, start the product, count statements
//! (B2), start the baseline, check that both answer the same screen, then load each server in
//! turn with the same client, concurrency, warm-up and window.
//!
//! - **B1** the HomeFeed screen (`playground/queries/HomeFeed.graphql`, `first: 20`, as
//!   `@alice`) against the hand-written axum + sqlx baseline.
//! - **B2** SQL statements per HomeFeed request at `first` = 1, 20, 100, from
//!   `bff_db_statements_total` (deterministic; the only check of `--quick`).
//! - **B3** `{ __typename }` against a plain axum handler returning the same bytes.
//! - **B4** the same query shape at `feed(first: 10)` and `feed(first: 100)` with nine comments
//!   per post: how latency grows with the response.

use anyhow::Context;
use serde_json::{Value, json};

use crate::{
    RunArgs,
    baseline::TYPENAME_RESPONSE,
    http::{self, RequestSpec},
    load::{self, LoadConfig},
    machine::{MachineInfo, Pinning},
    report::{Equivalence, LoadResults, Measured, Report, RunContext, StatementCounts},
    server::{Binaries, Dataset, Server},
};

/// The product's home screen query, as checked in.
const HOME_FEED: &str = include_str!("../../playground/queries/HomeFeed.graphql");
/// B4: one query shape, ~10× more nodes at n = 100 than at n = 10.
const SCALING: &str = "query($n: Int) { feed(first: $n) { edges { node { id body author { handle } \
     comments(first: 9) { edges { node { id body } } } } } } }";
/// B2 page sizes.
const STATEMENT_PAGES: [usize; 3] = [1, 20, 100];

/// Runs the benchmarks, prints the tables, writes the docs block; true when nothing failed.
pub async fn run(args: &RunArgs, pinning: &Pinning) -> anyhow::Result<bool> {
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let context = RunContext {
        backend: if args.pg.is_some() { "postgres" } else { "sqlite" },
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        command: reproducing_command(),
        machine: MachineInfo::collect(&bins.repo),
        pinning: pinning.note.clone(),
        load: if args.quick {
            format!("quick mode (B2 only); dataset: {} users seeded by `mobile-bff seed`", args.users)
        } else {
            format!(
                "{} connections, {} s warm-up + {} s measured per run, closed loop, HTTP/1.1 keep-alive, no \
                 compression; dataset: {} users seeded by `mobile-bff seed`",
                args.concurrency, args.warmup, args.duration, args.users
            )
        },
    };
    eprintln!("bench: {}", context.pinning);
    eprintln!("bench: 1-min load average {} on {} CPUs", context.machine.load_average, context.machine.cpus);

    let mut dataset = Dataset::prepare(&bins, args).await?;
    if args.only_realtime {
        let backend = context.backend;
        let measured = realtime(args, pinning, &bins, &dataset, backend).await;
        let cleanup = dataset.cleanup().await;
        let report = measured?;
        cleanup?;
        println!("{}", report.markdown());
        crate::report::write_block(args.write_docs.as_deref(), &format!("realtime-{backend}"), &report.markdown())?;
        return Ok(report.complete());
    }
    let measured = measure(args, pinning, &bins, &dataset).await;
    let cleanup = dataset.cleanup().await;
    let (statements, loads) = measured?;
    cleanup?;

    let report = Report { context, statements, loads };
    println!("{}", report.markdown());
    if let Some(path) = &args.write_docs {
        report.write_docs(path)?;
        eprintln!("bench: wrote the {} block of {}", report.context.backend, path.display());
    }
    if !report.passed() {
        eprintln!("bench: FAILED (B2 violated or a run had errors; see the tables)");
    }
    Ok(report.passed())
}

/// The command line that reproduces this run (`bench/run.sh` passes what the user typed).
fn reproducing_command() -> String {
    std::env::var("BENCH_COMMAND").unwrap_or_else(|_| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!("target/release/bench {}", args.join(" "))
    })
}

/// Starts the servers (dropped, so killed, when this returns) and measures.
async fn measure(
    args: &RunArgs,
    pinning: &Pinning,
    bins: &Binaries,
    dataset: &Dataset,
) -> anyhow::Result<(StatementCounts, Option<LoadResults>)> {
    let mut product = Server::product(bins, dataset, pinning).await?;
    let statements = statement_counts(&product, &dataset.token).await?;
    eprintln!("bench: B2 {:?} (first, statements, edges)", statements.counts);
    if args.quick {
        return Ok((statements, None));
    }
    let transport = crate::transport::measure(&product, &dataset.token).await?;
    println!("{}", transport.markdown());
    crate::report::write_block(args.write_docs.as_deref(), "transport", &transport.markdown())?;
    let config = LoadConfig {
        concurrency: usize::try_from(args.concurrency)?,
        warmup: args.warmup(),
        duration: args.duration(),
    };
    let backend = if args.pg.is_some() { "postgres" } else { "sqlite" };
    let upstreams = crate::upstreams::measure(bins, dataset, pinning, &mut product, config, backend).await?;
    println!("{}", upstreams.markdown());
    crate::report::write_block(args.write_docs.as_deref(), &format!("upstreams-{backend}"), &upstreams.markdown())?;
    anyhow::ensure!(upstreams.passed(), "U1 failed: upstream calls per screen not constant, or a run had errors");
    if args.sockets > 0 {
        let realtime = realtime(args, pinning, bins, dataset, backend).await?;
        println!("{}", realtime.markdown());
        crate::report::write_block(args.write_docs.as_deref(), &format!("realtime-{backend}"), &realtime.markdown())?;
        anyhow::ensure!(realtime.complete(), "B6 failed: an event did not reach every socket");
    }
    let mut baseline = Server::baseline(bins, dataset, pinning).await?;

    let feed = RequestSpec::post_json(
        "/graphql",
        &json!({ "query": HOME_FEED, "variables": { "first": 20 } }),
        Some(&dataset.token),
    )?;
    let (feed_equivalence, feed_bytes) = compare_feed(&product, &baseline, &feed).await?;
    let typename = RequestSpec::post_json("/graphql", &json!({ "query": "{ __typename }" }), None)?;
    let typename_bytes = check_typename(&product, &baseline, &typename).await?;
    let scaling = |n: u32| {
        RequestSpec::post_json("/graphql", &json!({ "query": SCALING, "variables": { "n": n } }), Some(&dataset.token))
    };
    let (small, large) = (scaling(10)?, scaling(100)?);
    let (small_nodes, small_bytes) = count_nodes(&product, &small).await?;
    let (large_nodes, large_bytes) = count_nodes(&product, &large).await?;

    let mut runs = Vec::new();
    let plan: [(&'static str, &'static str, String, usize, RequestSpec, bool); 6] = [
        ("B1", "mobile-bff", "HomeFeed, first: 20, as @alice".into(), feed_bytes.0, feed.clone(), true),
        ("B1", "baseline", "same body to `/feed` (axum + sqlx)".into(), feed_bytes.1, feed.with_path("/feed"), false),
        ("B3", "mobile-bff", "`{ __typename }`".into(), typename_bytes, typename.clone(), true),
        (
            "B3",
            "baseline",
            "same body to `/typename` (plain axum)".into(),
            typename_bytes,
            typename.with_path("/typename"),
            false,
        ),
        (
            "B4",
            "mobile-bff",
            format!("feed(first: 10) + comments(first: 9): {small_nodes} nodes"),
            small_bytes,
            small,
            true,
        ),
        (
            "B4",
            "mobile-bff",
            format!("feed(first: 100) + comments(first: 9): {large_nodes} nodes"),
            large_bytes,
            large,
            true,
        ),
    ];
    for (bench, server_name, workload, response_bytes, spec, on_product) in plan {
        let server = if on_product { &mut product } else { &mut baseline };
        let result = load::run(server.addr, server.pid(), &spec, config).await?;
        server.ensure_alive()?;
        eprintln!(
            "bench: {bench} {server_name:<10} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  generator CPU {:.0} %",
            result.throughput(),
            result.percentile(0.5).as_secs_f64() * 1000.0,
            result.percentile(0.99).as_secs_f64() * 1000.0,
            result.errors(),
            result.generator_utilisation() * 100.0
        );
        if let Some(failure) = &result.first_failure {
            eprintln!("bench: {bench} {server_name}: first failure: {failure}");
        }
        runs.push(Measured { bench, server: server_name, workload, response_bytes, result });
    }
    Ok((statements, Some(LoadResults { runs, feed_equivalence, scaling_nodes: (small_nodes, large_nodes) })))
}

/// B5/B6/R1 on a product process of their own (per-user connection cap raised, no rate limits).
async fn realtime(
    args: &RunArgs,
    pinning: &Pinning,
    bins: &Binaries,
    dataset: &Dataset,
    backend: &'static str,
) -> anyhow::Result<crate::realtime::RealtimeReport> {
    let limit = crate::realtime::raise_fd_limit();
    let sockets = usize::try_from(args.sockets)?;
    anyhow::ensure!(limit >= args.sockets + 1000, "open-file limit {limit} too low for {sockets} sockets");
    // B6 over distinct users: SPREAD_SOCKETS_PER_USER sockets per user, as many users as
    // the dataset has up to sockets / SPREAD_SOCKETS_PER_USER.
    let spread_users = (sockets / crate::realtime::SPREAD_SOCKETS_PER_USER).min(usize::try_from(args.users)?);
    let settings = [
        ("BFF_REALTIME__MAX_CONNECTIONS_PER_USER", (2 * sockets + 100).to_string()),
        ("BFF_REALTIME__MAX_GROUP_MEMBERS", (spread_users + 10).to_string()),
        ("BFF_RATE_LIMITS__ENABLED", "false".to_owned()),
    ];
    let server = Server::product_with(bins, dataset, pinning, "mobile-bff-realtime", &settings).await?;
    let bob = dataset.token_for(bins, "bob")?;
    let users = if spread_users >= 2 { dataset.tokens_for_first(bins, spread_users)? } else { Vec::new() };
    crate::realtime::measure(&server, &dataset.token, &bob, &users, sockets, backend).await
}

/// `bff_db_statements_total` of the product.
async fn statements_total(product: &Server) -> anyhow::Result<u64> {
    let total = product.metric("bff_db_statements_total").await?;
    total.map(|value| value as u64).context("bff_db_statements_total missing from /metrics")
}

/// B2: statements of one HomeFeed request at each page size.
async fn statement_counts(product: &Server, token: &str) -> anyhow::Result<StatementCounts> {
    let mut counts = StatementCounts::default();
    for first in STATEMENT_PAGES {
        let spec = RequestSpec::post_json(
            "/graphql",
            &json!({ "query": HOME_FEED, "variables": { "first": first } }),
            Some(token),
        )?;
        let before = statements_total(product).await?;
        let (response, _) = http::json_once(product.addr, &spec).await?;
        let after = statements_total(product).await?;
        ensure_no_errors(&response, "HomeFeed")?;
        let edges = edges(&response["data"]["feed"]).len();
        counts.counts.push((first, after.saturating_sub(before), edges));
    }
    Ok(counts)
}

fn ensure_no_errors(response: &Value, what: &str) -> anyhow::Result<()> {
    match response.get("errors") {
        Some(errors) => anyhow::bail!("{what} answered GraphQL errors: {errors}"),
        None => Ok(()),
    }
}

fn edges(connection: &Value) -> &[Value] {
    connection["edges"].as_array().map_or(&[], Vec::as_slice)
}

fn post_ids(response: &Value) -> Vec<&Value> {
    edges(&response["data"]["feed"]).iter().map(|edge| &edge["node"]["id"]).collect()
}

/// B1 check before timing: same edge count and post ids (else the run stops), and whether
/// everything else is equal too. Returns the comparison and both response sizes.
async fn compare_feed(
    product: &Server,
    baseline: &Server,
    feed: &RequestSpec,
) -> anyhow::Result<(Equivalence, (usize, usize))> {
    let (ours, our_bytes) = http::json_once(product.addr, feed).await?;
    let (theirs, their_bytes) = http::json_once(baseline.addr, &feed.with_path("/feed")).await?;
    ensure_no_errors(&ours, "HomeFeed")?;
    let (our_ids, their_ids) = (post_ids(&ours), post_ids(&theirs));
    anyhow::ensure!(!our_ids.is_empty(), "the product's feed is empty: nothing to compare");
    anyhow::ensure!(
        our_ids == their_ids,
        "B1: the baseline returns other posts than the product ({} vs {} edges; ids {our_ids:?} vs {their_ids:?})",
        our_ids.len(),
        their_ids.len()
    );
    let difference = first_difference(&ours, &theirs, "$");
    if let Some(path) = &difference {
        eprintln!("bench: B1 responses differ at {path} (edge count and post ids match)");
    }
    Ok((Equivalence { edges: our_ids.len(), difference }, (our_bytes.len(), their_bytes.len())))
}

/// The first JSON path where `a` and `b` differ (key order ignored).
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                match y.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(value, other, &format!("{path}.{key}")) {
                            return Some(found);
                        }
                    }
                    None => return Some(format!("{path}.{key} (missing in baseline)")),
                }
            }
            y.keys().find(|key| !x.contains_key(*key)).map(|key| format!("{path}.{key} (only in baseline)"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path} ({a} vs {b})")),
    }
}

/// B3 check: the product answers exactly the baseline's bytes.
async fn check_typename(product: &Server, baseline: &Server, typename: &RequestSpec) -> anyhow::Result<usize> {
    let (_, ours) = http::json_once(product.addr, typename).await?;
    let (_, theirs) = http::json_once(baseline.addr, &typename.with_path("/typename")).await?;
    anyhow::ensure!(
        ours.as_ref() == TYPENAME_RESPONSE && theirs.as_ref() == TYPENAME_RESPONSE,
        "B3: responses differ: {} vs {}",
        http::preview(&ours),
        http::preview(&theirs)
    );
    Ok(ours.len())
}

/// B4 check: the response has no errors; returns its nodes (posts + authors + comments) and size.
async fn count_nodes(product: &Server, spec: &RequestSpec) -> anyhow::Result<(usize, usize)> {
    let (response, bytes) = http::json_once(product.addr, spec).await?;
    ensure_no_errors(&response, "B4 query")?;
    let posts = edges(&response["data"]["feed"]);
    let comments: usize = posts.iter().map(|edge| edges(&edge["node"]["comments"]).len()).sum();
    Ok((2 * posts.len() + comments, bytes.len()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn finds_the_first_difference() {
        let a = json!({ "data": { "feed": { "edges": [{ "id": 1, "x": "a" }] } } });
        let b = json!({ "data": { "feed": { "edges": [{ "id": 1, "x": "b" }] } } });
        assert_eq!(super::first_difference(&a, &a, "$"), None);
        assert_eq!(super::first_difference(&a, &b, "$").as_deref(), Some("$.data.feed.edges[0].x (\"a\" vs \"b\")"));
    }
}
