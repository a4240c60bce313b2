//! The bounded outbound queue of one socket: its `actix_ws::Session`.
//!
//! Rooms and actors only ever `try_send` into an [`Outbox`]: they never await
//! a peer. The queue is the session's own (`limits.outbound_queue`
//! messages, `actix_ws::handle_with_capacity`, a vendored patch), drained
//! by the connection's response body inside the HTTP dispatcher: every
//! frame queued since the dispatcher last ran is encoded into one chunk and
//! written with one `write`, and no task of ours sits between a room and the
//! socket (docs/BENCHMARKS.md, "Relay vs floor", says what that saved).
//! When the queue is full the peer is not reading; the outbox raises its
//! slow signal, the owning socket actor aborts the session (the queued
//! frames are dropped, a 1008 close is the last frame) and deregisters, and
//! nobody else waits.
//!
//! Each send also looks how full the queue is ([`Saturation`], one atomic
//! load): a queue that rises past 3/4 of its capacity counts one saturation
//! (`wimz_outbox_saturated_total`), the warning before a slow consumer.

use actix_ws::{CloseCode, CloseReason, Message, Session};
use bytestring::ByteString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;

/// Ping payload of the relay's heartbeat.
const PING: &[u8] = b"hb";

/// Raised when a peer's queue overflowed; shared by every sender of the
/// queue, with its [`Saturation`] watch.
pub struct SlowSignal {
    fired: AtomicBool,
    /// Wakes the socket actor (stores a permit if it is not waiting yet).
    pub notify: Notify,
    saturation: Saturation,
}

impl SlowSignal {
    fn new(capacity: usize, saturated: metrics::Counter) -> Arc<SlowSignal> {
        Arc::new(SlowSignal {
            fired: AtomicBool::new(false),
            notify: Notify::new(),
            saturation: Saturation::new(capacity, saturated),
        })
    }
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
    session: Session,
    slow: Arc<SlowSignal>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbox(free={})", self.session.capacity())
    }
}

impl Outbox {
    /// An outbox with no socket behind it: every send is dropped. Used where
    /// a frame's sender lives on another instance.
    pub fn closed() -> Outbox {
        detached(1, metrics::Counter::noop()).0
    }

    /// Queues a text frame; false (and the slow signal raised) when full,
    /// false when the socket is gone or closing.
    pub fn send(&self, text: impl Into<ByteString>) -> bool {
        self.push(Message::Text(text.into()))
    }

    pub fn ping(&self) -> bool {
        self.push(Message::Ping(bytes::Bytes::from_static(PING)))
    }

    pub fn pong(&self, data: bytes::Bytes) -> bool {
        self.push(Message::Pong(data))
    }

    /// Queues a close frame after whatever is queued (nothing is queued
    /// after it; the connection ends once it is written); if the queue is
    /// full the peer is dropped at once instead (its queued frames with it).
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.queue_close(code, reason, false);
    }

    /// As [`close`](Self::close), but the connection stays open for reading
    /// (the peer's frames sent before it saw the close, then its reply)
    /// until every holder of this outbox has dropped it.
    pub fn close_and_read(&self, code: CloseCode, reason: &str) {
        self.queue_close(code, reason, true);
    }

    fn queue_close(&self, code: CloseCode, reason: &str, linger: bool) {
        let reason = CloseReason {
            code,
            description: Some(reason.to_string()),
        };
        if let Err(TrySendError::Full(_)) = self.session.try_close(Some(reason.clone()), linger) {
            // No room for the close: a peer that stopped reading. Dropped
            // at once (no lingering), that close its last frame.
            self.slow.fire();
            self.session.abort(Some(reason));
        }
    }

    fn push(&self, msg: Message) -> bool {
        match self.session.try_send(msg) {
            Ok(()) => {
                self.slow.saturation.after_send(self.session.capacity());
                true
            }
            Err(TrySendError::Full(_)) => {
                self.slow.fire();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    pub fn is_slow(&self) -> bool {
        self.slow.fired()
    }
}

/// Handle the socket actor keeps: the slow signal and a way to drop the peer.
pub struct PeerHandle {
    pub slow: Arc<SlowSignal>,
    session: Session,
}

impl PeerHandle {
    /// Drops the peer now: what is still queued is dropped, a close frame
    /// (1008 `slow_consumer`) is the last one (unless ours is out already),
    /// then the connection ends.
    pub fn kill(&self) {
        self.session.abort(Some(CloseReason {
            code: super::close::SLOW_CONSUMER,
            description: Some("slow_consumer".into()),
        }));
    }
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

/// An outbox and the receiving half of its queue, with no connection
/// behind it (benchmarks and tests read the queue themselves). `saturated`
/// counts the queue's saturations.
pub fn detached(capacity: usize, saturated: metrics::Counter) -> (Outbox, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel(capacity);
    let session = Session::new(tx);
    let slow = SlowSignal::new(capacity, saturated);
    (Outbox { session, slow }, rx)
}

/// The outbox of a socket whose session was made with a queue of
/// `capacity` (`limits.outbound_queue`, `actix_ws::handle_with_capacity`);
/// `saturated` counts the queue's saturations.
pub fn attach(
    session: Session,
    capacity: usize,
    saturated: metrics::Counter,
) -> (Outbox, PeerHandle) {
    let slow = SlowSignal::new(capacity, saturated);
    let handle = PeerHandle {
        slow: slow.clone(),
        session: session.clone(),
    };
    (Outbox { session, slow }, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: Message) -> String {
        match m {
            Message::Text(t) => t.to_string(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn frames_queue_in_order_and_a_full_queue_raises_the_slow_signal() {
        let (outbox, mut rx) = detached(3, metrics::Counter::noop());
        let other = outbox.clone();
        assert!(outbox.send("a"));
        assert!(other.send("b"));
        assert!(outbox.send("c"));
        assert!(!outbox.is_slow());
        // Full: refused at once (never awaited), the peer marked slow.
        assert!(!other.send("d"));
        assert!(outbox.is_slow());
        let got: Vec<String> = (0..3).map(|_| text(rx.try_recv().unwrap())).collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert!(rx.try_recv().is_err(), "nothing after the refused frame");
    }

    #[test]
    fn a_close_queues_behind_the_frames_and_sends_fail_once_the_socket_is_gone() {
        let (outbox, mut rx) = detached(4, metrics::Counter::noop());
        assert!(outbox.send("last event"));
        outbox.close(CloseCode::Away, "relay_shutdown");
        assert_eq!(text(rx.try_recv().unwrap()), "last event");
        match rx.try_recv().unwrap() {
            Message::Close(Some(r)) => {
                assert_eq!(r.code, CloseCode::Away);
                assert_eq!(r.description.as_deref(), Some("relay_shutdown"));
            }
            other => panic!("expected the close frame, got {other:?}"),
        }
        drop(rx);
        assert!(!outbox.send("late"), "no socket behind it");
        assert!(!outbox.is_slow(), "a gone socket is not a slow one");
        assert!(!Outbox::closed().send("x"));
    }

    /// An upgraded socket's session and response body, as `ws::upgrade` makes them.
    async fn socket(capacity: usize) -> (Outbox, PeerHandle, actix_web::body::BoxBody) {
        use actix_web::FromRequest;
        let (req, mut payload) = actix_web::test::TestRequest::get()
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "upgrade"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .to_http_parts();
        let body = actix_web::web::Payload::from_request(&req, &mut payload)
            .await
            .unwrap();
        let (response, session, _stream) =
            actix_ws::handle_with_capacity(&req, body, &[], capacity).unwrap();
        let (outbox, handle) = attach(session, capacity, metrics::Counter::noop());
        (outbox, handle, response.into_body())
    }

    /// Polls the body once, as the dispatcher does when it is woken:
    /// `Some(frames)` of one chunk, `None` at its end.
    async fn next_chunk(body: &mut actix_web::body::BoxBody) -> Option<Vec<String>> {
        use actix_codec::Decoder;
        use actix_http::ws::{Codec, Frame};
        use actix_web::body::MessageBody;
        let chunk = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_next(cx)).await;
        let chunk = match chunk {
            None => return None,
            Some(Ok(bytes)) => bytes,
            Some(Err(_)) => panic!("body error"),
        };
        let mut buf = bytes::BytesMut::from(&chunk[..]);
        let mut codec = Codec::new().client_mode();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push(match frame {
                Frame::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                Frame::Close(Some(r)) => {
                    format!(
                        "close {} {}",
                        u16::from(r.code),
                        r.description.unwrap_or_default()
                    )
                }
                other => format!("{other:?}"),
            });
        }
        assert!(buf.is_empty(), "whole frames only");
        Some(frames)
    }

    #[actix_rt::test]
    async fn every_queued_frame_is_in_the_next_chunk_in_order_with_no_task_between() {
        let (outbox, _handle, mut body) = socket(64).await;
        let room = outbox.clone();
        for i in 0..10 {
            assert!(room.send(format!("e{i}")));
        }
        // No task ran since the sends: the body (polled by the dispatcher)
        // reads the socket's queue itself, and one poll takes everything.
        let want: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
        assert_eq!(next_chunk(&mut body).await.unwrap(), want);
        // A close queued behind a batch: nothing before it is lost, it is
        // the last frame, and the response ends.
        assert!(room.send("e10"));
        assert!(room.send("e11"));
        outbox.close(CloseCode::Away, "relay_shutdown");
        assert!(!room.send("after close"));
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["e10", "e11", "close 1001 relay_shutdown"]
        );
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[actix_rt::test]
    async fn a_slow_consumer_is_dropped_with_a_close_and_its_queue() {
        let (outbox, handle, mut body) = socket(4).await;
        for i in 0..4 {
            assert!(outbox.send(format!("e{i}")));
        }
        assert!(!outbox.send("e4"), "the queue of 4 is full");
        assert!(handle.slow.fired());
        // The socket actor drops the peer: what is queued goes, the close
        // frame is the last one, the response ends, later sends fail.
        handle.kill();
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["close 1008 slow_consumer"]
        );
        assert_eq!(next_chunk(&mut body).await, None);
        assert!(!outbox.send("late"));
    }

    #[actix_rt::test]
    async fn a_close_into_a_full_queue_drops_the_peer_at_once_with_that_close() {
        let (outbox, handle, mut body) = socket(2).await;
        assert!(outbox.send("e0"));
        assert!(outbox.send("e1"));
        outbox.close(CloseCode::Away, "relay_shutdown");
        assert!(
            handle.slow.fired(),
            "no room for the close: a slow consumer"
        );
        assert!(!outbox.send("late"));
        // What was queued is dropped; the close is the only frame left.
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["close 1001 relay_shutdown"]
        );
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[actix_rt::test]
    async fn a_close_and_read_into_a_full_queue_drops_the_peer_at_once_without_lingering() {
        let (outbox, handle, mut body) = socket(2).await;
        assert!(outbox.send("e0"));
        assert!(outbox.send("e1"));
        outbox.close_and_read(CloseCode::Restart, "relay_shutdown");
        assert!(
            handle.slow.fired(),
            "no room for the close: a slow consumer"
        );
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["close 1012 relay_shutdown"]
        );
        // The holders are all still alive: a peer that does not read is not
        // read to the end of a closing handshake it will never answer.
        assert_eq!(next_chunk(&mut body).await, None);
        drop((outbox, handle));
    }

    #[actix_rt::test]
    async fn a_close_and_read_keeps_the_connection_until_every_holder_let_go() {
        let (outbox, handle, mut body) = socket(16).await;
        let room = outbox.clone();
        assert!(room.send("last event"));
        outbox.close_and_read(CloseCode::Restart, "relay_shutdown");
        assert!(
            !room.send("after close"),
            "nothing is queued after our close"
        );
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["last event", "close 1012 relay_shutdown"]
        );
        // The response stays open (the connection is still read) while a
        // room or the socket actor holds the outbox...
        let pending = std::future::poll_fn(|cx| {
            use actix_web::body::MessageBody;
            std::task::Poll::Ready(std::pin::Pin::new(&mut body).poll_next(cx).is_pending())
        })
        .await;
        assert!(pending, "open while holders remain");
        drop(room);
        drop(outbox);
        drop(handle);
        // ...and ends, with no second close frame, once they all let go.
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[actix_rt::test]
    async fn a_slow_consumer_behind_our_close_is_ended_without_a_second_close() {
        let (outbox, handle, mut body) = socket(16).await;
        outbox.close_and_read(CloseCode::Restart, "relay_shutdown");
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            ["close 1012 relay_shutdown"]
        );
        handle.kill();
        assert_eq!(next_chunk(&mut body).await, None);
        drop(outbox);
    }

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
