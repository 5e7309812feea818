//! The network block of docs/benchmarks.md: the links as measured, the requests and bytes of
//! each app-open flow, its time to last byte per profile (median, min–max) and the IP bytes
//! the link carried.

use std::{fmt::Write as _, time::Duration};

use super::{
    ENCODINGS, Flow,
    client::{AppOpen, ProbeResult},
    delay::WireCount,
    link::{KernelCounters, Profile, kbit},
};
use crate::machine::MachineInfo;

/// All app opens of one flow and encoding on one profile.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The flow.
    pub flow: Flow,
    /// `Accept-Encoding`.
    pub encoding: &'static str,
    /// Successful opens.
    pub opens: Vec<AppOpen>,
    /// Opens that failed or timed out.
    pub failures: u32,
    /// The first failure, for diagnosis.
    pub first_failure: Option<String>,
}

impl Cell {
    /// An empty cell.
    pub fn new(flow: Flow, encoding: &'static str) -> Self {
        Self { flow, encoding, opens: Vec::new(), failures: 0, first_failure: None }
    }

    /// Median time to last byte of the successful opens.
    pub fn median_time(&self) -> Option<Duration> {
        median(self.opens.iter().map(|o| o.time_to_last_byte).collect())
    }

    /// Mean time to last byte: unlike the median, it shows the opens that hit a lost packet.
    fn mean_time(&self) -> Option<Duration> {
        let count = u32::try_from(self.opens.len()).ok().filter(|n| *n > 0)?;
        Some(self.opens.iter().map(|o| o.time_to_last_byte).sum::<Duration>() / count)
    }

    fn max_time(&self) -> Option<Duration> {
        self.opens.iter().map(|o| o.time_to_last_byte).max()
    }

    fn median_wire(&self) -> Option<(u64, u64)> {
        Some((
            median(self.opens.iter().map(|o| o.wire.up_bytes).collect())?,
            median(self.opens.iter().map(|o| o.wire.down_bytes).collect())?,
        ))
    }
}

/// One profile's results.
#[derive(Clone, Debug)]
pub struct ProfileResult {
    /// The configuration.
    pub profile: Profile,
    /// The link as measured.
    pub probe: ProbeResult,
    /// Everything the link carried during the profile (probes and opens).
    pub carried: WireCount,
    /// Packets the loss rules dropped: (uplink, downlink).
    pub dropped: (u64, u64),
    /// TCP repairs and device drops during the profile.
    pub kernel: KernelCounters,
    /// One cell per flow and encoding.
    pub cells: Vec<Cell>,
}

impl ProfileResult {
    fn opens(&self) -> impl Iterator<Item = &AppOpen> {
        self.cells.iter().flat_map(|c| c.opens.iter())
    }

    /// Median and maximum server time of an open.
    fn server_times(&self) -> Option<(Duration, Duration)> {
        let times: Vec<Duration> = self.opens().map(|o| o.server).collect();
        Some((median(times.clone())?, times.into_iter().max()?))
    }

    /// How late the delay line delivered a packet at worst.
    fn max_line_lag(&self) -> Duration {
        self.opens().map(|o| o.line_lag).max().unwrap_or_default()
    }

    /// Opens that waited longer than [`SERVER_STALL`] for the server.
    fn server_stalls(&self) -> usize {
        self.opens().filter(|o| o.server > SERVER_STALL).count()
    }
}

/// Server time of an open beyond which it counts as a stall of the machine, not of the link.
const SERVER_STALL: Duration = Duration::from_secs(1);

/// A whole run.
#[derive(Clone, Debug)]
pub struct NetworkReport {
    /// Start, UTC.
    pub date: String,
    /// Reproducing command.
    pub command: String,
    /// Machine.
    pub machine: MachineInfo,
    /// Opens per cell.
    pub repetitions: u64,
    /// Dataset size.
    pub users: u64,
    /// Per profile.
    pub profiles: Vec<ProfileResult>,
    /// Packets the delay line dropped, full or refused by the kernel (0 expected).
    pub line_overflow: u64,
}

impl NetworkReport {
    /// Every app open succeeded.
    pub fn passed(&self) -> bool {
        self.profiles.iter().all(|p| p.cells.iter().all(|c| c.failures == 0 && !c.opens.is_empty()))
    }

    /// The markdown block.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "### Mobile network simulation — {}\n", self.date);
        let _ = writeln!(out, "- command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- machine: {} CPUs, {}, Linux {}, {}; 1-min load average at start: {}",
            m.cpus, m.cpu_model, m.kernel, m.rustc, m.load_average
        );
        let _ = writeln!(out, "- commit: `{}`", m.commit);
        let _ = writeln!(
            out,
            "- app open = `Bootstrap` (viewer) then `HomeFeed` (`first: 20`) as @alice, SQLite, {} users; each open on a \
             fresh TCP connection, plain HTTP/1.1 (no TLS), requests one after the other; {} opens per flow, encoding \
             and profile, interleaved\n",
            self.users, self.repetitions
        );
        out.push_str(&self.links_table());
        out.push('\n');
        out.push_str(&self.bytes_table());
        out.push('\n');
        out.push_str(&self.per_profile_table("time to last byte, ms: median · mean · max", |cell| {
            Some(format!("{} · {} · {}", ms(cell.median_time()?), ms(cell.mean_time()?), ms(cell.max_time()?)))
        }));
        out.push('\n');
        out.push_str(&self.per_profile_table("IP bytes on the link, up / down (median)", |cell| {
            let (up, down) = cell.median_wire()?;
            Some(format!("{up} / {down}"))
        }));
        out.push('\n');
        out.push_str(&self.savings());
        for r in self.profiles.iter().filter(|r| r.server_stalls() > 0) {
            let _ = writeln!(
                out,
                "\n{}: {} open(s) waited more than {} s for the server (a stall of the shared machine, not of the \
                 link: see the server-time column); they are in the means and maxima above.",
                r.profile.name,
                r.server_stalls(),
                SERVER_STALL.as_secs()
            );
        }
        for result in &self.profiles {
            for cell in result.cells.iter().filter(|c| c.failures > 0) {
                let failure = cell.first_failure.as_deref().unwrap_or("?").replace('`', "'").replace('\n', " ");
                let _ = writeln!(
                    out,
                    "\n{} / {} / {}: {} of {} opens FAILED; first failure: `{failure}`",
                    result.profile.name,
                    cell.flow.label(),
                    cell.encoding,
                    cell.failures,
                    self.repetitions
                );
            }
        }
        if self.line_overflow > 0 {
            let _ = writeln!(
                out,
                "\nThe delay line dropped {} packets (full, or refused by the kernel).",
                self.line_overflow
            );
        }
        out
    }

    fn links_table(&self) -> String {
        let mut out = String::from(
            "| profile | configured | tiny request RTT (median) | goodput down | goodput up | packets lost up / down | TCP \
             retransmissions client / edge (timeouts) | device drops | delay line late by (max) | server time per open \
             (median · max) |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for r in &self.profiles {
            let share = |dropped: u64, carried: u64| {
                if carried == 0 {
                    "—".to_owned()
                } else {
                    format!("{:.1} %", dropped as f64 * 100.0 / carried as f64)
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} ms | {} | {} | {} / {} | {} / {} ({} / {}) | {} | {:.1} ms | {} |",
                r.profile.name,
                r.profile.describe(),
                ms(r.probe.tiny_request_rtt),
                kbit((r.probe.down_bps / 1000.0).round() as u64),
                kbit((r.probe.up_bps / 1000.0).round() as u64),
                share(r.dropped.0, r.carried.up_packets),
                share(r.dropped.1, r.carried.down_packets),
                r.kernel.retransmitted.0,
                r.kernel.retransmitted.1,
                r.kernel.timeouts.0,
                r.kernel.timeouts.1,
                r.kernel.device_drops,
                r.max_line_lag().as_secs_f64() * 1000.0,
                r.server_times().map_or("—".to_owned(), |(median, max)| format!("{} · {} ms", ms(median), ms(max))),
            );
        }
        out
    }

    /// Requests and HTTP bytes do not depend on the link: taken from the reference profile.
    fn bytes_table(&self) -> String {
        let mut out = String::from(
            "| app open | Accept-Encoding | requests | round trips (TCP handshake + requests) | HTTP bytes up | HTTP bytes \
             down |\n|---|---|--:|--:|--:|--:|\n",
        );
        let Some(reference) = self.profiles.first() else { return out };
        for cell in &reference.cells {
            let Some(open) = cell.opens.first() else { continue };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell.flow.label(),
                cell.encoding,
                open.requests,
                open.requests + 1,
                open.http_up,
                open.http_down
            );
        }
        out
    }

    fn per_profile_table(&self, what: &str, value: impl Fn(&Cell) -> Option<String>) -> String {
        let mut out = format!("| app open ({what}) | Accept-Encoding |");
        let mut rule = String::from("|---|---|");
        for r in &self.profiles {
            let _ = write!(out, " {} |", r.profile.name);
            rule.push_str("--:|");
        }
        let _ = writeln!(out, "\n{rule}");
        for flow in Flow::ALL {
            for encoding in ENCODINGS {
                let _ = write!(out, "| {} | {encoding} |", flow.label());
                for r in &self.profiles {
                    let cell = r.cells.iter().find(|c| c.flow == flow && c.encoding == encoding);
                    let text = cell.and_then(&value).unwrap_or_else(|| "FAILED".to_owned());
                    let failed = cell.map_or(0, |c| c.failures);
                    let note = if failed > 0 { format!(" ({failed} failed)") } else { String::new() };
                    let _ = write!(out, " {text}{note} |");
                }
                out.push('\n');
            }
        }
        out
    }

    /// One line per shaped profile: the warm 304 open against the cold ones (br unless said).
    fn savings(&self) -> String {
        let mut out = String::new();
        for r in self.profiles.iter().skip(1) {
            let find = |flow: Flow, encoding: &str| r.cells.iter().find(|c| c.flow == flow && c.encoding == encoding);
            let time = |flow: Flow, encoding: &str| find(flow, encoding).and_then(Cell::median_time);
            let wire = |flow: Flow| find(flow, "br").and_then(Cell::median_wire).map(|(up, down)| up + down);
            let (Some(warm), Some(text), Some(plain), Some(apq)) = (
                time(Flow::WarmUnchanged, "br"),
                time(Flow::ColdText, "br"),
                time(Flow::ColdText, "identity"),
                time(Flow::ColdApq, "br"),
            ) else {
                continue;
            };
            let (Some(warm_wire), Some(text_wire)) = (wire(Flow::WarmUnchanged), wire(Flow::ColdText)) else {
                continue;
            };
            let ratio = |other: Duration| warm.as_secs_f64() / other.as_secs_f64().max(1e-9);
            let _ = writeln!(
                out,
                "- {}: warm open (304) {} ms = {:.2}× the cold text open ({} ms), {:.2}× the uncompressed one ({} ms), \
                 {:.2}× the APQ first launch ({} ms); IP bytes {} vs {} for the cold text open ({:.2}×).",
                r.profile.name,
                ms(warm),
                ratio(text),
                ms(text),
                ratio(plain),
                ms(plain),
                ratio(apq),
                ms(apq),
                warm_wire,
                text_wire,
                warm_wire as f64 / (text_wire as f64).max(1.0)
            );
        }
        out
    }
}

fn median<T: Ord + Copy>(mut values: Vec<T>) -> Option<T> {
    values.sort();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// Milliseconds: one decimal below 100 ms (the reference link), none above.
fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 100.0 { format!("{millis:.1}") } else { format!("{millis:.0}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_lower_middle() {
        assert_eq!(median(vec![3, 1, 2]), Some(2));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
        assert_eq!(median(Vec::<u32>::new()), None);
    }
}
