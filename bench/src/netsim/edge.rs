//! The server end of the simulated link, listening in the edge namespace on 10.203.0.1:
//!
//! - the **relay**: a plain TCP forwarder (no delay of its own: the link delays) to the product
//!   on 127.0.0.1 in the root namespace, like a load balancer in front of the service. The
//!   client's TCP connection ends here, so its handshake, windows and retransmissions run over
//!   the simulated link; the hop to the server is loopback.
//! - the **probe sink**: a tiny protocol for the link sanity checks. The client sends one byte
//!   (`D` download, `U` upload) and a big-endian u64 length; for `D` the sink sends that many
//!   bytes and closes, for `U` it reads them and answers the rate it measured (f64 bits/s, BE).
//!
//! Listening sockets are created on a thread inside the namespace and then served by this
//! process's runtime; the tasks stop when [`Edge`] is dropped.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use super::link::{EDGE_ADDR, EDGE_NS, spawn_in_namespace};

/// Largest transfer a probe may ask for.
pub const MAX_PROBE_BYTES: u64 = 64 * 1024 * 1024;
/// Probe opcodes.
pub const DOWNLOAD: u8 = b'D';
/// Upload opcode.
pub const UPLOAD: u8 = b'U';

/// The running relay and sink.
pub struct Edge {
    /// Where the client reaches the product.
    pub relay: SocketAddr,
    /// Where the client runs the throughput probes.
    pub sink: SocketAddr,
    /// Server time so far: for every exchange, from the relay forwarding the last request
    /// chunk to the first answer byte from the server (ns, summed over all connections).
    pub server_nanos: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Edge {
    /// Binds both listeners in the edge namespace and serves them on the current runtime.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(upstream.ip().is_loopback(), "the relay only forwards to loopback, not {upstream}");
        let bind = spawn_in_namespace(EDGE_NS, || {
            let listen = || -> anyhow::Result<std::net::TcpListener> {
                let listener = std::net::TcpListener::bind((EDGE_ADDR, 0))?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            };
            Ok((listen()?, listen()?))
        })?;
        let (relay, sink) = bind.join().map_err(|_| anyhow::anyhow!("the edge thread panicked"))??;
        let (relay, sink) = (TcpListener::from_std(relay)?, TcpListener::from_std(sink)?);
        let (relay_addr, sink_addr) = (relay.local_addr()?, sink.local_addr()?);
        let server_nanos = Arc::new(AtomicU64::new(0));
        let tasks =
            vec![tokio::spawn(serve_relay(relay, upstream, server_nanos.clone())), tokio::spawn(serve_sink(sink))];
        Ok(Self { relay: relay_addr, sink: sink_addr, server_nanos, tasks })
    }
}

/// Accepts until aborted; each connection is piped to `upstream` (aborted with the set).
async fn serve_relay(listener: TcpListener, upstream: SocketAddr, server_nanos: Arc<AtomicU64>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of descriptors or similar: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let server_nanos = server_nanos.clone();
        connections.spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = relay_connection(&mut inbound, &mut outbound, &server_nanos).await;
        });
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
    }
}

/// Copies both ways (each direction on its own, neither waits for the other) and adds the
/// server's answer times to `server_nanos`.
async fn relay_connection(
    inbound: &mut TcpStream,
    outbound: &mut TcpStream,
    server_nanos: &AtomicU64,
) -> io::Result<()> {
    let base = Instant::now();
    let since_base = || u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
    // When the last request chunk went to the server (ns since `base`), 0 when not waiting.
    let waiting_since = AtomicU64::new(0);
    let (mut client_read, mut client_write) = inbound.split();
    let (mut server_read, mut server_write) = outbound.split();
    let up = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buffer).await?;
            if n == 0 {
                return server_write.shutdown().await;
            }
            server_write.write_all(&buffer[..n]).await?;
            waiting_since.store(since_base(), Ordering::Relaxed);
        }
    };
    let down = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = server_read.read(&mut buffer).await?;
            let since = waiting_since.swap(0, Ordering::Relaxed);
            if since > 0 {
                server_nanos.fetch_add(since_base().saturating_sub(since), Ordering::Relaxed);
            }
            if n == 0 {
                return client_write.shutdown().await;
            }
            client_write.write_all(&buffer[..n]).await?;
        }
    };
    tokio::try_join!(up, down).map(drop)
}

/// Nanoseconds as a duration.
pub fn nanos(value: u64) -> Duration {
    Duration::from_nanos(value)
}

async fn serve_sink(listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        connections.spawn(async move {
            if let Err(err) = probe_exchange(stream).await {
                eprintln!("bench: probe sink: {err:#}");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn probe_exchange(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let op = stream.read_u8().await?;
    let length = stream.read_u64().await?;
    anyhow::ensure!(length <= MAX_PROBE_BYTES, "probe of {length} bytes refused");
    match op {
        DOWNLOAD => {
            let chunk = vec![0u8; 16 * 1024];
            let mut left = length;
            while left > 0 {
                let n = usize::try_from(left.min(chunk.len() as u64))?;
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            stream.shutdown().await?;
        }
        UPLOAD => {
            let mut progress = Progress::new(length);
            let mut buffer = vec![0u8; 64 * 1024];
            while !progress.done() {
                let n = stream.read(&mut buffer).await?;
                anyhow::ensure!(n > 0, "upload ended early");
                progress.record(n);
            }
            stream.write_u64(progress.second_half_rate().to_bits()).await?;
            stream.shutdown().await?;
        }
        other => anyhow::bail!("unknown probe {other}"),
    }
    Ok(())
}

/// Arrival times of a transfer, for its rate once TCP has left slow start.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    received: u64,
    /// (instant, bytes received so far).
    samples: Vec<(Instant, u64)>,
}

impl Progress {
    /// A transfer of `total` bytes.
    pub fn new(total: u64) -> Self {
        Self { total, received: 0, samples: Vec::new() }
    }

    /// `n` more bytes arrived now.
    pub fn record(&mut self, n: usize) {
        self.received += n as u64;
        self.samples.push((Instant::now(), self.received));
    }

    /// All bytes arrived.
    pub fn done(&self) -> bool {
        self.received >= self.total
    }

    /// Bits per second over the second half of the transfer (from the first arrival at or past
    /// half of the bytes to the last): by then the congestion window exceeds the link's
    /// bandwidth-delay product, so this is the link's rate rather than slow start's.
    pub fn second_half_rate(&self) -> f64 {
        rate_after_half(&self.samples, self.total)
    }
}

fn rate_after_half(samples: &[(Instant, u64)], total: u64) -> f64 {
    let (Some(start), Some(end)) = (samples.iter().find(|(_, bytes)| *bytes >= total / 2), samples.last()) else {
        return 0.0;
    };
    let seconds = end.0.duration_since(start.0).as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    (end.1 - start.1) as f64 * 8.0 / seconds
}

/// Connects to a listener of the edge (Nagle off); nothing else may be targeted.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    anyhow::ensure!(addr.ip() == EDGE_ADDR, "the client only connects to the edge address, not {addr}");
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rate_counts_only_the_second_half() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 1000 bytes: the first half slowly, then 500 bytes in 1 s after the midpoint sample.
        let samples = [(at(0), 100), (at(2000), 500), (at(2500), 750), (at(3000), 1000)];
        assert!((rate_after_half(&samples, 1000) - 4000.0).abs() < 1e-6);
        assert_eq!(rate_after_half(&[], 1000), 0.0);
    }
}
