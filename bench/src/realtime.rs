//! B5/B6 and real-time throughput over WebSocket (`graphql-transport-ws`):
//!
//! - **B5** idle WebSocket memory: N sockets (default 10 000), each with `connection_init` and
//!   one `events` subscription, then the server's RSS growth divided by N.
//! - **B6** fan-out: one event in the log of the user all N sockets subscribe for (a message
//!   sent to them through the HTTP API), time from sending it to its arrival on each socket;
//!   p50/p99/max over the sockets, for several events in a row.
//! - **R1** events/s through one replica: K clients send messages as fast as they can; every
//!   message appends two events (one per member) that two subscribed sockets receive.
//!
//! The sockets come from several loopback source addresses (127.0.0.2 …) so that N is not
//! bounded by one address's ephemeral ports; the open-file limit is raised to its hard limit.
//! All N sockets belong to one user (the per-user connection cap is raised for the run) and
//! run the same operation, so one message is one event that reaches them all: the server's
//! feed for that user reads and resolves it once and every socket serialises and writes it
//! (see `src/http/live/fanout.rs`). N distinct users would cost one resolution per user on
//! top; R1 measures that per-event cost.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpSocket, sync::watch};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::{
    http::{self, RequestSpec},
    machine,
    server::Server,
};

/// Loopback source addresses used for the client sockets.
const SOURCE_ADDRESSES: u8 = 10;
/// Sockets being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// Subscriptions started before waiting for them to be live (B5).
const SUBSCRIBE_BATCH: usize = 500;
/// Events sent for B6.
const FANOUT_EVENTS: usize = 5;
/// Sockets per user in B6 over distinct users.
pub const SPREAD_SOCKETS_PER_USER: usize = 5;
/// How long one event may take to reach every socket.
const FANOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent senders of R1.
const SENDERS: usize = 16;
/// Measured seconds of R1.
const THROUGHPUT_SECONDS: u64 = 5;

type Socket = WebSocketStream<tokio::net::TcpStream>;

/// The real-time figures.
pub struct RealtimeReport {
    backend: &'static str,
    sockets: usize,
    rss_before_kib: u64,
    rss_connected_kib: u64,
    rss_after_kib: u64,
    /// Per event: (received, p50, p99, max).
    fanout: Vec<(usize, Duration, Duration, Duration)>,
    /// Per event: CPU ms of the server and of the load generator while it was delivered.
    fanout_cpu: Vec<(f64, f64)>,
    /// Feed resolutions per B6 event.
    fanout_resolutions: f64,
    /// The same over distinct users: (users, sockets, rounds) of one group message per event.
    spread: Option<(usize, usize, Rounds)>,
    messages: u64,
    delivered: u64,
    seconds: f64,
}

impl RealtimeReport {
    fn per_socket_kib(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.sockets.max(1) as f64
    }

    fn fanout_p99(&self) -> Option<Duration> {
        self.fanout.iter().map(|f| f.2).max()
    }

    /// True when every event reached every socket.
    pub fn complete(&self) -> bool {
        !self.fanout.is_empty() && self.fanout.iter().all(|f| f.0 == self.sockets)
    }

    /// The markdown block.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let mut out = format!("#### B5/B6 — real-time over WebSocket ({})\n\n", self.backend);
        let per = self.per_socket_kib();
        let _ = writeln!(
            out,
            "| # | measure | value | target | verdict |\n|---|---|--:|---|---|\n| B5 | idle WebSocket memory: server RSS {} → {} KiB with {} sockets (`connection_init` + one `events` subscription each) | {:.1} KiB per socket | ≤ 16 KB | {} |",
            self.rss_before_kib,
            self.rss_after_kib,
            self.sockets,
            per,
            if per * 1024.0 <= 16_000.0 { "met" } else { "**missed**" }
        );
        match self.fanout_p99() {
            Some(p99) => {
                let _ = writeln!(
                    out,
                    "| B6 | fan-out of one event to {} subscribers ({:.0} resolution per event): worst p99 of {} events | {} ms | ≤ 200 ms | {} |",
                    self.sockets,
                    self.fanout_resolutions,
                    self.fanout.len(),
                    ms(p99),
                    if self.complete() && p99 <= Duration::from_millis(200) { "met" } else { "**missed**" }
                );
            }
            None => out.push_str("| B6 | fan-out | n/a | ≤ 200 ms | FAILED |\n"),
        }
        if let Some((users, sockets, (rounds, _, resolutions))) = &self.spread {
            let p99 = rounds.iter().map(|r| r.2).max().unwrap_or_default();
            let reached = rounds.iter().all(|r| r.0 == *sockets);
            let _ = writeln!(
                out,
                "| B6 | the same over distinct users: one group message to {users} users with {} sockets each ({sockets} sockets, one event per user's log, {resolutions:.0} resolutions per message): worst p99 of {} events | {} ms | — | (info{}) |",
                sockets / users.max(&1),
                rounds.len(),
                ms(p99),
                if reached { "" } else { ": NOT every socket reached" }
            );
        }
        let _ = writeln!(
            out,
            "| R1 | events/s through one replica ({SENDERS} senders, {:.0} s): {} messages, 2 events each | {:.0} events/s appended, {:.0} delivered/s | — | (info) |",
            self.seconds,
            self.messages,
            (2 * self.messages) as f64 / self.seconds.max(f64::MIN_POSITIVE),
            self.delivered as f64 / self.seconds.max(f64::MIN_POSITIVE)
        );
        let _ = writeln!(
            out,
            "\nB5 breakdown: {:.1} KiB per socket after `connection_init` (RSS {} KiB), {:.1} KiB more per socket for its subscription.",
            self.rss_connected_kib.saturating_sub(self.rss_before_kib) as f64 / self.sockets.max(1) as f64,
            self.rss_connected_kib,
            self.rss_after_kib.saturating_sub(self.rss_connected_kib) as f64 / self.sockets.max(1) as f64,
        );
        out.push_str(
            "\n| event | sockets reached | p50 ms | p99 ms | max ms | server CPU ms | load generator CPU ms |\n|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for (i, ((received, p50, p99, max), (server, client))) in self.fanout.iter().zip(&self.fanout_cpu).enumerate() {
            let _ = writeln!(
                out,
                "| {} | {received} / {} | {} | {} | {} | {server:.0} | {client:.0} |",
                i + 1,
                self.sockets,
                ms(*p50),
                ms(*p99),
                ms(*max)
            );
        }
        if let Some(note) = self.client_bound_note() {
            out.push('\n');
            out.push_str(&note);
            out.push('\n');
        }
        out
    }

    /// Says so when the load generator, reading every frame on its one core, was busy for most
    /// of an event's p99 window: the p99 then measures the client at least as much as the server.
    fn client_bound_note(&self) -> Option<String> {
        let bound: Vec<(usize, f64, f64)> = self
            .fanout
            .iter()
            .zip(&self.fanout_cpu)
            .enumerate()
            .map(|(i, ((_, _, p99, _), (_, client)))| (i + 1, p99.as_secs_f64() * 1000.0, *client))
            .filter(|(_, p99, client)| *p99 > 0.0 && *client >= 0.8 * p99)
            .collect();
        if bound.is_empty() {
            return None;
        }
        let events: Vec<String> =
            bound.iter().map(|(i, p99, client)| format!("event {i}: {client:.0} of {p99:.0} ms")).collect();
        Some(format!(
            "B6 is client-bound here: the load generator's own CPU time per event was at least 80 % of that \
             event's p99 ({}), so the p99 is as much the single-core client reading {} frames as the server \
             delivering them; the server's share is its CPU column.",
            events.join(", "),
            self.sockets
        ))
    }
}

/// Raises the open-file limit to its hard limit (the server child inherits it).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a stack value.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            return limit.rlim_cur;
        }
    }
    0
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing")
}

/// Opens one socket from `source`, authenticates and subscribes to `events`.
async fn open(server: SocketAddr, source: Ipv4Addr, token: &str) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(server).await?;
    let mut request = format!("ws://{server}/graphql/ws").into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut ws, _) = client_async(request, stream).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await?;
    loop {
        let message =
            tokio::time::timeout(Duration::from_secs(30), ws.next()).await?.context("closed before ack")??;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == "connection_ack" {
                break;
            }
            anyhow::ensure!(value["type"] == "ping", "unexpected message before ack: {text}");
        }
    }
    Ok(ws)
}

/// Waits until the server reports `n` active subscriptions.
async fn wait_for_subscriptions(server: &Server, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.metric("bff_live_subscriptions").await?.unwrap_or(0.0) < n as f64 {
        anyhow::ensure!(Instant::now() < deadline, "{n} subscriptions did not start within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Subscribes a socket to the viewer's `events`.
async fn subscribe(ws: &mut Socket) -> anyhow::Result<()> {
    let subscribe = json!({ "id": "1", "type": "subscribe",
        "payload": { "query": "subscription { events { seq kind } }" } });
    ws.send(Message::text(subscribe.to_string())).await?;
    Ok(())
}

/// Opens `n` sockets with bounded concurrency and subscribes each.
async fn open_all(server: SocketAddr, n: usize, token: &str) -> anyhow::Result<Vec<Socket>> {
    let mut sockets = connect_all(server, n, token).await?;
    for ws in &mut sockets {
        subscribe(ws).await?;
    }
    Ok(sockets)
}

/// Opens `n` authenticated sockets (no subscription) with bounded concurrency.
async fn connect_all(server: SocketAddr, n: usize, token: &str) -> anyhow::Result<Vec<Socket>> {
    connect_each(server, &vec![token; n]).await
}

/// Opens one authenticated socket per token (no subscription) with bounded concurrency.
async fn connect_each(server: SocketAddr, tokens: &[&str]) -> anyhow::Result<Vec<Socket>> {
    let sources: Vec<Ipv4Addr> = (0..SOURCE_ADDRESSES).map(|i| Ipv4Addr::new(127, 0, 0, 2 + i)).collect();
    let sockets = futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, token)| open(server, sources[i % sources.len()], token))
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    sockets.into_iter().collect()
}

/// Subscribes every socket, in batches each started once the previous one is live: the
/// steady-state cost of an idle subscription, not the allocator's high-water mark of 10 000
/// subscriptions starting at once.
async fn subscribe_paced(server: &Server, opened: &mut [Socket]) -> anyhow::Result<()> {
    for (i, ws) in opened.iter_mut().enumerate() {
        subscribe(ws).await?;
        if (i + 1) % SUBSCRIBE_BATCH == 0 {
            wait_for_subscriptions(server, i + 1).await?;
        }
    }
    wait_for_subscriptions(server, opened.len()).await
}

async fn graphql(server: &Server, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    let spec = RequestSpec::post_json("/graphql", &json!({ "query": query, "variables": variables }), Some(token))?;
    let (response, _) = http::json_once(server.addr, &spec).await?;
    if let Some(errors) = response.get("errors") {
        anyhow::bail!("GraphQL errors: {errors}");
    }
    Ok(response["data"].clone())
}

/// Per event: (sockets reached, p50, p99, max) and (server CPU ms, load generator CPU ms).
/// And the server's feed resolutions per event (`bff_live_feed_resolutions_total`).
type Rounds = (Vec<(usize, Duration, Duration, Duration)>, Vec<(f64, f64)>, f64);

/// Sends FANOUT_EVENTS events one after the other with `send(round)` and measures, for each,
/// the time from sending it to its arrival on each of `opened` (which must all receive it).
/// The sockets are closed at the end.
async fn fan_out<F, Fut>(server: &Server, opened: Vec<Socket>, send: F) -> anyhow::Result<Rounds>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let sockets = opened.len();
    let resolutions = server.metric("bff_live_feed_resolutions_total").await?.unwrap_or(0.0);
    // B6: each socket waits for the next event and reports when it arrived.
    let (round_tx, round_rx) = watch::channel(0usize);
    let arrivals: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); FANOUT_EVENTS]));
    let mut readers = Vec::with_capacity(opened.len());
    for mut ws in opened {
        let arrivals = arrivals.clone();
        let mut round_rx = round_rx.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = 0usize;
            while seen < FANOUT_EVENTS {
                let Some(Ok(message)) = ws.next().await else { break };
                match message {
                    Message::Text(text) if text.contains("\"next\"") => {
                        let at = Instant::now();
                        let round = *round_rx.borrow_and_update();
                        if let Ok(mut all) = arrivals.lock()
                            && round < FANOUT_EVENTS
                        {
                            all[round].push(at);
                        }
                        seen += 1;
                    }
                    Message::Ping(payload) => {
                        let _ = ws.send(Message::Pong(payload)).await;
                    }
                    Message::Text(text) if text.contains("\"ping\"") => {
                        let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                    _ => {}
                }
            }
            ws
        }));
    }
    // Let every reader task run once and park on its socket before the first event, so that
    // event 1 measures delivery rather than the load generator starting 10 000 tasks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut fanout = Vec::new();
    let mut fanout_cpu = Vec::new();
    let cpu_ms = |pid: u32| machine::cpu_ticks(pid).map(|t| t as f64 * 1000.0 / machine::clock_ticks_per_second());
    for round in 0..FANOUT_EVENTS {
        let _ = round_tx.send(round);
        let cpu_before = (cpu_ms(server.pid())?, cpu_ms(std::process::id())?);
        let sent = Instant::now();
        send(round).await?;
        let until = Instant::now() + FANOUT_TIMEOUT;
        loop {
            let received = arrivals.lock().map(|a| a[round].len()).unwrap_or(0);
            if received >= sockets || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fanout_cpu.push((cpu_ms(server.pid())? - cpu_before.0, cpu_ms(std::process::id())? - cpu_before.1));
        let mut latencies: Vec<Duration> = arrivals
            .lock()
            .map(|a| a[round].iter().map(|t| t.saturating_duration_since(sent)).collect())
            .unwrap_or_default();
        latencies.sort();
        let pick = |q: f64| {
            latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
        };
        fanout.push((latencies.len(), pick(0.5), pick(0.99), latencies.last().copied().unwrap_or_default()));
        eprintln!("bench: B6 event {} reached {}/{sockets} sockets, p99 {:?}", round + 1, latencies.len(), pick(0.99));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for reader in readers {
        reader.abort();
    }
    let resolutions = server.metric("bff_live_feed_resolutions_total").await?.unwrap_or(0.0) - resolutions;
    Ok((fanout, fanout_cpu, resolutions / FANOUT_EVENTS as f64))
}

/// B6 over distinct users: `users[0]` creates a group with all the others, every user opens
/// `sockets / users` sockets subscribed to `events`, then `users[0]` sends FANOUT_EVENTS
/// messages to the group: each is one event in every member's log (its own included), so
/// every socket receives it, and the server resolves it once per user.
async fn spread(server: &Server, users: &[(i64, String)], sockets: usize) -> anyhow::Result<(usize, usize, Rounds)> {
    use base64::Engine as _;
    // The previous sockets are gone once their subscriptions are.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.metric("bff_live_subscriptions").await?.unwrap_or(0.0) > 0.0 {
        anyhow::ensure!(Instant::now() < deadline, "the B6 subscriptions did not end within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (creator, _) = users.split_first().context("no users")?;
    let members: Vec<String> = users[1..]
        .iter()
        .map(|(id, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("User:{id}")))
        .collect();
    let create = "mutation($m: [ID!]!) { createGroup(input: { title: \"bench fan-out\", memberIds: $m }) { conversation { id } } }";
    let group =
        graphql(server, &creator.1, create, json!({ "m": members })).await?["createGroup"]["conversation"]["id"]
            .clone();
    let per_user = (sockets / users.len()).max(1);
    let tokens: Vec<&str> = users.iter().flat_map(|(_, t)| std::iter::repeat_n(t.as_str(), per_user)).collect();
    let total = tokens.len();
    let mut opened = connect_each(server.addr, &tokens).await?;
    subscribe_paced(server, &mut opened).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rounds = fan_out(server, opened, |round| {
        graphql(server, &creator.1, SEND, json!({ "c": group, "m": format!("bench-spread-{round:04}") }))
    })
    .await?;
    Ok((users.len(), total, rounds))
}

const SEND: &str = "mutation($c: ID!, $m: String!) { sendMessage(input: { conversationId: $c, clientMessageId: $m, body: \"bench\" }) { message { seq } } }";

/// Runs B5, B6 and R1 against `server` (started with a raised per-user connection cap).
pub async fn measure(
    server: &Server,
    alice: &str,
    bob: &str,
    users: &[(i64, String)],
    sockets: usize,
    backend: &'static str,
) -> anyhow::Result<RealtimeReport> {
    // A conversation bob → alice; one message warms every path before RSS is read.
    let alice_id = graphql(server, alice, "{ viewer { id } }", json!({})).await?["viewer"]["id"].clone();
    let conversation = graphql(
        server,
        bob,
        "mutation($u: ID!) { startConversation(input: { userId: $u }) { conversation { id } } }",
        json!({ "u": alice_id }),
    )
    .await?["startConversation"]["conversation"]["id"]
        .clone();
    let warm = open_all(server.addr, 8, alice).await?;
    graphql(server, bob, SEND, json!({ "c": conversation, "m": "bench-warm-0001" })).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let rss_before_kib = rss_kib(server.pid())?;
    let started = Instant::now();
    let mut opened = connect_all(server.addr, sockets, alice).await.context("opening the sockets")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected_kib = rss_kib(server.pid())?;
    subscribe_paced(server, &mut opened).await?;
    eprintln!("bench: B5 {sockets} sockets subscribed in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kib = rss_kib(server.pid())?;

    // B6: one event in alice's log, which every socket subscribes to.
    let (fanout, fanout_cpu, fanout_resolutions) = fan_out(server, opened, |round| {
        graphql(server, bob, SEND, json!({ "c": conversation, "m": format!("bench-fanout-{round:04}") }))
    })
    .await?;

    // B6 over distinct users: one group message is one event in each member's log.
    let spread = match users {
        [_, _, ..] => Some(spread(server, users, sockets).await.context("B6 over distinct users")?),
        _ => None,
    };

    // R1: two subscribers, SENDERS concurrent senders for THROUGHPUT_SECONDS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut listeners = open_all(server.addr, 1, alice).await?;
    listeners.extend(open_all(server.addr, 1, bob).await?);
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut listening = Vec::new();
    for mut ws in listeners {
        let delivered = delivered.clone();
        listening.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if matches!(&message, Message::Text(t) if t.contains("\"next\"")) {
                    delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = delivered.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let stop = started + Duration::from_secs(THROUGHPUT_SECONDS);
    let sent = futures_util::future::join_all((0..SENDERS).map(|sender| {
        let conversation = conversation.clone();
        async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                let id = format!("bench-r1-{sender:03}-{n:08}");
                if graphql(server, bob, SEND, json!({ "c": conversation, "m": id })).await.is_err() {
                    break;
                }
                n += 1;
            }
            n
        }
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = delivered.load(std::sync::atomic::Ordering::Relaxed) - before;
    for task in listening {
        task.abort();
    }
    Ok(RealtimeReport {
        backend,
        sockets,
        rss_before_kib,
        rss_connected_kib,
        rss_after_kib,
        fanout,
        fanout_cpu,
        fanout_resolutions,
        spread,
        messages: sent.iter().sum(),
        delivered,
        seconds,
    })
}
