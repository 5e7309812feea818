//! `bench network`: the app-open flow over simulated mobile links (docs/benchmarks.md,
//! "Mobile network simulation").
//!
//! The product runs on loopback with the seeded dataset; a client thread in its own network
//! namespace reaches it through a link whose delay comes from a userspace delay line
//! ([`delay`]), bandwidth from `tc tbf` and loss from nftables ([`link`]), and a relay at the
//! far end ([`edge`]). For each profile the link is first measured (RTT, goodput, loss), then
//! every app-open flow is run `--repetitions` times in each encoding, each time on a fresh
//! TCP connection, and the medians are written as the `network` block of the docs.
//!
//! App open = the `Bootstrap` viewer query below, then `HomeFeed` (`first: 20`), as `@alice`:
//!
//! - **cold, query text**: both as `POST` with the full text (a client without persisted
//!   queries, or any first request of one);
//! - **first launch, APQ**: each `GET` by sha256 id → `PERSISTED_QUERY_NOT_FOUND`, then `POST`
//!   id + text (Apollo's APQ link; the text carries a per-open comment so the id is new);
//! - **warm, data changed**: each `GET` by a known id → 200 with the full response;
//! - **warm, nothing changed**: each `GET` by id with `If-None-Match` → 304, no body.

mod client;
mod delay;
mod edge;
mod link;
mod report;

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser as _;
use hyper::{
    StatusCode,
    header::{self, HeaderValue},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use self::{
    client::{Client, Expect, Step},
    edge::Edge,
    link::{Link, Profile},
    report::{Cell, NetworkReport, ProfileResult},
};
use crate::{
    RunArgs,
    http::{self, RequestSpec},
    machine::{MachineInfo, Pinning},
    server::{Binaries, Dataset, Server},
    transport::{HOME_FEED, hex, query_string},
};

/// The bootstrap-style query an app sends first: who is signed in, for the shell and tab bar.
const BOOTSTRAP: &str = "# App start: the signed-in user for the shell, tab bar and profile tab.
query Bootstrap {
  viewer {
    id
    handle
    displayName
    bio
    avatarUrl
    followerCount
    followingCount
    postCount
  }
}
";

/// Options of `bench network`.
#[derive(clap::Args, Clone, Debug)]
pub struct NetworkArgs {
    /// App opens per flow, encoding and profile, each on a fresh TCP connection.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub repetitions: u64,
    /// Users in the seeded demo dataset (the default matches `bench all`).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub users: u64,
    /// Only these profiles (by name, e.g. `--profile "Slow 3G"`; repeatable). The reference
    /// profile always runs first: the bytes table comes from it.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Replace the `<!-- bench:begin network -->` block of this markdown file with the results.
    #[arg(long, value_name = "FILE")]
    pub write_docs: Option<PathBuf>,
    /// Directory holding the `mobile-bff` binary (default: next to this binary).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// `bench all`'s options, to seed the same dataset.
#[derive(clap::Parser)]
struct DatasetOptions {
    #[command(flatten)]
    run: RunArgs,
}

/// The profiles, in table order. Rates and RTTs are Chrome DevTools' presets named in the issue.
const PROFILES: [Profile; 5] = [
    Profile { name: "no shaping (reference)", down_kbit: None, up_kbit: None, rtt: Duration::ZERO, loss_percent: 0 },
    Profile {
        name: "Slow 3G",
        down_kbit: Some(400),
        up_kbit: Some(400),
        rtt: Duration::from_millis(400),
        loss_percent: 0,
    },
    Profile {
        name: "Slow 3G + 2 % loss",
        down_kbit: Some(400),
        up_kbit: Some(400),
        rtt: Duration::from_millis(400),
        loss_percent: 2,
    },
    Profile {
        name: "Slow 4G",
        down_kbit: Some(1440),
        up_kbit: Some(675),
        rtt: Duration::from_millis(150),
        loss_percent: 0,
    },
    Profile {
        name: "Slow 4G + 2 % loss",
        down_kbit: Some(1440),
        up_kbit: Some(675),
        rtt: Duration::from_millis(150),
        loss_percent: 2,
    },
];

/// The app-open variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Both queries as POST with their text.
    ColdText,
    /// APQ miss then registration, for both.
    ColdApq,
    /// GET by known id, full responses.
    WarmChanged,
    /// GET by id with If-None-Match, 304s.
    WarmUnchanged,
}

impl Flow {
    /// All, in table order.
    pub const ALL: [Flow; 4] = [Flow::ColdText, Flow::ColdApq, Flow::WarmChanged, Flow::WarmUnchanged];

    /// Label for the tables.
    pub fn label(self) -> &'static str {
        match self {
            Flow::ColdText => "cold: POST query text",
            Flow::ColdApq => "first launch, APQ: GET id → miss, POST id + text",
            Flow::WarmChanged => "warm, data changed: GET id → 200",
            Flow::WarmUnchanged => "warm, nothing changed: GET id + If-None-Match → 304",
        }
    }
}

/// `Accept-Encoding` values compared.
pub const ENCODINGS: [&str; 2] = ["identity", "br"];

/// Link probe: tiny requests timed per profile.
const RTT_SAMPLES: usize = 5;
/// Link probe: seconds of bulk transfer at the configured rate.
const PROBE_SECONDS: u64 = 3;
/// Link probe: bytes each way when the link is not shaped.
const UNSHAPED_PROBE_BYTES: u64 = 4 * 1024 * 1024;

/// Runs the simulation; true when every app open succeeded.
pub async fn run(args: &NetworkArgs, pinning: &Pinning) -> anyhow::Result<bool> {
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let machine = MachineInfo::collect(&bins.repo);
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    // The link first: no root or no nft fails before the slow seeding.
    let link = Link::create()?;
    // The dataset options of `bench all` with their defaults (parsed, so new options keep theirs).
    let users = args.users.to_string();
    let run_args = DatasetOptions::try_parse_from(["network", "--users", users.as_str()])?.run;
    let mut dataset = Dataset::prepare(&bins, &run_args).await?;
    let measured = measure(args, pinning, &bins, &dataset, &link).await;
    let cleanup = dataset.cleanup().await;
    drop(link);
    let (profiles, overflow) = measured?;
    cleanup?;

    let report = NetworkReport {
        date,
        command: std::env::var("BENCH_COMMAND").unwrap_or_else(|_| "target/release/bench network".to_owned()),
        machine,
        repetitions: args.repetitions,
        users: args.users,
        profiles,
        line_overflow: overflow,
    };
    let markdown = report.markdown();
    println!("{markdown}");
    crate::report::write_block(args.write_docs.as_deref(), "network", &markdown)?;
    if let Some(path) = &args.write_docs {
        eprintln!("bench: wrote the network block of {}", path.display());
    }
    Ok(report.passed())
}

async fn measure(
    args: &NetworkArgs,
    pinning: &Pinning,
    bins: &Binaries,
    dataset: &Dataset,
    link: &Link,
) -> anyhow::Result<(Vec<ProfileResult>, u64)> {
    let mut product = Server::product(bins, dataset, pinning).await?;
    let material = Material::prepare(&product, &dataset.token).await?;
    let edge = Edge::start(product.addr)?;
    let client = Client::spawn(edge.relay, edge.sink, link.line.state.clone(), edge.server_nanos.clone())?;
    let mut results = Vec::new();
    let mut nonce = 0u32;
    let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    for wanted in &args.profiles {
        anyhow::ensure!(names.contains(&wanted.as_str()), "unknown profile {wanted:?}; known: {names:?}");
    }
    let selected = PROFILES
        .into_iter()
        .enumerate()
        .filter(|(i, p)| *i == 0 || args.profiles.is_empty() || args.profiles.iter().any(|n| n == p.name));
    for (_, profile) in selected {
        link.apply(&profile)?;
        let before = link.line.state.count();
        let probe_bytes = |rate: Option<u64>| rate.map_or(UNSHAPED_PROBE_BYTES, |kbit| kbit * 1000 / 8 * PROBE_SECONDS);
        let probe = client
            .probe(RTT_SAMPLES, probe_bytes(profile.down_kbit), probe_bytes(profile.up_kbit))
            .await
            .with_context(|| format!("probing {}", profile.name))?;
        eprintln!(
            "bench: {}: tiny request {:.0} ms, goodput {:.0} kbit/s down, {:.0} kbit/s up",
            profile.name,
            probe.tiny_request_rtt.as_secs_f64() * 1000.0,
            probe.down_bps / 1000.0,
            probe.up_bps / 1000.0
        );
        // TCP's repairs of the app opens only (a bulk probe may overflow the link's queue).
        let kernel_before = link.kernel_counters()?;
        let mut cells: Vec<Cell> =
            Flow::ALL.iter().flat_map(|flow| ENCODINGS.iter().map(|encoding| Cell::new(*flow, encoding))).collect();
        for _ in 0..args.repetitions {
            for cell in &mut cells {
                nonce += 1;
                let steps = material.steps(cell.flow, cell.encoding, nonce)?;
                match client.app_open(steps).await {
                    Ok(open) => {
                        // Opens much slower than the fastest so far: say what the link carried.
                        let fastest = cell.opens.iter().map(|o| o.time_to_last_byte).min();
                        if fastest.is_some_and(|f| open.time_to_last_byte > f + f / 4) {
                            eprintln!(
                                "bench: {} / {} / {}: slow open, {:.0} ms ({:.0} ms of it the server's, delay line \
                                 at most {:.1} ms late), {} / {} packets up / down, connected and responses complete at \
                                 {:?} ms",
                                profile.name,
                                cell.flow.label(),
                                cell.encoding,
                                open.time_to_last_byte.as_secs_f64() * 1000.0,
                                open.server.as_secs_f64() * 1000.0,
                                open.line_lag.as_secs_f64() * 1000.0,
                                open.wire.up_packets,
                                open.wire.down_packets,
                                open.marks.iter().map(|m| m.as_millis()).collect::<Vec<_>>()
                            );
                        }
                        cell.opens.push(open);
                    }
                    Err(err) => {
                        eprintln!("bench: {} / {} / {}: {err:#}", profile.name, cell.flow.label(), cell.encoding);
                        cell.failures += 1;
                        cell.first_failure.get_or_insert_with(|| format!("{err:#}"));
                    }
                }
            }
            product.ensure_alive()?;
        }
        let carried = link.line.state.count().since(&before);
        let dropped = link.dropped_packets()?;
        let kernel = link.kernel_counters()?.since(&kernel_before);
        for cell in &cells {
            if let Some(median) = cell.median_time() {
                eprintln!(
                    "bench: {}: {} / {}: median {:.0} ms",
                    profile.name,
                    cell.flow.label(),
                    cell.encoding,
                    median.as_secs_f64() * 1000.0
                );
            }
        }
        results.push(ProfileResult { profile, probe, carried, dropped, kernel, cells });
    }
    Ok((results, link.line.state.overflow()))
}

/// One query of the app open.
struct Document {
    text: String,
    /// `variables`, when the query has any.
    variables: Option<Value>,
    /// sha256 of `text`, hex.
    id: String,
}

/// Requests of every flow, and the ETags a warm app holds (per document and encoding).
struct Material {
    token: String,
    documents: [Document; 2],
    /// `etags[document][encoding]`.
    etags: Vec<Vec<String>>,
}

impl Material {
    /// Registers both documents with the product (so the warm flows find them), checks they
    /// answer data, and records their ETags — over loopback, before any simulation.
    async fn prepare(product: &Server, token: &str) -> anyhow::Result<Self> {
        let document = |text: &str, variables: Option<Value>| Document {
            text: text.to_owned(),
            variables,
            id: hex(&Sha256::digest(text.as_bytes())),
        };
        let documents = [document(BOOTSTRAP, None), document(HOME_FEED, Some(json!({ "first": 20 })))];
        let mut material = Self { token: token.to_owned(), documents, etags: Vec::new() };
        for index in 0..material.documents.len() {
            let document = &material.documents[index];
            let register =
                material.post(&document.text, Some(&document.id), document.variables.as_ref(), "identity")?;
            let (response, _) = http::json_once(product.addr, &register).await?;
            anyhow::ensure!(response.get("errors").is_none(), "registering a document answered {response}");
            let mut etags = Vec::new();
            for encoding in ENCODINGS {
                let spec = material.get(document, encoding, None)?;
                let (status, headers, _) = http::exchange_once(product.addr, &spec).await?;
                anyhow::ensure!(status == StatusCode::OK, "GET by id ({encoding}) answered {status}");
                let etag = headers.get(header::ETAG).context("GET by id answered no ETag")?.to_str()?.to_owned();
                let revalidate = material.get(document, encoding, Some(&etag))?;
                let (status, _, _) = http::exchange_once(product.addr, &revalidate).await?;
                anyhow::ensure!(status == StatusCode::NOT_MODIFIED, "If-None-Match ({encoding}) answered {status}");
                etags.push(etag);
            }
            material.etags.push(etags);
        }
        Ok(material)
    }

    /// The requests of one app open.
    fn steps(&self, flow: Flow, encoding: &str, nonce: u32) -> anyhow::Result<Vec<Step>> {
        let mut steps = Vec::new();
        for (index, document) in self.documents.iter().enumerate() {
            let variables = document.variables.as_ref();
            match flow {
                Flow::ColdText => {
                    steps.push(Step {
                        spec: self.post(&document.text, None, variables, encoding)?,
                        expect: Expect::Data,
                    });
                }
                Flow::ColdApq => {
                    // A comment makes the text, so the id, new to the server; same length every time.
                    let text = format!("{}# launch {nonce:08x}\n", document.text);
                    let id = hex(&Sha256::digest(text.as_bytes()));
                    let fresh = Document { text, variables: document.variables.clone(), id };
                    steps
                        .push(Step { spec: self.get(&fresh, encoding, None)?, expect: Expect::PersistedQueryNotFound });
                    let register = self.post(&fresh.text, Some(&fresh.id), variables, encoding)?;
                    steps.push(Step { spec: register, expect: Expect::Data });
                }
                Flow::WarmChanged => {
                    steps.push(Step { spec: self.get(document, encoding, None)?, expect: Expect::Data })
                }
                Flow::WarmUnchanged => {
                    let etag = self.etag(index, encoding)?;
                    steps.push(Step { spec: self.get(document, encoding, Some(etag))?, expect: Expect::NotModified });
                }
            }
        }
        Ok(steps)
    }

    fn etag(&self, document: usize, encoding: &str) -> anyhow::Result<&str> {
        let at = ENCODINGS.iter().position(|e| *e == encoding).context("unknown encoding")?;
        Ok(self.etags.get(document).and_then(|e| e.get(at)).context("no ETag recorded")?.as_str())
    }

    /// `POST /graphql` with the text (and the APQ id when registering).
    fn post(
        &self,
        text: &str,
        id: Option<&str>,
        variables: Option<&Value>,
        encoding: &str,
    ) -> anyhow::Result<RequestSpec> {
        let mut body = json!({ "query": text });
        if let Some(id) = id {
            body["extensions"] = json!({ "persistedQuery": { "version": 1, "sha256Hash": id } });
        }
        if let Some(variables) = variables {
            body["variables"] = variables.clone();
        }
        let mut spec = RequestSpec::post_json("/graphql", &body, Some(&self.token))?;
        spec.headers.push((header::ACCEPT_ENCODING, HeaderValue::from_str(encoding)?));
        Ok(spec)
    }

    /// `GET /graphql?extensions=…&variables=…` by id, as transport.rs builds it.
    fn get(&self, document: &Document, encoding: &str, if_none_match: Option<&str>) -> anyhow::Result<RequestSpec> {
        let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": document.id } }).to_string();
        let mut pairs = vec![("extensions", extensions)];
        if let Some(variables) = &document.variables {
            pairs.push(("variables", variables.to_string()));
        }
        let mut spec = RequestSpec::get(&format!("/graphql?{}", query_string(&pairs)));
        spec.headers.push((header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", self.token))?));
        spec.headers.push((header::ACCEPT_ENCODING, HeaderValue::from_str(encoding)?));
        if let Some(etag) = if_none_match {
            spec.headers.push((header::IF_NONE_MATCH, HeaderValue::from_str(etag)?));
        }
        Ok(spec)
    }
}
