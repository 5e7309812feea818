//! The delay line: a userspace stand-in for `netem delay` (which this kernel lacks) between two
//! TUN devices, one in each network namespace of the simulated link.
//!
//! Every IP packet the client namespace sends through its TUN device is read here, held for the
//! one-way delay and written into the edge namespace's TUN device, and the other way round —
//! two independent directions, each a FIFO of `(due time, packet)`, so order is kept and neither
//! direction waits for the other. Because whole packets are delayed (SYN, ACKs and
//! retransmissions too), the kernels' TCP stacks see the real round-trip time: the handshake,
//! slow start, ACK clocking and loss recovery all run at mobile RTT, which a TCP-terminating
//! proxy could not show. Bandwidth (`tc tbf`) and loss (`nft`) are applied by the namespaces'
//! kernels before a packet reaches this line (egress queue) or after it leaves (ingress), see
//! `link.rs`. The line also counts the packets and IP bytes it carries in each direction.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use tokio::{io::unix::AsyncFd, sync::mpsc, task::JoinHandle, time::Instant};

/// Packets one direction may hold in flight inside the line before it drops (a generous
/// buffer: at 1.44 Mbit/s and 200 ms one way, about 25 full-size packets are in flight).
const LINE_CAPACITY: usize = 4096;
/// Largest packet read from a TUN device (its MTU is 1500; no GSO without a vnet header).
const MAX_PACKET: usize = 65_536;

/// Opens `/dev/net/tun` and creates a non-persistent TUN device `name` (layer 3, no packet
/// info header) in the network namespace of the calling thread. The device disappears when
/// the returned descriptor is closed, also when this process is killed.
pub fn create_tun(name: &str) -> anyhow::Result<OwnedFd> {
    anyhow::ensure!(!name.is_empty() && name.len() < libc::IFNAMSIZ, "bad interface name {name:?}");
    // SAFETY: plain open(2) of a constant NUL-terminated path; the result is checked.
    let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error()).context("opening /dev/net/tun");
    }
    // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `ifreq` is plain old data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &raw mut request) };
    if rc < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("creating TUN device {name} (is another network simulation running?)"));
    }
    Ok(fd)
}

/// Packets and IP bytes carried in one direction (read by the client between two instants).
#[derive(Debug, Default)]
pub struct DirectionCounters {
    /// IP packets that entered the line.
    pub packets: AtomicU64,
    /// Their bytes (IP header included).
    pub bytes: AtomicU64,
    /// Packets dropped because the line was full or the kernel refused them (should stay 0).
    pub overflow: AtomicU64,
}

/// A snapshot of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireCount {
    /// Client → server IP bytes.
    pub up_bytes: u64,
    /// Server → client IP bytes.
    pub down_bytes: u64,
    /// Client → server packets.
    pub up_packets: u64,
    /// Server → client packets.
    pub down_packets: u64,
}

impl WireCount {
    /// What was carried between `earlier` and `self`.
    pub fn since(&self, earlier: &WireCount) -> WireCount {
        WireCount {
            up_bytes: self.up_bytes.saturating_sub(earlier.up_bytes),
            down_bytes: self.down_bytes.saturating_sub(earlier.down_bytes),
            up_packets: self.up_packets.saturating_sub(earlier.up_packets),
            down_packets: self.down_packets.saturating_sub(earlier.down_packets),
        }
    }
}

/// The line's shared state: the current one-way delay and the counters.
#[derive(Debug, Default)]
pub struct LineState {
    one_way_micros: AtomicU64,
    /// Largest lateness of a packet against its due time since the last [`Self::take_max_lag`]
    /// (µs): the harness's own scheduling noise, which would add to the simulated delay.
    max_lag_micros: AtomicU64,
    /// Client → server.
    pub up: DirectionCounters,
    /// Server → client.
    pub down: DirectionCounters,
}

impl LineState {
    /// Sets the one-way delay (both directions) for packets read from now on.
    pub fn set_one_way_delay(&self, delay: Duration) {
        self.one_way_micros.store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn one_way_delay(&self) -> Duration {
        Duration::from_micros(self.one_way_micros.load(Ordering::Relaxed))
    }

    /// The largest lateness since the last call, and starts a new window.
    pub fn take_max_lag(&self) -> Duration {
        Duration::from_micros(self.max_lag_micros.swap(0, Ordering::Relaxed))
    }

    /// The counters now.
    pub fn count(&self) -> WireCount {
        WireCount {
            up_bytes: self.up.bytes.load(Ordering::Relaxed),
            down_bytes: self.down.bytes.load(Ordering::Relaxed),
            up_packets: self.up.packets.load(Ordering::Relaxed),
            down_packets: self.down.packets.load(Ordering::Relaxed),
        }
    }

    /// Packets the line dropped (full, or refused by the kernel), both directions.
    pub fn overflow(&self) -> u64 {
        self.up.overflow.load(Ordering::Relaxed) + self.down.overflow.load(Ordering::Relaxed)
    }
}

/// The running line; its tasks stop when it is dropped.
pub struct DelayLine {
    /// Delay and counters.
    pub state: Arc<LineState>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl DelayLine {
    /// Starts forwarding between the client's and the edge's TUN descriptors on the current
    /// runtime, with no delay until [`LineState::set_one_way_delay`].
    pub fn start(client_tun: OwnedFd, edge_tun: OwnedFd) -> anyhow::Result<Self> {
        let state = Arc::new(LineState::default());
        let client = Arc::new(register(client_tun).context("registering the client TUN device")?);
        let edge = Arc::new(register(edge_tun).context("registering the edge TUN device")?);
        let mut tasks = Vec::new();
        for (from, to, up) in [(client.clone(), edge.clone(), true), (edge, client, false)] {
            let (sender, receiver) = mpsc::channel(LINE_CAPACITY);
            tasks.push(tokio::spawn(read_side(from, sender, state.clone(), up)));
            tasks.push(tokio::spawn(write_side(to, receiver, state.clone(), up)));
        }
        Ok(Self { state, tasks })
    }
}

/// Registers a TUN descriptor with the runtime's reactor.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is open and stays the same descriptor until the `AsyncFd` drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|err| err.into_parts().1)
}

/// Reads packets as the kernel releases them (after its egress qdisc) and queues them with
/// their due time.
async fn read_side(
    from: Arc<AsyncFd<OwnedFd>>,
    line: mpsc::Sender<(Instant, Vec<u8>)>,
    state: Arc<LineState>,
    up: bool,
) {
    let counters = if up { &state.up } else { &state.down };
    let mut buffer = vec![0u8; MAX_PACKET];
    loop {
        let Ok(mut ready) = from.readable().await else { return };
        let read = ready.try_io(|fd| {
            // SAFETY: reads at most `buffer.len()` bytes into a buffer we own.
            let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n.unsigned_abs()) }
        });
        let length = match read {
            Ok(Ok(length)) => length,
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
            // The device went away (teardown): stop.
            Ok(Err(_)) => return,
            // Not readable after all: wait again.
            Err(_would_block) => continue,
        };
        counters.packets.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(length as u64, Ordering::Relaxed);
        let due = Instant::now() + state.one_way_delay();
        if line.try_send((due, buffer[..length].to_vec())).is_err() {
            counters.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes each packet into the other namespace when it is due, in arrival order.
async fn write_side(
    to: Arc<AsyncFd<OwnedFd>>,
    mut line: mpsc::Receiver<(Instant, Vec<u8>)>,
    state: Arc<LineState>,
    up: bool,
) {
    let counters = if up { &state.up } else { &state.down };
    while let Some((due, packet)) = line.recv().await {
        tokio::time::sleep_until(due).await;
        let lag = u64::try_from(Instant::now().saturating_duration_since(due).as_micros()).unwrap_or(u64::MAX);
        state.max_lag_micros.fetch_max(lag, Ordering::Relaxed);
        loop {
            let Ok(mut ready) = to.writable().await else { return };
            let written = ready.try_io(|fd| {
                // SAFETY: writes one packet from a buffer we own.
                let n = unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
                if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            });
            match written {
                Ok(Ok(())) => break,
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                // A packet the kernel refuses is a lost packet; a closed device ends the line.
                Ok(Err(err)) if err.raw_os_error() == Some(libc::EBADFD) => return,
                Ok(Err(_)) => {
                    counters.overflow.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair of packet sockets: like a TUN device, one read or write is one packet.
    fn packet_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into the array we pass.
        let rc =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK, 0, fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "socketpair: {}", io::Error::last_os_error());
        // SAFETY: both descriptors were just created and are owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    async fn send(to: &AsyncFd<OwnedFd>, packet: &[u8]) {
        let mut ready = to.writable().await.expect("writable");
        // SAFETY: writes from a slice we own.
        let written = ready.try_io(|fd| {
            let n = unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
            if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n.unsigned_abs()) }
        });
        assert_eq!(written.expect("not blocked").expect("written"), packet.len());
    }

    async fn receive(from: &AsyncFd<OwnedFd>) -> Vec<u8> {
        let mut buffer = vec![0u8; 2048];
        loop {
            let mut ready = from.readable().await.expect("readable");
            // SAFETY: reads into a buffer we own.
            let read = ready.try_io(|fd| {
                let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
                if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n.unsigned_abs()) }
            });
            if let Ok(result) = read {
                let length = result.expect("read");
                return buffer[..length].to_vec();
            }
        }
    }

    #[tokio::test]
    async fn carries_packets_in_order_each_way_and_counts_them() {
        let (phone, client_end) = packet_pair();
        let (server, edge_end) = packet_pair();
        let line = DelayLine::start(client_end, edge_end).expect("line");
        line.state.set_one_way_delay(Duration::from_millis(2));
        let (phone, server) = (register(phone).expect("phone"), register(server).expect("server"));
        let up: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        for packet in &up {
            send(&phone, packet).await;
        }
        send(&server, b"down").await;
        for packet in &up {
            assert_eq!(&receive(&server).await, packet);
        }
        assert_eq!(receive(&phone).await, b"down");
        let count = line.state.count();
        let up_bytes: usize = up.iter().map(Vec::len).sum();
        assert_eq!(count, WireCount { up_bytes: up_bytes as u64, down_bytes: 4, up_packets: 20, down_packets: 1 });
        assert_eq!(count.since(&WireCount { up_bytes: 100, ..count }).up_bytes, up_bytes as u64 - 100);
        assert_eq!(line.state.overflow(), 0);
    }
}
