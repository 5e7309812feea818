//! Results as markdown: the measurement table (one row per server and workload), the ratio
//! table (each benchmark against its baseline from the same run, with its target), and the
//! generated block of docs/benchmarks.md between `<!-- bench:begin <backend> -->` and
//! `<!-- bench:end <backend> -->` (the prose around it is hand-written; numbers never are).

use std::{fmt::Write as _, path::Path};

use anyhow::Context;

use crate::{load::LoadResult, machine::MachineInfo};

/// Statements the feed screen may cost (README, ARCHITECTURE, tests/integration/feed.rs).
pub const MAX_FEED_STATEMENTS: u64 = 5;

/// Everything a run knows about where and how it ran.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Start of the run, UTC.
    pub date: String,
    /// The command that reproduces the run.
    pub command: String,
    /// Machine description.
    pub machine: MachineInfo,
    /// Pinning summary.
    pub pinning: String,
    /// Load settings summary.
    pub load: String,
}

/// B2: SQL statements of one HomeFeed request at each page size.
#[derive(Clone, Debug, Default)]
pub struct StatementCounts {
    /// (`first`, statements, edges returned).
    pub counts: Vec<(usize, u64, usize)>,
}

impl StatementCounts {
    /// Constant across page sizes and at most [`MAX_FEED_STATEMENTS`].
    pub fn ok(&self) -> bool {
        let first = self.counts.first().map(|c| c.1);
        !self.counts.is_empty() && self.counts.iter().all(|c| Some(c.1) == first && c.1 <= MAX_FEED_STATEMENTS)
    }

    fn summary(&self) -> String {
        let pages: Vec<String> = self.counts.iter().map(|c| c.0.to_string()).collect();
        let statements: Vec<String> = self.counts.iter().map(|c| c.1.to_string()).collect();
        format!("first = {} → {} statements", pages.join(" / "), statements.join(" / "))
    }
}

/// One load run of one server.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Benchmark id (`B1`, …).
    pub bench: &'static str,
    /// `mobile-bff` or `baseline`.
    pub server: &'static str,
    /// What was requested.
    pub workload: String,
    /// Response size in bytes (from the verification request).
    pub response_bytes: usize,
    /// The numbers.
    pub result: LoadResult,
}

/// Whether the baseline's feed JSON equals the product's.
#[derive(Clone, Debug)]
pub struct Equivalence {
    /// Edges in both responses.
    pub edges: usize,
    /// First differing JSON path, if any (post ids and edge counts always match, else the run
    /// stops before timing).
    pub difference: Option<String>,
}

/// The full run (everything but B2).
#[derive(Clone, Debug)]
pub struct LoadResults {
    /// B1 product, B1 baseline, B3 product, B3 baseline, B4 small, B4 large.
    pub runs: Vec<Measured>,
    /// B1 response comparison.
    pub feed_equivalence: Equivalence,
    /// B4 nodes (posts + authors + comments) of the small and the large response.
    pub scaling_nodes: (usize, usize),
}

/// A run's report.
#[derive(Clone, Debug)]
pub struct Report {
    /// Where and how.
    pub context: RunContext,
    /// B2.
    pub statements: StatementCounts,
    /// B1, B3, B4 (absent in quick mode).
    pub loads: Option<LoadResults>,
}

impl Report {
    /// False when a number must not be trusted (errors) or B2 is violated; missed targets
    /// are reported but do not fail the run.
    pub fn passed(&self) -> bool {
        self.statements.ok() && self.loads.as_ref().is_none_or(|l| l.runs.iter().all(|m| !m.result.failed()))
    }

    /// The markdown block: context, measurements, ratios, notes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let c = &self.context;
        let m = &c.machine;
        let backend = if c.backend == "sqlite" { "SQLite (embedded)" } else { "PostgreSQL (cluster mode)" };
        let _ = writeln!(out, "### {backend} — {}\n", c.date);
        let _ = writeln!(out, "- command: `{}`", c.command);
        let _ = writeln!(
            out,
            "- machine: {} CPUs, {}, Linux {}, {}; 1-min load average at start: {}",
            m.cpus, m.cpu_model, m.kernel, m.rustc, m.load_average
        );
        let _ = writeln!(out, "- commit: `{}`", m.commit);
        let _ = writeln!(out, "- pinning: {}", c.pinning);
        let _ = writeln!(out, "- load: {}\n", c.load);
        if let Some(loads) = &self.loads {
            out.push_str(&measurement_table(&loads.runs));
            out.push('\n');
        }
        out.push_str(&self.ratio_table());
        if let Some(loads) = &self.loads {
            out.push('\n');
            match &loads.feed_equivalence.difference {
                None => {
                    let _ = writeln!(
                        out,
                        "B1 check: the baseline's JSON equals the product's ({} edges, same post ids, same values).",
                        loads.feed_equivalence.edges
                    );
                }
                Some(path) => {
                    let _ = writeln!(
                        out,
                        "B1 check: same {} edges and post ids; first other difference at `{path}`.",
                        loads.feed_equivalence.edges
                    );
                }
            }
            for m in loads.runs.iter().filter(|m| m.result.failed()) {
                let failure = m.result.first_failure.as_deref().unwrap_or("no successful request");
                let _ = writeln!(
                    out,
                    "\n{} {} FAILED; first failure: `{}`",
                    m.bench,
                    m.server,
                    failure.replace('`', "'").replace('\n', " ")
                );
            }
            let generator_bound = loads.runs.iter().filter(|r| r.result.generator_utilisation() > 0.9).count();
            if generator_bound > 0 {
                let _ = writeln!(
                    out,
                    "\n{generator_bound} run(s) kept the load generator's core above 90 %: those are client-bound, \
                     their server numbers are a lower bound."
                );
            }
        }
        out
    }

    fn ratio_table(&self) -> String {
        let mut out = String::from("| benchmark | measured (same run) | target | result |\n|---|---|---|---|\n");
        if let Some(loads) = &self.loads {
            let run = |bench: &str, server: &str| loads.runs.iter().find(|m| m.bench == bench && m.server == server);
            if let (Some(p), Some(b)) = (run("B1", "mobile-bff"), run("B1", "baseline")) {
                row_ratio(
                    &mut out,
                    "B1 feed screen: throughput vs baseline",
                    p,
                    b,
                    |r| r.throughput(),
                    "≥ 0.5×",
                    |x| x >= 0.5,
                );
                row_ratio(
                    &mut out,
                    "B1 feed screen: p99 vs baseline",
                    p,
                    b,
                    |r| secs(r.percentile(0.99)),
                    "≤ 1.5×",
                    |x| x <= 1.5,
                );
                row_ratio(
                    &mut out,
                    "B1 feed screen: CPU per request vs baseline",
                    p,
                    b,
                    LoadResult::cpu_per_1k,
                    "—",
                    |_| true,
                );
            }
            row_statements(&mut out, &self.statements);
            if let (Some(p), Some(b)) = (run("B3", "mobile-bff"), run("B3", "baseline")) {
                row_ratio(
                    &mut out,
                    "B3 GraphQL overhead: throughput vs plain axum",
                    p,
                    b,
                    |r| r.throughput(),
                    "≥ 0.7×",
                    |x| x >= 0.7,
                );
            }
            let scaling: Vec<&Measured> = loads.runs.iter().filter(|m| m.bench == "B4").collect();
            if let [small, large] = scaling.as_slice() {
                let (n_small, n_large) = loads.scaling_nodes;
                let label = format!("B4 scaling: p50 at {n_large} vs {n_small} nodes");
                row_ratio(&mut out, &label, large, small, |r| secs(r.percentile(0.5)), "≤ 10×", |x| x <= 10.0);
            }
        } else {
            row_statements(&mut out, &self.statements);
        }
        out.push_str("| B5/B6 real-time (WebSocket) | see the B5/B6 block below | ≤ 16 KB, ≤ 200 ms | — |\n");
        out.push_str("| mobile-network simulation | separate run (root): `bash bench/run.sh --network`, its own block | — | — |\n");
        out
    }

    /// Replaces this backend's generated block in `path`.
    pub fn write_docs(&self, path: &Path) -> anyhow::Result<()> {
        write_block(Some(path), self.context.backend, &self.markdown())
    }
}

/// Replaces the lines between the marker lines `<!-- bench:begin <name> -->` and
/// `<!-- bench:end <name> -->` (each alone on its line, exactly once; markers quoted inside
/// prose are left alone).
/// Replaces the generated block `name` of the markdown file at `path` (when one is given).
pub(crate) fn write_block(path: Option<&Path>, name: &str, content: &str) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let updated = replace_block(&text, name, content).with_context(|| format!("updating {}", path.display()))?;
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn replace_block(text: &str, name: &str, content: &str) -> anyhow::Result<String> {
    let begin = format!("<!-- bench:begin {name} -->");
    let end = format!("<!-- bench:end {name} -->");
    let lines: Vec<&str> = text.lines().collect();
    let find = |marker: &str| -> anyhow::Result<usize> {
        let at: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.trim() == marker).map(|(i, _)| i).collect();
        match at.as_slice() {
            [one] => Ok(*one),
            [] => anyhow::bail!("no line `{marker}`"),
            _ => anyhow::bail!("`{marker}` appears on {} lines", at.len()),
        }
    };
    let (first, last) = (find(&begin)?, find(&end)?);
    anyhow::ensure!(first < last, "`{end}` comes before `{begin}`");
    let mut out: Vec<String> = lines[..=first].iter().map(|l| (*l).to_owned()).collect();
    out.push("<!-- generated by `bench all --write-docs`; do not edit by hand -->".to_owned());
    out.push(String::new());
    out.extend(content.trim_end().lines().map(str::to_owned));
    out.push(String::new());
    out.extend(lines[last..].iter().map(|l| (*l).to_owned()));
    Ok(out.join("\n") + "\n")
}

fn secs(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64()
}

fn ms(duration: std::time::Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

pub(crate) fn measurement_table(runs: &[Measured]) -> String {
    let mut out = String::from(
        "| # | server | workload | req/s | p50 ms | p99 ms | server CPU s / 1k req | server peak RSS MiB | \
         response bytes | errors | generator CPU |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for m in runs {
        let r = &m.result;
        let rss = match r.server_peak_rss_kib {
            Some(kib) => format!("{:.1}{}", kib as f64 / 1024.0, if r.peak_rss_reset { "" } else { " (lifetime)" }),
            None => "n/a".to_owned(),
        };
        if r.failed() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | FAILED | — | — | — | {rss} | {} | {} non-200, {} GraphQL errors, {} transport | {:.0} % |",
                m.bench,
                m.server,
                m.workload,
                m.response_bytes,
                r.non_200,
                r.graphql_errors,
                r.transport_errors,
                r.generator_utilisation() * 100.0
            );
        } else {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {:.3} | {rss} | {} | 0 | {:.0} % |",
                m.bench,
                m.server,
                m.workload,
                r.throughput(),
                ms(r.percentile(0.5)),
                ms(r.percentile(0.99)),
                r.cpu_per_1k(),
                m.response_bytes,
                r.generator_utilisation() * 100.0
            );
        }
    }
    out
}

fn row_ratio(
    out: &mut String,
    label: &str,
    subject: &Measured,
    reference: &Measured,
    metric: impl Fn(&LoadResult) -> f64,
    target: &str,
    meets: impl Fn(f64) -> bool,
) {
    if subject.result.failed() || reference.result.failed() {
        let _ = writeln!(out, "| {label} | n/a: a run had errors | {target} | FAILED |");
        return;
    }
    let ratio = metric(&subject.result) / metric(&reference.result).max(f64::MIN_POSITIVE);
    let verdict = if target == "—" {
        "(info)"
    } else if meets(ratio) {
        "met"
    } else {
        "**missed**"
    };
    let _ = writeln!(out, "| {label} | {ratio:.2}× | {target} | {verdict} |");
}

fn row_statements(out: &mut String, counts: &StatementCounts) {
    let verdict = if counts.ok() { "met" } else { "**VIOLATED**" };
    let _ = writeln!(
        out,
        "| B2 SQL statements per feed query | {} | constant, ≤ {MAX_FEED_STATEMENTS} | {verdict} |",
        counts.summary()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_marked_block_of_its_backend() {
        let doc = "intro `<!-- bench:begin sqlite -->` quoted\n<!-- bench:begin sqlite -->\nold\n<!-- bench:end sqlite -->\n\
                   <!-- bench:begin postgres -->\npg\n<!-- bench:end postgres -->\n";
        let updated = replace_block(doc, "sqlite", "new\n").expect("replaced");
        assert!(updated.starts_with("intro `<!-- bench:begin sqlite -->` quoted\n<!-- bench:begin sqlite -->\n"));
        assert!(updated.contains("\nnew\n") && !updated.contains("old") && updated.contains("\npg\n"));
        assert!(replace_block(&updated, "sqlite", "again").expect("idempotent markers").contains("again"));
        assert!(replace_block(doc, "mysql", "x").is_err());
    }

    #[test]
    fn statement_counts_must_be_constant_and_small() {
        assert!(StatementCounts { counts: vec![(1, 5, 1), (20, 5, 20), (100, 5, 100)] }.ok());
        assert!(!StatementCounts { counts: vec![(1, 5, 1), (20, 6, 20)] }.ok());
        assert!(!StatementCounts { counts: vec![(1, 6, 1), (20, 6, 20)] }.ok());
        assert!(!StatementCounts::default().ok());
    }
}
