//! The machine: CPU pinning of the load generator and the servers, per-process CPU time and
//! peak memory from `/proc`, and the description (CPU, kernel, toolchain, commit) printed with
//! every result.
//!
//! Servers go on the first CPU this process may use, the load generator on the second, so the
//! two never compete for a core. Where that is impossible (one CPU, affinity refused) the run
//! goes on unpinned and [`Pinning::note`] says so in the output.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

/// Where the servers and the load generator run.
#[derive(Clone, Debug)]
pub struct Pinning {
    /// Core for every spawned server, if pinning works here.
    pub server_core: Option<usize>,
    /// `taskset`, when installed (otherwise servers are pinned with `sched_setaffinity` in the
    /// child before exec).
    taskset: Option<PathBuf>,
    /// Human-readable summary for the report.
    pub note: String,
}

impl Pinning {
    /// A command running `program` on the server core (unpinned when there is none: then the
    /// load generator is not pinned either).
    pub fn server_command(&self, program: &Path) -> Command {
        match (self.server_core, &self.taskset) {
            (Some(core), Some(taskset)) => {
                let mut command = Command::new(taskset);
                command.arg("-c").arg(core.to_string()).arg(program);
                command
            }
            (Some(core), None) => with_affinity(Command::new(program), vec![core]),
            (None, _) => Command::new(program),
        }
    }
}

/// Sets the affinity of the child between fork and exec.
fn with_affinity(mut command: Command, cpus: Vec<usize>) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only builds a cpu_set_t on the stack and calls sched_setaffinity,
    // which is async-signal-safe; nothing is allocated between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let set = cpu_set(&cpus);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: CPU_SET only writes inside `set`; callers pass CPUs below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}

/// CPUs this process may run on, in ascending order (empty if unknown).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the pointer and size describe `set`.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads inside `set`, for indices below CPU_SETSIZE.
    (0..max).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

/// Pins this thread (and the threads and children it creates later) to the second allowed
/// CPU and reserves the first for servers. Call before building the async runtime.
pub fn pin_load_generator() -> Pinning {
    let taskset = find_on_path("taskset");
    let cpus = allowed_cpus();
    let (server, load) = match cpus.as_slice() {
        [server, load, ..] => (*server, *load),
        _ => {
            return Pinning {
                server_core: None,
                taskset,
                note: format!(
                    "NOT pinned: {} CPU(s) available, servers and load generator share them",
                    cpus.len().max(1)
                ),
            };
        }
    };
    let set = cpu_set(&[load]);
    // SAFETY: pid 0 is this thread; the pointer and size describe `set`.
    let pinned = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } == 0;
    let how = if taskset.is_some() { "taskset -c" } else { "sched_setaffinity before exec" };
    if pinned {
        Pinning {
            server_core: Some(server),
            taskset,
            note: format!("servers on CPU {server} ({how}), load generator on CPU {load} (sched_setaffinity)"),
        }
    } else {
        let err = std::io::Error::last_os_error();
        Pinning {
            server_core: Some(server),
            taskset,
            note: format!("servers on CPU {server} ({how}); load generator NOT pinned ({err})"),
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User + system CPU time of a process in clock ticks (all its threads).
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow::anyhow!("bad /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.get(11).ok_or_else(|| anyhow::anyhow!("no utime"))?.parse()?;
    let stime: u64 = fields.get(12).ok_or_else(|| anyhow::anyhow!("no stime"))?.parse()?;
    Ok(utime + stime)
}

/// Resets the peak resident set size (`VmHWM`) of a process to its current size; false if the
/// kernel refused (then `VmHWM` is the peak since the process started).
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Peak resident set size (`VmHWM`) of a process in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the numbers were measured on.
#[derive(Clone, Debug)]
pub struct MachineInfo {
    /// Online CPUs.
    pub cpus: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Commit of the working tree, with `-dirty` when it has uncommitted changes.
    pub commit: String,
    /// 1-minute load average when the run started (another build on the machine shows here).
    pub load_average: String,
}

impl MachineInfo {
    /// Reads everything; unknown parts become `unknown`.
    pub fn collect(repo: &Path) -> Self {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|(_, v)| v.trim().to_owned())
                })
            })
            .unwrap_or_else(unknown);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| unknown());
        let rustc = command_output("rustc", ["--version"], repo).unwrap_or_else(unknown);
        let commit = match command_output("git", ["rev-parse", "--short=12", "HEAD"], repo) {
            Some(head) => {
                let dirty = command_output("git", ["status", "--porcelain", "--untracked-files=no"], repo)
                    .is_some_and(|s| !s.is_empty());
                if dirty { format!("{head}-dirty") } else { head }
            }
            None => unknown(),
        };
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(unknown);
        Self { cpus: usize::try_from(online).unwrap_or(0), cpu_model, kernel, rustc, commit, load_average }
    }
}

fn unknown() -> String {
    "unknown".to_owned()
}

fn command_output<I, S>(program: &str, args: I, dir: &Path) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(program).args(args).current_dir(dir).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu_time_and_peak_rss() {
        let pid = std::process::id();
        assert!(super::cpu_ticks(pid).is_ok());
        assert!(super::peak_rss_kib(pid).is_some_and(|kib| kib > 0));
    }
}
