//! The bounded outbound queue of one socket, and the single writer task that
//! drains it into the `actix_ws::Session`.
//!
//! Rooms and actors only ever `try_send` into an [`Outbox`]: they never await
//! a peer. When the queue is full the peer is not reading; the outbox raises
//! its slow signal, the owning socket actor closes the peer (1008) and
//! deregisters, and nobody else waits.
//!
//! Each send also looks how full the queue is ([`Saturation`], one atomic
//! load): a queue that rises past 3/4 of its capacity counts one saturation
//! (`wimz_outbox_saturated_total`), the warning before a slow consumer.

use actix_ws::{CloseCode, CloseReason, Session};
use bytestring::ByteString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// One item for the writer.
#[derive(Debug)]
pub enum Out {
    Text(ByteString),
    Ping,
    Pong(bytes::Bytes),
    Close(CloseReason),
    /// A close frame after which the connection goes on being read until
    /// every sender of this queue is gone (the socket actor stopped and its
    /// rooms let go): the relay's side of a closing handshake.
    CloseAndRead(CloseReason),
}

/// Raised when a peer's queue overflowed; shared by every sender of the
/// queue, with its [`Saturation`] watch.
pub struct SlowSignal {
    fired: AtomicBool,
    /// Wakes the socket actor (stores a permit if it is not waiting yet).
    pub notify: Notify,
    saturation: Saturation,
}

impl SlowSignal {
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }
    fn fire(&self) {
        if !self.fired.swap(true, Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }
}

/// Sending half of a socket's queue. Cheap to clone; rooms hold one per member.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Out>,
    slow: Arc<SlowSignal>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbox(cap={})", self.tx.max_capacity())
    }
}

impl Outbox {
    /// An outbox with no socket behind it: every send is dropped. Used where
    /// a frame's sender lives on another instance.
    pub fn closed() -> Outbox {
        detached(1, metrics::Counter::noop()).0
    }

    /// Queues a text frame; false (and the slow signal raised) when full,
    /// false when the writer is gone.
    pub fn send(&self, text: impl Into<ByteString>) -> bool {
        self.push(Out::Text(text.into()))
    }

    pub fn ping(&self) -> bool {
        self.push(Out::Ping)
    }

    pub fn pong(&self, data: bytes::Bytes) -> bool {
        self.push(Out::Pong(data))
    }

    /// Queues a close frame after whatever is queued; if the queue is full
    /// the writer is told to drop the peer at once instead.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.queue_close(Out::Close, code, reason);
    }

    /// As [`close`](Self::close), but the connection stays open for reading
    /// (the peer's frames sent before it saw the close, then its reply)
    /// until every holder of this outbox has dropped it.
    pub fn close_and_read(&self, code: CloseCode, reason: &str) {
        self.queue_close(Out::CloseAndRead, code, reason);
    }

    fn queue_close(&self, kind: fn(CloseReason) -> Out, code: CloseCode, reason: &str) {
        let reason = CloseReason {
            code,
            description: Some(reason.to_string()),
        };
        if self.tx.try_send(kind(reason)).is_err() {
            self.slow.fire();
        }
    }

    fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => {
                self.slow.saturation.after_send(self.tx.capacity());
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.fire();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn is_slow(&self) -> bool {
        self.slow.fired()
    }
}

/// Handle the socket actor keeps: the slow signal and a way to kill the writer.
pub struct WriterHandle {
    pub slow: Arc<SlowSignal>,
    kill: Arc<Notify>,
}

impl WriterHandle {
    /// Drops the peer now: a best-effort close frame, then the session goes.
    pub fn kill(&self) {
        self.kill.notify_one();
    }
}

/// An outbox and the receiving half of its queue, with no writer task
/// (`spawn_writer` adds one; benchmarks read the queue themselves).
/// `saturated` counts the queue's saturations.
pub fn detached(capacity: usize, saturated: metrics::Counter) -> (Outbox, mpsc::Receiver<Out>) {
    let (tx, rx) = mpsc::channel(capacity);
    let slow = Arc::new(SlowSignal {
        fired: AtomicBool::new(false),
        notify: Notify::new(),
        saturation: Saturation::new(capacity, saturated),
    });
    (Outbox { tx, slow }, rx)
}

/// Counts a queue's saturations: once when what is queued reaches 3/4 of
/// the capacity, again only after it fell back to 1/4 or less (so a queue
/// that stays full counts once, not once per frame). Senders on any thread.
pub struct Saturation {
    /// Free slots at or under which the queue is saturated...
    saturated_at: usize,
    /// ...and at or over which it is not any more.
    relieved_at: usize,
    saturated: AtomicBool,
    counter: metrics::Counter,
}

impl Saturation {
    pub fn new(capacity: usize, counter: metrics::Counter) -> Saturation {
        Saturation {
            saturated_at: capacity / 4,
            relieved_at: (capacity * 3).div_ceil(4),
            saturated: AtomicBool::new(false),
            counter,
        }
    }

    /// `free`: slots left in the queue after a send.
    pub fn after_send(&self, free: usize) {
        if free <= self.saturated_at {
            if !self.saturated.swap(true, Ordering::Relaxed) {
                self.counter.increment(1);
            }
        } else if free >= self.relieved_at && self.saturated.load(Ordering::Relaxed) {
            self.saturated.store(false, Ordering::Relaxed);
        }
    }
}

/// Starts the writer task on the current arbiter; `saturated` counts the
/// queue's saturations.
pub fn spawn_writer(
    session: Session,
    capacity: usize,
    saturated: metrics::Counter,
) -> (Outbox, WriterHandle) {
    let (outbox, rx) = detached(capacity, saturated);
    let kill = Arc::new(Notify::new());
    actix_rt::spawn(writer(session, rx, kill.clone()));
    let slow = outbox.slow.clone();
    (outbox, WriterHandle { slow, kill })
}

async fn writer(mut session: Session, mut rx: mpsc::Receiver<Out>, kill: Arc<Notify>) {
    let slow_close = CloseReason {
        code: super::close::SLOW_CONSUMER,
        description: Some("slow_consumer".into()),
    };
    // One registration with the kill switch for the writer's whole life
    // (a fresh `notified()` per frame took the Notify's lock twice per frame).
    let killed = kill.notified();
    tokio::pin!(killed);
    loop {
        let item = tokio::select! {
            biased;
            _ = &mut killed => None,
            item = rx.recv() => Some(item),
        };
        let sent = match item {
            None => {
                // The peer is not reading: a close frame may not get through;
                // try briefly, then drop the session (ends the connection).
                let _ = tokio::time::timeout(
                    Duration::from_millis(200),
                    session.close(Some(slow_close)),
                )
                .await;
                return;
            }
            Some(None) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), session.close(None)).await;
                return;
            }
            Some(Some(Out::Close(reason))) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), session.close(Some(reason))).await;
                return;
            }
            Some(Some(Out::CloseAndRead(reason))) => {
                // The clone keeps the response open (the vendored actix-ws
                // ends it when the last `Session` goes), so the peer is
                // still read; nothing more is written after the close.
                let keep = session.clone();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), session.close(Some(reason))).await;
                loop {
                    tokio::select! {
                        biased;
                        _ = &mut killed => break,
                        item = rx.recv() => if item.is_none() { break },
                    }
                }
                drop(keep);
                return;
            }
            Some(Some(Out::Text(t))) => {
                tokio::select! {
                    biased;
                    _ = &mut killed => {
                        let _ = tokio::time::timeout(Duration::from_millis(200), session.close(Some(slow_close))).await;
                        return;
                    }
                    r = session.text(t) => r,
                }
            }
            Some(Some(Out::Ping)) => session.ping(b"hb").await,
            Some(Some(Out::Pong(d))) => session.pong(&d).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_counts_one_saturation_per_rise_past_three_quarters() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
        let counter = metrics::Recorder::register_counter(
            &recorder,
            &metrics::Key::from_static_name("saturated_total"),
            &meta,
        );
        let (outbox, mut rx) = detached(8, counter);
        let fill = |n: usize| {
            for _ in 0..n {
                outbox.send("x");
            }
        };
        // 6 of 8 queued is 3/4: one saturation, however long it stays (and
        // when it overflows).
        fill(5);
        assert!(handle.render().contains("saturated_total 0"));
        fill(1);
        fill(4);
        assert!(outbox.is_slow());
        // Drained to 2 (1/4 or less), then up to 6 again: a second one.
        while rx.len() > 1 {
            rx.try_recv().unwrap();
        }
        fill(1);
        fill(4);
        let text = handle.render();
        assert!(text.contains("saturated_total 2"), "{text}");
    }
}
