//! The phone: a thread inside the client namespace with its own single-threaded runtime, so
//! every socket it opens goes over the simulated link. The orchestrating runtime sends it jobs
//! one at a time and awaits each answer:
//!
//! - an **app open**: a fresh TCP connection to the edge relay, then the given requests one
//!   after the other on it (HTTP/1.1 keep-alive), each response read to its last byte and
//!   checked (status, no GraphQL errors, the encoding asked for). Measured: time from `connect`
//!   to the last byte, HTTP bytes each way (status lines, headers and bodies, as written and read
//!   on the socket) and IP bytes the link carried meanwhile. Bounded by [`APP_OPEN_TIMEOUT`].
//! - a **probe** of the link itself: the RTT of a tiny request (`GET /healthz` on an open
//!   connection) and the throughput of a bulk download and upload through the probe sink.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::{StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::{mpsc, oneshot},
};

use super::{
    delay::{LineState, WireCount},
    edge::{self, DOWNLOAD, Progress, UPLOAD},
    link::{CLIENT_NS, spawn_in_namespace},
};
use crate::http::{self, RequestSpec};

/// Longest one app open may take (a lossy Slow 3G open takes a few seconds).
pub const APP_OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one link probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a response must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// 200 with data (no GraphQL errors when readable).
    Data,
    /// 200 with the APQ miss error `PERSISTED_QUERY_NOT_FOUND`.
    PersistedQueryNotFound,
    /// 304, no body.
    NotModified,
}

/// One request of an app open.
#[derive(Clone, Debug)]
pub struct Step {
    /// The request (its `Accept-Encoding` included).
    pub spec: RequestSpec,
    /// What must come back.
    pub expect: Expect,
}

/// The outcome of one app open.
#[derive(Clone, Debug)]
pub struct AppOpen {
    /// When the connection was up and when each response was complete, from `connect`.
    pub marks: Vec<Duration>,
    /// From `connect` to the last byte of the last response.
    pub time_to_last_byte: Duration,
    /// Requests sent.
    pub requests: usize,
    /// HTTP bytes written (request lines, headers, bodies).
    pub http_up: u64,
    /// HTTP bytes read (status lines, headers, bodies as sent, compressed or not).
    pub http_down: u64,
    /// IP packets and bytes the link carried during the open.
    pub wire: WireCount,
    /// Time the server took to answer (measured at the relay; not network time).
    pub server: Duration,
    /// Largest lateness of a packet in the delay line during the open.
    pub line_lag: Duration,
}

/// The link as the client measured it.
#[derive(Clone, Copy, Debug)]
pub struct ProbeResult {
    /// Median time of a tiny request on an open connection.
    pub tiny_request_rtt: Duration,
    /// TCP payload bits/s of a bulk download (second half of the transfer).
    pub down_bps: f64,
    /// The same for an upload, measured by the receiving sink.
    pub up_bps: f64,
}

enum Job {
    AppOpen { steps: Vec<Step>, reply: oneshot::Sender<anyhow::Result<AppOpen>> },
    Probe { rtt_samples: usize, down_bytes: u64, up_bytes: u64, reply: oneshot::Sender<anyhow::Result<ProbeResult>> },
}

/// The client thread; it ends when this handle is dropped (after its current job, which is
/// bounded by its timeout).
pub struct Client {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Client {
    /// Starts the thread in the client namespace.
    pub fn spawn(
        relay: SocketAddr,
        sink: SocketAddr,
        line: Arc<LineState>,
        server_nanos: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        // Detached: it returns once `jobs` is dropped.
        let _thread = spawn_in_namespace(CLIENT_NS, move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    match job {
                        Job::AppOpen { steps, reply } => {
                            let outcome =
                                tokio::time::timeout(APP_OPEN_TIMEOUT, app_open(relay, &steps, &line, &server_nanos))
                                    .await
                                    .unwrap_or_else(|_| {
                                        Err(anyhow::anyhow!("app open took longer than {APP_OPEN_TIMEOUT:?}"))
                                    });
                            let _ = reply.send(outcome);
                        }
                        Job::Probe { rtt_samples, down_bytes, up_bytes, reply } => {
                            let probe = probe(relay, sink, rtt_samples, down_bytes, up_bytes);
                            let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe).await.unwrap_or_else(|_| {
                                Err(anyhow::anyhow!("link probe took longer than {PROBE_TIMEOUT:?}"))
                            });
                            let _ = reply.send(outcome);
                        }
                    }
                }
            });
            Ok(())
        })?;
        Ok(Self { jobs })
    }

    /// Runs one app open.
    pub async fn app_open(&self, steps: Vec<Step>) -> anyhow::Result<AppOpen> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::AppOpen { steps, reply }).map_err(|_| anyhow::anyhow!("the client thread is gone"))?;
        answer.await.context("the client thread dropped the job")?
    }

    /// Probes the link.
    pub async fn probe(&self, rtt_samples: usize, down_bytes: u64, up_bytes: u64) -> anyhow::Result<ProbeResult> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Probe { rtt_samples, down_bytes, up_bytes, reply };
        self.jobs.send(job).map_err(|_| anyhow::anyhow!("the client thread is gone"))?;
        answer.await.context("the client thread dropped the job")?
    }
}

/// An HTTP/1.1 connection to the relay whose socket bytes are counted.
struct CountedConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    counters: Arc<Counters>,
    host: header::HeaderValue,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl CountedConnection {
    async fn open(relay: SocketAddr) -> anyhow::Result<Self> {
        let stream = edge::connect(relay).await?;
        let counters = Arc::new(Counters::default());
        let io = TokioIo::new(Counted { inner: stream, counters: counters.clone() });
        let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, counters, host: http::host_header(relay)?, driver })
    }

    /// Sends one request; returns the status, headers and raw body.
    async fn exchange(&mut self, spec: &RequestSpec) -> anyhow::Result<(StatusCode, hyper::HeaderMap, bytes::Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(spec.to_request(&self.host)?).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

async fn app_open(
    relay: SocketAddr,
    steps: &[Step],
    line: &LineState,
    server_nanos: &AtomicU64,
) -> anyhow::Result<AppOpen> {
    let wire_before = line.count();
    let server_before = server_nanos.load(Ordering::Relaxed);
    line.take_max_lag();
    let started = Instant::now();
    let mut connection = CountedConnection::open(relay).await?;
    let mut marks = vec![started.elapsed()];
    for step in steps {
        let (status, headers, body) = connection.exchange(&step.spec).await?;
        check(step, status, &headers, &body).with_context(|| format!("{} {}", step.spec.method, step.spec.path))?;
        marks.push(started.elapsed());
    }
    let time_to_last_byte = started.elapsed();
    let wire = line.count().since(&wire_before);
    let server = edge::nanos(server_nanos.load(Ordering::Relaxed).saturating_sub(server_before));
    Ok(AppOpen {
        server,
        line_lag: line.take_max_lag(),
        marks,
        time_to_last_byte,
        requests: steps.len(),
        http_up: connection.counters.written.load(Ordering::Relaxed),
        http_down: connection.counters.read.load(Ordering::Relaxed),
        wire,
    })
}

/// A response is what the step expects (bodies are checked when they are not compressed).
fn check(step: &Step, status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> anyhow::Result<()> {
    let wanted = step.spec.headers.iter().find(|(name, _)| name == header::ACCEPT_ENCODING).map(|(_, v)| v.as_bytes());
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes());
    let plain = encoding.is_none() || encoding == Some(b"identity");
    match step.expect {
        Expect::NotModified => anyhow::ensure!(status == StatusCode::NOT_MODIFIED, "expected 304, got {status}"),
        Expect::Data | Expect::PersistedQueryNotFound => {
            anyhow::ensure!(status == StatusCode::OK, "expected 200, got {status}: {}", http::preview(body));
            anyhow::ensure!(
                plain || encoding == wanted,
                "answered Content-Encoding {:?} to Accept-Encoding {:?}",
                encoding.map(String::from_utf8_lossy),
                wanted.map(String::from_utf8_lossy)
            );
            if plain {
                let text = String::from_utf8_lossy(body);
                let missed = text.contains("PERSISTED_QUERY_NOT_FOUND") || text.contains("PersistedQueryNotFound");
                match step.expect {
                    Expect::PersistedQueryNotFound => {
                        anyhow::ensure!(missed, "expected an APQ miss: {}", http::preview(body))
                    }
                    _ => anyhow::ensure!(
                        text.starts_with("{\"data\"") && !text.contains("\"errors\""),
                        "expected data without errors: {}",
                        http::preview(body)
                    ),
                }
            } else {
                anyhow::ensure!(!body.is_empty(), "empty compressed body");
            }
        }
    }
    Ok(())
}

async fn probe(
    relay: SocketAddr,
    sink: SocketAddr,
    rtt_samples: usize,
    down_bytes: u64,
    up_bytes: u64,
) -> anyhow::Result<ProbeResult> {
    let healthz = RequestSpec::get("/healthz");
    let mut connection = CountedConnection::open(relay).await?;
    // The first request pays for the handshake and warms the server; not counted.
    connection.exchange(&healthz).await?;
    let mut rtts = Vec::with_capacity(rtt_samples);
    for _ in 0..rtt_samples.max(1) {
        let started = Instant::now();
        let (status, _, _) = connection.exchange(&healthz).await?;
        anyhow::ensure!(status.is_success(), "/healthz answered {status}");
        rtts.push(started.elapsed());
    }
    drop(connection);
    rtts.sort();
    let tiny_request_rtt = rtts[rtts.len() / 2];

    let mut download = edge::connect(sink).await?;
    download.write_u8(DOWNLOAD).await?;
    download.write_u64(down_bytes).await?;
    let mut progress = Progress::new(down_bytes);
    let mut buffer = vec![0u8; 64 * 1024];
    while !progress.done() {
        let n = download.read(&mut buffer).await?;
        anyhow::ensure!(n > 0, "download ended early");
        progress.record(n);
    }
    let down_bps = progress.second_half_rate();

    let mut upload = edge::connect(sink).await?;
    upload.write_u8(UPLOAD).await?;
    upload.write_u64(up_bytes).await?;
    let chunk = vec![0u8; 16 * 1024];
    let mut left = up_bytes;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64))?;
        upload.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    let up_bps = f64::from_bits(upload.read_u64().await?);
    Ok(ProbeResult { tiny_request_rtt, down_bps, up_bps })
}

/// Bytes read from and written to a socket.
#[derive(Debug, Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// A stream that counts what passes through it.
struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.counters.read.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            this.counters.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            this.counters.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
