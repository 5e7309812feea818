//! Deterministic DataLoader batching: loader batches run on the request's own task.
//!
//! async-graphql's DataLoader hands each batch to a spawner after a delay. With
//! `tokio::spawn` on a multi-threaded runtime, a batch can start on another core before
//! every sibling resolver has registered its key, splitting one batch into several — so the
//! number of SQL statements per screen would depend on timing. Here the spawner only queues
//! the batch; [`drive`] polls the operation first and runs queued batches when the operation
//! can make no further progress. Every key of a level is therefore registered before its
//! batch runs, with no artificial delay, and the statement count of a query is a function of
//! its shape alone.

use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use tokio::sync::mpsc;

/// Receives batches queued by the loaders of one operation.
pub struct BatchQueue {
    rx: mpsc::UnboundedReceiver<BoxFuture<'static, ()>>,
}

/// The spawner given to every DataLoader of one operation.
#[derive(Clone)]
pub struct BatchSpawner {
    tx: mpsc::UnboundedSender<BoxFuture<'static, ()>>,
}

impl BatchSpawner {
    /// Queues a batch (dropped if the operation already finished).
    pub fn spawn(&self, batch: BoxFuture<'static, ()>) {
        let _ = self.tx.send(batch);
    }
}

/// A connected spawner and queue.
pub fn channel() -> (BatchSpawner, BatchQueue) {
    let (tx, rx) = mpsc::unbounded_channel();
    (BatchSpawner { tx }, BatchQueue { rx })
}

/// Wraps the task's waker to notice when the operation wakes itself while being polled.
struct YieldDetector {
    woken: AtomicBool,
    inner: Waker,
}

impl Wake for YieldDetector {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.inner.wake_by_ref();
    }
}

/// Runs `operation` to completion, running queued batches whenever it is waiting.
///
/// Large lists are polled through `FuturesUnordered`, which yields (wakes itself and returns
/// `Pending`) after a budget of children. Such a yield is not "waiting for data": the
/// operation is polled again at once, and batches only run once it returns `Pending` without
/// having woken itself, i.e. when every resolver of the level has registered its key.
pub async fn drive<F: Future>(operation: F, mut queue: BatchQueue) -> F::Output {
    let mut operation = pin!(operation);
    let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
    std::future::poll_fn(move |cx| {
        loop {
            let detector = Arc::new(YieldDetector { woken: AtomicBool::new(false), inner: cx.waker().clone() });
            let waker = Waker::from(detector.clone());
            if let Poll::Ready(output) = operation.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(output);
            }
            if !detector.woken.load(Ordering::Acquire) {
                break;
            }
        }
        // A new level starts only when the previous one has answered completely: otherwise a
        // batch finishing early lets its children queue keys that siblings of theirs (waiting
        // on a slower batch of the same level) would have added, splitting one batch in two.
        if running.is_empty() {
            while let Poll::Ready(Some(batch)) = queue.rx.poll_recv(cx) {
                running.push(batch);
            }
        }
        // A batch that finishes sends its results, which wakes this task, so the operation
        // is polled again with every key of the level answered.
        while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
        Poll::Pending
    })
    .await
}

/// A subscription stream whose loader batches are driven like [`drive`] drives an operation:
/// each result is resolved with every key of a level in one batch.
pub fn drive_stream<S>(stream: S, queue: BatchQueue) -> DrivenStream<S>
where
    S: futures_util::Stream + Unpin,
{
    DrivenStream { stream, queue, running: FuturesUnordered::new() }
}

/// See [`drive_stream`].
pub struct DrivenStream<S> {
    stream: S,
    queue: BatchQueue,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl<S> futures_util::Stream for DrivenStream<S>
where
    S: futures_util::Stream + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let detector = Arc::new(YieldDetector { woken: AtomicBool::new(false), inner: cx.waker().clone() });
            let waker = Waker::from(detector.clone());
            if let Poll::Ready(item) = this.stream.poll_next_unpin(&mut Context::from_waker(&waker)) {
                return Poll::Ready(item);
            }
            if !detector.woken.load(Ordering::Acquire) {
                break;
            }
        }
        if this.running.is_empty() {
            while let Poll::Ready(Some(batch)) = this.queue.rx.poll_recv(cx) {
                this.running.push(batch);
            }
        }
        while let Poll::Ready(Some(())) = this.running.poll_next_unpin(cx) {}
        Poll::Pending
    }
}
