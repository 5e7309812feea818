//! Shared delivery of the log-backed subscriptions (`events`, `presenceChanged`).
//!
//! One task per user with live subscriptions on this replica (a *feed*) follows that user's
//! log: it reads each new event once (from the bus wake, or from the log when the wake does
//! not continue exactly), resolves it once per distinct operation (document, operation name,
//! variables) and hands the same `Arc<Response>` to every subscription running that
//! operation. An idle subscription is a bounded queue and a few words in its user's feed, not
//! an async-graphql stream of its own, and an event is resolved once per distinct operation
//! whatever the number of sockets running it.
//!
//! No gap, no duplicate: the feed is the only writer to its members' queues and walks the
//! log in seq order. Each member remembers the last seq it was given; it takes an event
//! live only when the event follows that seq exactly. A member that starts behind the feed
//! (`afterSeq` in the past) or whose queue is full (a socket that does not read) is *behind*
//! and is caught up from the log in chunks that fit its queue, when its stream has drained
//! and at least every [`CATCH_UP_EVERY`]. A start older than retention, or a catch-up that
//! finds the next event pruned, gets one `RESYNC_REQUIRED` item and ends, like the
//! per-subscription streams in [`crate::realtime::stream`].
//!
//! A subscription without `afterSeq` starts after the position the feed has published when it
//! starts (no log read per join); one that joins while the feed is still busy with earlier
//! joins is caught up to the feed from the log, so it misses nothing delivered meanwhile.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use async_graphql::Response;
use tokio::sync::{
    broadcast::{Receiver, error::RecvError},
    mpsc,
};

use crate::realtime::store as events;
use crate::{
    app::App,
    kernel::graphql::error::domain_error,
    realtime::{
        bus::Wake,
        entities::user_event,
        log::{self, Start},
        shared::Operation,
        stream::Item,
    },
};

/// Results queued per subscription before it counts as behind.
const QUEUE: usize = 64;
/// Rows read per log statement.
const PAGE: usize = 200;
/// How often a feed with behind members or a failed read retries without being asked.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Set by the feed when a member falls behind; its stream then asks for more once drained.
#[derive(Default)]
struct Flags {
    behind: AtomicBool,
}

enum Control {
    Join(Box<Join>),
    Leave(u64),
    Drained(u64),
}

struct Join {
    id: u64,
    /// `afterSeq` as given (checked against the log by the feed), or, without it, the
    /// feed's published position when the subscription started (`None`: not known yet).
    start: JoinStart,
    operation: Operation,
    queue: mpsc::Sender<Arc<Response>>,
    flags: Arc<Flags>,
}

/// Where a joining subscription starts.
#[derive(Clone, Copy)]
enum JoinStart {
    /// After this seq, as the client asked (`afterSeq`): the feed checks it against the log.
    Resume(i64),
    /// Only new events: after the feed's position when the subscription started, read from
    /// the position the feed publishes (`None` before the feed knows it), so a join costs
    /// no log read and a subscription waiting in the feed's queue misses nothing.
    New(Option<i64>),
}

/// A running feed: its control queue, and the seq up to which it has delivered the log
/// (−1 before it has read the log's head).
struct FeedHandle {
    control: mpsc::UnboundedSender<Control>,
    position: Arc<AtomicI64>,
}

impl FeedHandle {
    /// Where a subscription starting now with `after` joins this feed.
    fn start(&self, after: Option<i64>) -> JoinStart {
        match after {
            Some(seq) => JoinStart::Resume(seq),
            None => {
                let position = self.position.load(Ordering::SeqCst);
                JoinStart::New((position >= 0).then_some(position))
            }
        }
    }
}

/// The feeds of this replica.
pub struct Fanout {
    pub(super) app: Arc<App>,
    feeds: Mutex<HashMap<i64, FeedHandle>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").finish_non_exhaustive()
    }
}

impl Fanout {
    /// No feeds yet.
    pub fn new(app: Arc<App>) -> Arc<Self> {
        Arc::new(Self { app, feeds: Mutex::default(), next_id: AtomicU64::new(1) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, FeedHandle>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.feeds.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a subscription of `user` running `operation` from `after` to the user's feed
    /// (started if needed); its results arrive through the returned membership.
    pub fn join(self: &Arc<Self>, user: i64, operation: Operation, after: Option<i64>) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, results) = mpsc::channel(QUEUE);
        let flags = Arc::new(Flags::default());
        let mut feeds = self.lock();
        // The start is taken again from whichever feed the join goes to (see the retry).
        let mut join = Box::new(Join { id, start: JoinStart::New(None), operation, queue, flags: flags.clone() });
        // A feed ends only under this lock, after checking its control queue is empty: a
        // join sent here is either seen by the running feed or goes to a new one. The retry
        // covers a feed task that died.
        for _ in 0..2 {
            let handle = feeds.entry(user).or_insert_with(|| {
                let (control, inbox) = mpsc::unbounded_channel();
                let position = Arc::new(AtomicI64::new(-1));
                tokio::spawn(run_feed(self.clone(), user, inbox, position.clone()));
                FeedHandle { control, position }
            });
            join.start = handle.start(after);
            match handle.control.send(Control::Join(join)) {
                Ok(()) => {
                    self.app.metrics.live.feed_joins.inc();
                    return Membership { id, results, flags, control: Some(handle.control.clone()) };
                }
                Err(mpsc::error::SendError(Control::Join(returned))) => {
                    join = returned;
                    feeds.remove(&user);
                }
                Err(_) => break,
            }
        }
        Membership { id, results, flags, control: None }
    }
}

/// One subscription's place in its user's feed; leaving is dropping it.
pub struct Membership {
    id: u64,
    results: mpsc::Receiver<Arc<Response>>,
    flags: Arc<Flags>,
    control: Option<mpsc::UnboundedSender<Control>>,
}

impl Membership {
    /// The next result, `None` when the subscription has ended (resync, failure, shutdown).
    pub async fn next(&mut self) -> Option<Arc<Response>> {
        let result = self.results.recv().await;
        if self.results.is_empty()
            && self.flags.behind.load(Ordering::SeqCst)
            && let Some(control) = &self.control
        {
            let _ = control.send(Control::Drained(self.id));
        }
        result
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(control) = &self.control {
            let _ = control.send(Control::Leave(self.id));
        }
    }
}

struct Member {
    id: u64,
    /// The last seq this member was given (or started after).
    last: i64,
    queue: mpsc::Sender<Arc<Response>>,
    flags: Arc<Flags>,
}

struct Group {
    operation: Operation,
    members: Vec<Member>,
}

/// What one user's feed knows.
struct Feed {
    app: Arc<App>,
    user: i64,
    /// The seq up to which the log has been delivered (`None` before the first join).
    position: Option<i64>,
    /// `position` for subscriptions about to join (see [`JoinStart::New`]).
    published: Arc<AtomicI64>,
    /// A log read failed: retry on the next tick.
    stale: bool,
    /// Some member may be behind: catch up on the next tick (cleared by a pass that finds
    /// none, so that an idle feed does not scan its members on every turn).
    laggards: bool,
    groups: Vec<Group>,
}

/// The next wake, or `None` when the bus is gone. A lagged receiver gets a wake without
/// events (read the log).
async fn next_wake(wakes: &mut Receiver<Arc<Wake>>, user_id: i64) -> Option<Arc<Wake>> {
    match wakes.recv().await {
        Ok(wake) => Some(wake),
        Err(RecvError::Lagged(_)) => Some(Arc::new(Wake { user_id, latest_seq: None, events: Vec::new() })),
        Err(RecvError::Closed) => None,
    }
}

// Steps are awaited through `Box::pin` so that the feed's own task stays small between
// events (one per user with a subscription on this replica).
async fn run_feed(
    fanout: Arc<Fanout>,
    user: i64,
    mut inbox: mpsc::UnboundedReceiver<Control>,
    published: Arc<AtomicI64>,
) {
    let live = &fanout.app.metrics.live;
    live.feeds.inc();
    let _counted = FeedGauge(live.feeds.clone());
    let mut wakes = fanout.app.bus.subscribe(user);
    let mut feed = Feed {
        app: fanout.app.clone(),
        user,
        position: None,
        published,
        stale: false,
        laggards: false,
        groups: Vec::new(),
    };
    let mut ticks = tokio::time::interval(CATCH_UP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if feed.groups.is_empty() {
            let mut feeds = fanout.lock();
            match inbox.try_recv() {
                Ok(control) => {
                    drop(feeds);
                    Box::pin(feed.handle(control)).await;
                    continue;
                }
                Err(_) => {
                    feeds.remove(&user);
                    return;
                }
            }
        }
        let retry = feed.stale || feed.laggards;
        tokio::select! {
            control = inbox.recv() => match control {
                Some(control) => Box::pin(feed.handle(control)).await,
                None => return,
            },
            wake = next_wake(&mut wakes, user) => match wake {
                Some(wake) => Box::pin(feed.advance(Some(wake))).await,
                None => return,
            },
            _ = ticks.tick(), if retry => {
                if feed.stale {
                    Box::pin(feed.advance(None)).await;
                }
                Box::pin(feed.catch_up_all()).await;
                feed.laggards = feed.any_behind();
            }
        }
    }
}

impl Feed {
    fn set_position(&mut self, seq: i64) {
        self.position = Some(seq);
        self.published.store(seq, Ordering::SeqCst);
    }

    fn any_behind(&self) -> bool {
        let position = self.position.unwrap_or(0);
        self.groups.iter().flat_map(|g| &g.members).any(|m| m.last < position)
    }

    async fn handle(&mut self, control: Control) {
        match control {
            Control::Join(join) => self.join(*join).await,
            Control::Leave(id) => {
                for group in &mut self.groups {
                    group.members.retain(|m| m.id != id);
                }
                self.groups.retain(|g| !g.members.is_empty());
            }
            Control::Drained(id) => {
                if let Some((g, m)) = self.find(id) {
                    self.catch_up(g, m).await;
                    // Still behind or not, the next tick's pass settles it.
                    self.laggards = true;
                }
            }
        }
    }

    fn find(&self, id: u64) -> Option<(usize, usize)> {
        self.groups
            .iter()
            .enumerate()
            .find_map(|(g, group)| group.members.iter().position(|m| m.id == id).map(|m| (g, m)))
    }

    async fn join(&mut self, join: Join) {
        let app = self.app.clone();
        let conn = app.db.conn();
        if self.position.is_none() {
            match events::head(conn, self.user).await {
                Ok(head) => self.set_position(head.map(|h| h.last_seq).unwrap_or(0)),
                Err(err) => {
                    let failure = domain_error(err.into());
                    let _ = send_all(&join.queue, &join.operation.resolve(vec![Err(failure)]).await);
                    return;
                }
            }
        }
        let checked = match join.start {
            // What the feed had delivered when the subscription started: no read needed.
            JoinStart::New(Some(seq)) => Ok(Start::After(seq)),
            // It started before the feed knew its position, which the first join just read.
            JoinStart::New(None) => Ok(Start::After(self.position.unwrap_or(0))),
            JoinStart::Resume(seq) => log::start(conn, self.user, Some(seq)).await,
        };
        let last = match checked {
            Ok(Start::After(seq)) => seq,
            Ok(Start::Resync { latest }) => {
                let _ = send_all(&join.queue, &join.operation.resolve(vec![Ok(Item::Resync { latest })]).await);
                return;
            }
            Err(err) => {
                let _ = send_all(&join.queue, &join.operation.resolve(vec![Err(domain_error(err))]).await);
                return;
            }
        };
        let member = Member { id: join.id, last, queue: join.queue, flags: join.flags };
        let g = match self.groups.iter().position(|g| g.operation.key == join.operation.key) {
            Some(g) => g,
            None => {
                self.groups.push(Group { operation: join.operation, members: Vec::new() });
                self.groups.len() - 1
            }
        };
        self.groups[g].members.push(member);
        let m = self.groups[g].members.len() - 1;
        if last < self.position.unwrap_or(0) {
            self.laggards = true;
            self.catch_up(g, m).await;
        }
    }

    /// Delivers what the log holds after the feed's position: the wake's events when they
    /// continue it exactly, otherwise what a read of the log returns.
    async fn advance(&mut self, wake: Option<Arc<Wake>>) {
        let Some(position) = self.position else { return };
        if let Some(wake) = &wake {
            if wake.latest_seq.is_some_and(|latest| latest <= position) {
                return;
            }
            let continues = wake.events.first().is_some_and(|e| e.seq <= position + 1)
                && wake.events.windows(2).all(|w| w[1].seq == w[0].seq + 1);
            if continues {
                let events = wake.events.iter().filter(|e| e.seq > position).cloned().collect();
                self.deliver(events).await;
                return;
            }
        }
        loop {
            let after = self.position.unwrap_or(position);
            let page = match events::after(self.app.db.conn(), self.user, after, PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, user = self.user, "reading the event log failed; retrying");
                    self.stale = true;
                    return;
                }
            };
            self.stale = false;
            let full = page.len() == PAGE;
            self.deliver(page).await;
            if !full {
                return;
            }
        }
    }

    /// Gives each event, in order, to every member it follows exactly, resolving it once per
    /// group that has such a member.
    async fn deliver(&mut self, events: Vec<user_event::Model>) {
        for event in events {
            let seq = event.seq;
            for group in &mut self.groups {
                let mut resolved: Option<Vec<Arc<Response>>> = None;
                for member in &mut group.members {
                    if member.last != seq - 1 {
                        continue;
                    }
                    let responses = match &resolved {
                        Some(responses) => responses,
                        None => resolved.insert(group.operation.resolve(vec![Ok(Item::Event(event.clone()))]).await),
                    };
                    match send_all(&member.queue, responses) {
                        Sent::All => member.last = seq,
                        Sent::Full => {
                            member.flags.behind.store(true, Ordering::SeqCst);
                            self.laggards = true;
                        }
                        Sent::Closed => member.last = GONE,
                    }
                }
                group.members.retain(|m| m.last != GONE);
            }
            self.groups.retain(|g| !g.members.is_empty());
            self.set_position(seq);
        }
    }

    async fn catch_up_all(&mut self) {
        let position = self.position.unwrap_or(0);
        let behind: Vec<u64> =
            self.groups.iter().flat_map(|g| &g.members).filter(|m| m.last < position).map(|m| m.id).collect();
        for id in behind {
            if let Some((g, m)) = self.find(id) {
                self.catch_up(g, m).await;
            }
        }
    }

    /// Sends member `m` of group `g` the next events after its position that fit its queue.
    async fn catch_up(&mut self, g: usize, m: usize) {
        let position = self.position.unwrap_or(0);
        let (user, conn) = (self.user, self.app.db.conn());
        let group = &mut self.groups[g];
        let (from, room, closed) = {
            let member = &group.members[m];
            (member.last, member.queue.capacity(), member.queue.is_closed())
        };
        if closed {
            group.members.remove(m);
            self.groups.retain(|g| !g.members.is_empty());
            return;
        }
        if room == 0 {
            group.members[m].flags.behind.store(true, Ordering::SeqCst);
            return;
        }
        let page = match events::after(conn, user, from, room.min(PAGE)).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, user, "catching up a subscription failed; retrying");
                group.members[m].flags.behind.store(true, Ordering::SeqCst);
                return;
            }
        };
        let (Some(first), Some(last)) = (page.first().map(|e| e.seq), page.last().map(|e| e.seq)) else {
            group.members[m].flags.behind.store(false, Ordering::SeqCst);
            return;
        };
        let sent = if first != from + 1 {
            // Retention pruned what this member still needed: it must refetch.
            let resync = group.operation.resolve(vec![Ok(Item::Resync { latest: last.max(position) })]).await;
            let _ = send_all(&group.members[m].queue, &resync);
            Sent::Closed
        } else {
            let items = page.into_iter().map(|e| Ok(Item::Event(e))).collect();
            let responses = group.operation.resolve(items).await;
            send_all(&group.members[m].queue, &responses)
        };
        let member = &mut group.members[m];
        match sent {
            Sent::All => {
                member.last = last;
                member.flags.behind.store(last < position, Ordering::SeqCst);
            }
            // Only this feed sends, and the chunk fit the free room: try again later.
            Sent::Full => member.flags.behind.store(true, Ordering::SeqCst),
            Sent::Closed => {
                group.members.remove(m);
                self.groups.retain(|g| !g.members.is_empty());
            }
        }
    }
}

/// Decrements the feed gauge when the feed's task ends, however it ends.
struct FeedGauge(prometheus_client::metrics::gauge::Gauge);

impl Drop for FeedGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Marks a member whose subscription has ended, for removal.
const GONE: i64 = i64::MIN;

enum Sent {
    All,
    Full,
    Closed,
}

fn send_all(queue: &mpsc::Sender<Arc<Response>>, responses: &[Arc<Response>]) -> Sent {
    if queue.capacity() < responses.len() {
        return if queue.is_closed() { Sent::Closed } else { Sent::Full };
    }
    for response in responses {
        match queue.try_send(response.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Sent::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => return Sent::Closed,
        }
    }
    Sent::All
}
