//! `bench`: the benchmark harness of mobile-bff.
//!
//! `bench all` seeds a fixed dataset with the real `mobile-bff` binary, starts the product and
//! a hand-written baseline server as separate processes pinned to one core, drives them from a
//! load generator pinned to another core, and prints every benchmark with its ratio to the
//! baseline measured in the same run (docs/benchmarks.md explains each one). `bench quick` is
//! the CI mode: only the deterministic SQL-statement counts, non-zero exit when violated.
//! `bench baseline-server` is the baseline itself; `all` starts it, nobody else needs to.

mod baseline;
mod http;
mod load;
mod machine;
mod netsim;
mod realtime;
mod report;
mod scenarios;
mod server;
mod transport;
mod upstreams;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "Benchmarks of mobile-bff against hand-written baselines (docs/benchmarks.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every benchmark (B1-B4) and print the table; `--quick` runs only B2.
    All(RunArgs),
    /// CI mode: only B2 (SQL statements per feed query), exits non-zero when violated.
    Quick(RunArgs),
    /// Mobile-network simulation (needs root): the app open over Slow 3G / Slow 4G links
    /// with and without loss, built from network namespaces, tc and nftables.
    Network(netsim::NetworkArgs),
    /// The hand-written baseline server (axum + sqlx); started by `all` as its own process.
    BaselineServer {
        /// The database the product was seeded into (`sqlite://…` or `postgres://…`).
        #[arg(long)]
        database_url: String,
        /// Loopback address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// Options of a benchmark run.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Only the deterministic statement counts (B2), in well under two minutes.
    #[arg(long)]
    pub quick: bool,
    /// Run against PostgreSQL: a fresh database `bff_bench_<random>` is created through this
    /// URL (loopback only) and dropped afterwards.
    #[arg(long, value_name = "URL")]
    pub pg: Option<String>,
    /// Measured seconds per load run (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration: u64,
    /// Unmeasured warm-up seconds before each load run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,
    /// Concurrent connections of the load generator (each sends one request at a time).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Run only B5/B6/R1 (real-time), e.g. while tuning socket memory.
    #[arg(long)]
    pub only_realtime: bool,
    /// WebSocket connections of B5/B6 (0 skips them).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=50_000))]
    pub sockets: u64,
    /// Users in the seeded demo dataset.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub users: u64,
    /// Replace the generated block of this markdown file (between `<!-- bench:begin <backend> -->`
    /// and `<!-- bench:end <backend> -->`) with the results.
    #[arg(long, value_name = "FILE")]
    pub write_docs: Option<PathBuf>,
    /// Directory holding the `mobile-bff` binary (default: next to this binary).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

impl RunArgs {
    /// Measured window of one load run.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// Warm-up before the measured window.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::All(args) => run_benchmarks(args),
        Command::Quick(mut args) => {
            args.quick = true;
            run_benchmarks(args)
        }
        Command::Network(args) => run_network(&args),
        Command::BaselineServer { database_url, listen } => baseline::serve(&database_url, listen).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Like [`run_benchmarks`], for the network simulation: Ctrl-C drops the run, whose guards
/// stop the server and delete the namespaces.
fn run_network(args: &netsim::NetworkArgs) -> anyhow::Result<bool> {
    let pinning = machine::pin_load_generator();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the simulation's runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = netsim::run(args, &pinning) => result,
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                anyhow::bail!("interrupted; server stopped, namespaces deleted")
            }
        }
    })
}

/// Pins this process to the load-generator core, then runs the scenarios on a single-threaded
/// runtime. Ctrl-C drops the run, whose guards kill the servers and drop the database.
fn run_benchmarks(args: RunArgs) -> anyhow::Result<bool> {
    let pinning = machine::pin_load_generator();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the load generator's runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = scenarios::run(&args, &pinning) => result,
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                anyhow::bail!("interrupted; servers stopped")
            }
        }
    })
}
