//! The simulated mobile link: two network namespaces joined by the delay line.
//!
//! ```text
//!  netns bffnet-client                 this process (root netns)              netns bffnet-edge
//!  client ── bffnet-c (10.203.0.2) ═══ delay line: RTT/2 each way ═══ bffnet-e (10.203.0.1) ── relay ─→ 127.0.0.1 mobile-bff
//!            egress: tbf (uplink)                                       egress: tbf (downlink)
//!            ingress: nft drop (downlink loss)                          ingress: nft drop (uplink loss)
//! ```
//!
//! Both devices are TUN devices created by this process and moved into their namespace, so
//! they vanish with it. Bandwidth is `tc tbf` on each device's egress; loss is an nftables
//! `numgen random` drop rule in prerouting on each receiving side (a drop on the sender's
//! output path would be reported back to TCP as a local error, not lost on the air). Nothing
//! is configured in the root namespace. [`Link`] holds a lock file for the run, deletes
//! leftovers of a killed run at start and deletes its namespaces when dropped (error, panic,
//! Ctrl-C).

use std::{
    fs::File,
    io::Write as _,
    net::Ipv4Addr,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
    process::{Command, Stdio},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;

use super::delay::{DelayLine, create_tun};

/// Namespace of the client (the phone).
pub const CLIENT_NS: &str = "bffnet-client";
/// Namespace of the server side (the edge relay).
pub const EDGE_NS: &str = "bffnet-edge";
/// The client's TUN device.
const CLIENT_DEV: &str = "bffnet-c";
/// The edge's TUN device.
const EDGE_DEV: &str = "bffnet-e";
/// The client's address (a private /30 of our own: 10.203.0.0/30).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 2);
/// The edge's address.
pub const EDGE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 1);
/// Held (flock) for the whole run: two simulations would fight over the names.
const LOCK_FILE: &str = "/run/bffnet.lock";
/// nftables table this harness owns in each namespace.
const NFT_TABLE: &str = "bffnet";
/// Smallest `tbf` burst: one packet of the TUN MTU (1500) with room to spare.
const TBF_MIN_BURST: u64 = 1600;

/// A link profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Name shown in the tables.
    pub name: &'static str,
    /// Server → client rate (kbit/s), `None` for unshaped.
    pub down_kbit: Option<u64>,
    /// Client → server rate (kbit/s), `None` for unshaped.
    pub up_kbit: Option<u64>,
    /// Round-trip time added by the delay line (half each way).
    pub rtt: Duration,
    /// Percentage of packets dropped, independently in each direction.
    pub loss_percent: u32,
}

impl Profile {
    /// How the profile is configured, for the tables.
    pub fn describe(&self) -> String {
        let rate = |r: Option<u64>| r.map_or("unshaped".to_owned(), kbit);
        format!(
            "{} down / {} up, RTT {} ms, loss {} % each way",
            rate(self.down_kbit),
            rate(self.up_kbit),
            self.rtt.as_millis(),
            self.loss_percent
        )
    }
}

/// `400 kbit/s`, `1.44 Mbit/s`.
pub fn kbit(rate: u64) -> String {
    if rate >= 1000 { format!("{:.2} Mbit/s", rate as f64 / 1000.0) } else { format!("{rate} kbit/s") }
}

/// The link and everything it created; dropping it tears everything down.
pub struct Link {
    /// The delay line (counters, delay setting).
    pub line: DelayLine,
    namespaces: Vec<&'static str>,
    _lock: File,
}

impl Link {
    /// Takes the lock, deletes leftovers, creates the namespaces and devices, starts the line.
    pub fn create() -> anyhow::Result<Self> {
        // SAFETY: geteuid has no preconditions.
        anyhow::ensure!(unsafe { libc::geteuid() } == 0, "the network simulation needs root (namespaces, tc, nft)");
        for tool in ["ip", "tc", "nft"] {
            let found = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
            anyhow::ensure!(found, "`{tool}` not found: install iproute2 and nftables (bench/run.sh --network does)");
        }
        let lock = File::create(LOCK_FILE).with_context(|| format!("creating {LOCK_FILE}"))?;
        // SAFETY: flock on a descriptor we own.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        anyhow::ensure!(locked, "another network simulation holds {LOCK_FILE}");
        for ns in [CLIENT_NS, EDGE_NS] {
            if Path::new("/run/netns").join(ns).exists() {
                eprintln!("bench: deleting namespace {ns} left over by an earlier run");
                run(&["ip", "netns", "del", ns], None)?;
            }
        }
        // The guard deletes the namespaces created so far on any error below.
        let mut guard = NamespaceGuard(Vec::new());
        for ns in [CLIENT_NS, EDGE_NS] {
            run(&["ip", "netns", "add", ns], None)?;
            guard.0.push(ns);
        }
        let client_tun = create_tun(CLIENT_DEV)?;
        let edge_tun = create_tun(EDGE_DEV)?;
        let (client, edge) = (CLIENT_ADDR.to_string(), EDGE_ADDR.to_string());
        for (ns, dev, local, peer) in [(CLIENT_NS, CLIENT_DEV, &client, &edge), (EDGE_NS, EDGE_DEV, &edge, &client)] {
            run(&["ip", "link", "set", dev, "netns", ns], None)?;
            run(&["ip", "-n", ns, "addr", "add", local.as_str(), "peer", peer.as_str(), "dev", dev], None)?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"], None)?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"], None)?;
        }
        let line = DelayLine::start(client_tun, edge_tun)?;
        let namespaces = std::mem::take(&mut guard.0);
        Ok(Self { line, namespaces, _lock: lock })
    }

    /// Configures delay, rates and loss for `profile`.
    pub fn apply(&self, profile: &Profile) -> anyhow::Result<()> {
        self.line.state.set_one_way_delay(profile.rtt / 2);
        for (ns, dev, rate) in [(EDGE_NS, EDGE_DEV, profile.down_kbit), (CLIENT_NS, CLIENT_DEV, profile.up_kbit)] {
            match rate {
                Some(kbit) => {
                    let (burst, limit) = tbf_sizes(kbit);
                    let (rate, burst, limit) = (format!("{kbit}kbit"), burst.to_string(), limit.to_string());
                    let command = [
                        "tc",
                        "qdisc",
                        "replace",
                        "dev",
                        dev,
                        "root",
                        "tbf",
                        "rate",
                        rate.as_str(),
                        "burst",
                        burst.as_str(),
                    ];
                    run_in(ns, &[&command[..], &["limit", limit.as_str()]].concat(), None)?;
                }
                None => run_in(ns, &["tc", "qdisc", "replace", "dev", dev, "root", "pfifo", "limit", "1000"], None)?,
            }
        }
        // Uplink packets are lost at the edge's ingress, downlink packets at the client's.
        for (ns, dev) in [(EDGE_NS, EDGE_DEV), (CLIENT_NS, CLIENT_DEV)] {
            let mut script = format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
            if profile.loss_percent > 0 {
                script.push_str(&format!(
                    "table inet {NFT_TABLE} {{\n  chain loss {{\n    type filter hook prerouting priority -300; policy accept;\n    \
                     iifname \"{dev}\" numgen random mod 100 < {} counter drop\n  }}\n}}\n",
                    profile.loss_percent
                ));
            }
            run_in(ns, &["nft", "-f", "-"], Some(&script))?;
        }
        Ok(())
    }

    /// Packets the loss rules dropped so far in this profile: (uplink, downlink).
    pub fn dropped_packets(&self) -> anyhow::Result<(u64, u64)> {
        let count = |ns: &str| -> anyhow::Result<u64> {
            let listing = output_in(ns, &["nft", "list", "table", "inet", NFT_TABLE]);
            // No table: no loss configured.
            let Ok(listing) = listing else { return Ok(0) };
            let packets = listing
                .split("counter packets ")
                .skip(1)
                .filter_map(|rest| rest.split_whitespace().next())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
            Ok(packets)
        };
        Ok((count(EDGE_NS)?, count(CLIENT_NS)?))
    }
}

/// Kernel counters of the link's namespaces: what TCP had to repair, and what a device dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Segments TCP retransmitted: (client, edge).
    pub retransmitted: (u64, u64),
    /// Retransmission timeouts: (client, edge).
    pub timeouts: (u64, u64),
    /// Packets the TUN devices dropped (queue full and the like), both namespaces.
    pub device_drops: u64,
}

impl KernelCounters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let pair = |a: (u64, u64), b: (u64, u64)| (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1));
        Self {
            retransmitted: pair(self.retransmitted, earlier.retransmitted),
            timeouts: pair(self.timeouts, earlier.timeouts),
            device_drops: self.device_drops.saturating_sub(earlier.device_drops),
        }
    }
}

impl Link {
    /// Reads the namespaces' TCP counters (`/proc/net/snmp`, `/proc/net/netstat`) and the
    /// TUN devices' drop counters.
    pub fn kernel_counters(&self) -> anyhow::Result<KernelCounters> {
        let mut counters = KernelCounters::default();
        for (ns, dev, client) in [(CLIENT_NS, CLIENT_DEV, true), (EDGE_NS, EDGE_DEV, false)] {
            let snmp = output_in(ns, &["cat", "/proc/net/snmp", "/proc/net/netstat"])?;
            let retransmitted = proc_counter(&snmp, "Tcp:", "RetransSegs").context("no Tcp RetransSegs")?;
            let timeouts = proc_counter(&snmp, "TcpExt:", "TCPTimeouts").context("no TcpExt TCPTimeouts")?;
            if client {
                (counters.retransmitted.0, counters.timeouts.0) = (retransmitted, timeouts);
            } else {
                (counters.retransmitted.1, counters.timeouts.1) = (retransmitted, timeouts);
            }
            for direction in ["tx_dropped", "rx_dropped"] {
                let path = format!("/sys/class/net/{dev}/statistics/{direction}");
                counters.device_drops += output_in(ns, &["cat", &path])?.trim().parse::<u64>().unwrap_or(0);
            }
        }
        Ok(counters)
    }
}

/// A counter from `/proc/net/snmp`-style text: a header line and a value line per prefix.
fn proc_counter(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let (header, values) = (lines.next()?, lines.next()?);
    let at = header.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

impl Drop for Link {
    fn drop(&mut self) {
        delete_namespaces(&self.namespaces);
    }
}

/// Deletes the namespaces created so far if [`Link::create`] fails half-way.
struct NamespaceGuard(Vec<&'static str>);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        delete_namespaces(&self.0);
    }
}

fn delete_namespaces(namespaces: &[&str]) {
    for ns in namespaces {
        if let Err(err) = run(&["ip", "netns", "del", ns], None) {
            eprintln!("bench: could not delete namespace {ns}: {err:#}");
        }
    }
}

/// `tbf` burst and queue limit for a rate: a burst of one full packet (or 5 ms of the rate if
/// that is more), so an idle link sends little faster than its rate, and a queue of one second
/// of the rate (at least 32 KB): a mobile link buffers generously.
fn tbf_sizes(kbit: u64) -> (u64, u64) {
    let bytes_per_second = kbit * 1000 / 8;
    let burst = TBF_MIN_BURST.max(bytes_per_second / 200);
    let limit = 32_000u64.max(bytes_per_second);
    (burst, limit)
}

/// Runs a command (root namespace), failing with its stderr.
fn run(command: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    output(command, stdin).map(drop)
}

fn run_in(ns: &str, command: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    run(&[&["ip", "netns", "exec", ns][..], command].concat(), stdin)
}

fn output_in(ns: &str, command: &[&str]) -> anyhow::Result<String> {
    output(&[&["ip", "netns", "exec", ns][..], command].concat(), None)
}

fn output(command: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let (program, args) = command.split_first().context("empty command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{}`", command.join(" ")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "`{}` failed ({}): {}",
        command.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `work` on a new thread that has joined namespace `ns`: every socket it creates lives
/// there (a thread's network namespace is its own; the rest of the process stays in the root).
pub fn spawn_in_namespace<T, F>(ns: &str, work: F) -> anyhow::Result<JoinHandle<anyhow::Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    let handle: OwnedFd =
        File::open(Path::new("/run/netns").join(ns)).with_context(|| format!("opening namespace {ns}"))?.into();
    let thread = std::thread::Builder::new().name(format!("netns-{ns}")).spawn(move || {
        // SAFETY: setns on a namespace descriptor we own; affects this thread only.
        let joined = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        if joined != 0 {
            return Err(std::io::Error::last_os_error()).context("joining the namespace");
        }
        drop(handle);
        work()
    })?;
    Ok(thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_counters_by_name() {
        let text =
            "Ip: Forwarding X\nIp: 1 2\nTcp: RtoMin RetransSegs\nTcp: 200 7\nTcpExt: A TCPTimeouts\nTcpExt: 1 3\n";
        assert_eq!(proc_counter(text, "Tcp:", "RetransSegs"), Some(7));
        assert_eq!(proc_counter(text, "TcpExt:", "TCPTimeouts"), Some(3));
        assert_eq!(proc_counter(text, "Tcp:", "Missing"), None);
    }

    #[test]
    fn tbf_bursts_one_packet_and_buffers_a_second() {
        assert_eq!(tbf_sizes(400), (1600, 50_000));
        assert_eq!(tbf_sizes(1440), (1600, 180_000));
        assert_eq!(tbf_sizes(100), (1600, 32_000));
        assert_eq!(tbf_sizes(10_000), (6250, 1_250_000));
        assert_eq!(kbit(400), "400 kbit/s");
        assert_eq!(kbit(1440), "1.44 Mbit/s");
    }
}
