use std::{
    collections::VecDeque,
    future::{poll_fn, Future},
    io, mem,
    pin::Pin,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    task::{Context, Poll, Waker},
};

use actix_codec::{Decoder, Encoder};
use actix_http::{
    ws::{CloseReason, Codec, Frame, Message, ProtocolError},
    Payload,
};
use actix_web::{
    web::{Bytes, BytesMut},
    Error,
};
use bytestring::ByteString;
use futures_core::stream::Stream;
use tokio::sync::{mpsc::Receiver, oneshot};

use crate::AggregatedMessageStream;

// RFC 6455: Control frames MUST have payload length <= 125 bytes.
// Close payload is: 2-byte close code + optional UTF-8 reason, therefore the reason is <= 123 bytes.
const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;
const MAX_CLOSE_REASON_BYTES: usize = MAX_CONTROL_PAYLOAD_BYTES - 2;

/// WIM-Z relay patch: the bits a socket's `Session`, `StreamingBody` and
/// `MessageStream` share (vendor/README.md).
pub(crate) mod flags {
    /// `Session::try_close` with `linger`: after the Close frame the body
    /// stays open until the last sender is gone.
    pub(crate) const LINGER: u8 = 1;
    /// `Session::abort` fired the abort signal.
    pub(crate) const ABORT: u8 = 2;
    /// The `StreamingBody` is gone (the connection-closed signal fired).
    pub(crate) const BODY_GONE: u8 = 4;
}

/// WIM-Z relay patch: a oneshot receiver that a hot stream polls only once
/// its sender has raised `bit` in the shared flags (it does before sending),
/// or when the task's waker is not the one registered: not on every poll.
struct GatedSignal<T> {
    rx: oneshot::Receiver<T>,
    flags: Arc<AtomicU8>,
    bit: u8,
    registered: Option<Waker>,
}

impl<T> GatedSignal<T> {
    fn new(rx: oneshot::Receiver<T>, flags: Arc<AtomicU8>, bit: u8) -> Self {
        GatedSignal {
            rx,
            flags,
            bit,
            registered: None,
        }
    }

    /// `Ready` only with what the sender sent (a sender dropped without
    /// raising its bit stays `Pending`).
    fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        let raised = self.flags.load(Ordering::Acquire) & self.bit != 0;
        let registered = self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if !raised && registered {
            return Poll::Pending;
        }
        if !registered {
            self.registered = Some(cx.waker().clone());
        }
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(value)) => Poll::Ready(value),
            _ => Poll::Pending,
        }
    }
}

/// Response body for a WebSocket.
pub struct StreamingBody {
    session_rx: Receiver<Message>,
    connection_closed: Option<oneshot::Sender<()>>,
    /// WIM-Z relay patch: fired by [`Session::abort`](crate::Session::abort).
    abort: Option<GatedSignal<Option<CloseReason>>>,
    /// WIM-Z relay patch: shared with the `Session` and the `MessageStream` ([`flags`]).
    flags: Arc<AtomicU8>,
    messages: VecDeque<Message>,
    buf: BytesMut,
    codec: Codec,
    closing: bool,
    /// WIM-Z relay patch: a lingering Close frame is out; what is queued after it is dropped.
    close_sent: bool,
}

impl StreamingBody {
    pub(super) fn new(session_rx: Receiver<Message>) -> Self {
        StreamingBody {
            session_rx,
            connection_closed: None,
            abort: None,
            flags: Arc::new(AtomicU8::new(0)),
            messages: VecDeque::new(),
            buf: BytesMut::new(),
            codec: Codec::new(),
            closing: false,
            close_sent: false,
        }
    }

    pub(super) fn with_connection_close_signal(
        mut self,
        connection_closed: oneshot::Sender<()>,
    ) -> Self {
        self.connection_closed = Some(connection_closed);
        self
    }

    /// WIM-Z relay patch: `flags` before the abort signal (which is gated on them).
    pub(super) fn with_flags(mut self, flags: Arc<AtomicU8>) -> Self {
        self.flags = flags;
        self
    }

    pub(super) fn with_abort_signal(
        mut self,
        abort: oneshot::Receiver<Option<CloseReason>>,
    ) -> Self {
        self.abort = Some(GatedSignal::new(abort, self.flags.clone(), flags::ABORT));
        self
    }
}

/// Stream of messages from a WebSocket client.
pub struct MessageStream {
    payload: Payload,
    /// WIM-Z relay patch: gated on [`flags::BODY_GONE`].
    connection_closed: Option<GatedSignal<()>>,

    messages: VecDeque<Message>,
    buf: BytesMut,
    codec: Codec,
    closing: bool,
}

impl MessageStream {
    pub(super) fn new(payload: Payload) -> Self {
        MessageStream {
            payload,
            connection_closed: None,
            messages: VecDeque::new(),
            buf: BytesMut::new(),
            codec: Codec::new(),
            closing: false,
        }
    }

    pub(super) fn with_connection_close_signal(
        mut self,
        connection_closed: oneshot::Receiver<()>,
        shared: Arc<AtomicU8>,
    ) -> Self {
        self.connection_closed = Some(GatedSignal::new(
            connection_closed,
            shared,
            flags::BODY_GONE,
        ));
        self
    }

    /// Sets the maximum permitted size for received WebSocket frames, in bytes.
    ///
    /// By default, up to 64KiB is allowed.
    ///
    /// Any received frames larger than the permitted value will return
    /// `Err(ProtocolError::Overflow)` instead.
    ///
    /// ```no_run
    /// # use actix_ws::MessageStream;
    /// # fn test(stream: MessageStream) {
    /// // increase permitted frame size from 64KB to 1MB
    /// let stream = stream.max_frame_size(1024 * 1024);
    /// # }
    /// ```
    #[must_use]
    pub fn max_frame_size(mut self, max_size: usize) -> Self {
        self.codec = self.codec.max_size(max_size);
        self
    }

    /// Returns a stream wrapper that collects continuation frames into their equivalent aggregated
    /// forms, i.e., binary or text.
    ///
    /// By default, continuations will be aggregated up to 1MiB in size (customizable with
    /// [`AggregatedMessageStream::max_continuation_size()`]). The stream implementation returns an
    /// error if this size is exceeded.
    #[must_use]
    pub fn aggregate_continuations(self) -> AggregatedMessageStream {
        AggregatedMessageStream::new(self)
    }

    /// Waits for the next item from the message stream
    ///
    /// This is a convenience for calling the [`Stream`](Stream::poll_next()) implementation.
    ///
    /// ```no_run
    /// # use actix_ws::MessageStream;
    /// # async fn test(mut stream: MessageStream) {
    /// while let Some(Ok(msg)) = stream.recv().await {
    ///     // handle message
    /// }
    /// # }
    /// ```
    #[must_use]
    pub async fn recv(&mut self) -> Option<Result<Message, ProtocolError>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for StreamingBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();

        // If close has been initiated and there is no pending buffered data, end the stream.
        if this.closing && this.buf.is_empty() {
            return Poll::Ready(None);
        }

        // WIM-Z relay patch: an aborted session drops what is queued; its
        // close frame is the last one (a dropped signal is no abort).
        let mut aborted = false;
        if let Some(abort) = this.abort.as_mut() {
            if let Poll::Ready(reason) = abort.poll_signal(cx) {
                this.abort = None;
                aborted = true;
                this.session_rx.close();
                this.messages.clear();
                if this.close_sent {
                    // Our Close frame is out already: only end.
                    this.closing = true;
                } else {
                    this.messages.push_back(Message::Close(reason));
                }
            }
        }

        if !this.closing && !aborted {
            loop {
                match Pin::new(&mut this.session_rx).poll_recv(cx) {
                    Poll::Ready(Some(_)) if this.close_sent => {}
                    Poll::Ready(Some(msg)) => {
                        this.messages.push_back(msg);
                    }
                    Poll::Ready(None) => {
                        this.closing = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }

        while let Some(mut msg) = this.messages.pop_front() {
            let is_close = matches!(msg, Message::Close(_));

            // Avoid emitting invalid control frames. Some clients (e.g., Chromium-based browsers)
            // are strict about RFC 6455 requirements and will treat oversized control frames as
            // malformed.
            match &mut msg {
                Message::Close(Some(reason)) => {
                    if let Some(desc) = reason.description.as_mut() {
                        if desc.len() > MAX_CLOSE_REASON_BYTES {
                            let mut end = MAX_CLOSE_REASON_BYTES;
                            while end > 0 && !desc.is_char_boundary(end) {
                                end -= 1;
                            }
                            desc.truncate(end);
                        }
                    }
                }
                Message::Ping(bytes) | Message::Pong(bytes) => {
                    if bytes.len() > MAX_CONTROL_PAYLOAD_BYTES {
                        *bytes = bytes.slice(..MAX_CONTROL_PAYLOAD_BYTES);
                    }
                }
                _ => {}
            }

            if let Err(err) = this.codec.encode(msg, &mut this.buf) {
                return Poll::Ready(Some(Err(err.into())));
            }

            if is_close {
                this.messages.clear();
                if this.flags.load(Ordering::Relaxed) & flags::LINGER != 0 {
                    // WIM-Z relay patch (vendor/README.md): nothing is sent after a lingering
                    // Close frame, but the body (and so the connection, which goes on reading
                    // the peer's frames and its Close reply) ends only when the last `Session`
                    // clone is dropped: a server that closes first can read what the peer sent
                    // before it saw the Close.
                    this.close_sent = true;
                } else {
                    // A WebSocket Close frame is terminal. End the response body after flushing
                    // this frame, even if there are still `Session` clones holding the sender.
                    this.closing = true;
                    this.session_rx.close();
                }
                break;
            }
        }

        if !this.buf.is_empty() {
            // Avoid retaining an ever-growing buffer after large payloads:
            // https://github.com/actix/actix-extras/commit/81954844158c27de3aa034d1b727d1c13753f325
            return Poll::Ready(Some(Ok(mem::take(&mut this.buf).freeze())));
        }

        if this.closing {
            return Poll::Ready(None);
        }

        Poll::Pending
    }
}

impl Drop for StreamingBody {
    fn drop(&mut self) {
        if let Some(connection_closed) = self.connection_closed.take() {
            // WIM-Z relay patch: the bit the `MessageStream` polls the signal on.
            self.flags.fetch_or(flags::BODY_GONE, Ordering::Release);
            let _ = connection_closed.send(());
        }
    }
}

impl Stream for MessageStream {
    type Item = Result<Message, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();

        // Return the first message in the queue if one exists
        //
        // This is faster than polling and parsing
        if let Some(msg) = this.messages.pop_front() {
            return Poll::Ready(Some(Ok(msg)));
        }

        if !this.closing {
            let connection_closed = this
                .connection_closed
                .as_mut()
                .is_some_and(|connection_closed| connection_closed.poll_signal(cx).is_ready());

            if connection_closed {
                this.closing = true;
                this.connection_closed = None;
            }

            // Read in bytes until there's nothing left to read
            loop {
                match Pin::new(&mut this.payload).poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => {
                        if this.buf.is_empty() {
                            // Avoid a copy when there is no buffered data.
                            this.buf = BytesMut::from(bytes);
                        } else {
                            this.buf.extend_from_slice(&bytes);
                        }
                    }
                    Poll::Ready(Some(Err(err))) => {
                        this.closing = true;
                        return Poll::Ready(Some(Err(ProtocolError::Io(io::Error::other(err)))));
                    }
                    Poll::Ready(None) => {
                        this.closing = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }

        // Create messages until there's no more bytes left
        while let Some(frame) = this.codec.decode(&mut this.buf)? {
            let message = match frame {
                Frame::Text(bytes) => {
                    ByteString::try_from(bytes)
                        .map(Message::Text)
                        .map_err(|err| {
                            ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, err))
                        })?
                }
                Frame::Binary(bytes) => Message::Binary(bytes),
                Frame::Ping(bytes) => Message::Ping(bytes),
                Frame::Pong(bytes) => Message::Pong(bytes),
                Frame::Close(reason) => Message::Close(reason),
                Frame::Continuation(item) => Message::Continuation(item),
            };

            this.messages.push_back(message);
        }

        // WIM-Z relay patch (vendor/README.md): every complete frame has been split off;
        // drop the empty buffer's hold on the payload chunk's allocation (the dispatcher's
        // read buffer, or a buffer as large as the largest message) while the socket is idle.
        if this.buf.is_empty() && this.buf.capacity() > 0 {
            this.buf = BytesMut::new();
        }

        // Return the first message in the queue
        if let Some(msg) = this.messages.pop_front() {
            return Poll::Ready(Some(Ok(msg)));
        }

        // If we've exhausted our message queue and we're closing, close the stream
        if this.closing {
            return Poll::Ready(None);
        }

        Poll::Pending
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        future::Future,
        io,
        pin::Pin,
        task::{ready, Context, Poll},
    };

    use actix_http::{error::PayloadError, ws::ProtocolError};
    use futures_core::Stream;
    use std::sync::{atomic::AtomicU8, Arc};
    use tokio::sync::{
        mpsc::{Receiver, Sender},
        oneshot,
    };

    use super::{
        Bytes, BytesMut, Codec, Decoder, Encoder, Message, MessageStream, Payload, StreamingBody,
    };

    pub(crate) struct PayloadReceiver {
        rx: Receiver<Bytes>,
    }
    pub(crate) struct PayloadSender {
        codec: Codec,
        tx: Sender<Bytes>,
    }
    impl PayloadSender {
        pub(crate) async fn send(&mut self, message: Message) {
            self.send_many(vec![message]).await
        }
        pub(crate) async fn send_many(&mut self, messages: Vec<Message>) {
            let mut buf = BytesMut::new();

            for message in messages {
                self.codec.encode(message, &mut buf).unwrap();
            }

            self.tx.send(buf.freeze()).await.unwrap()
        }
    }
    impl Stream for PayloadReceiver {
        type Item = Result<Bytes, PayloadError>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let opt = ready!(self.get_mut().rx.poll_recv(cx));

            Poll::Ready(opt.map(Ok))
        }
    }
    pub(crate) fn payload_pair(capacity: usize) -> (PayloadSender, Payload) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);

        (
            PayloadSender {
                codec: Codec::new().client_mode(),
                tx,
            },
            Payload::Stream {
                payload: Box::pin(PayloadReceiver { rx }),
            },
        )
    }

    #[tokio::test]
    async fn message_stream_yields_messages() {
        std::future::poll_fn(move |cx| {
            let (mut tx, rx) = payload_pair(8);
            let message_stream = MessageStream::new(rx);
            let mut stream = std::pin::pin!(message_stream);

            let messages = [
                Message::Binary(Bytes::from(vec![0, 1, 2, 3])),
                Message::Ping(Bytes::from(vec![3, 2, 1, 0])),
                Message::Close(None),
            ];

            for msg in messages {
                let poll = stream.as_mut().poll_next(cx);
                assert!(
                    poll.is_pending(),
                    "Stream should be pending when no messages are present {poll:?}"
                );

                let fut = tx.send(msg);
                let fut = std::pin::pin!(fut);

                assert!(fut.poll(cx).is_ready(), "Sending should not yield");
                assert!(
                    stream.as_mut().poll_next(cx).is_ready(),
                    "Stream should be ready"
                );
            }

            assert!(
                stream.as_mut().poll_next(cx).is_pending(),
                "Stream should be pending after processing messages"
            );

            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn message_stream_yields_consecutive_messages() {
        std::future::poll_fn(move |cx| {
            let (mut tx, rx) = payload_pair(8);
            let message_stream = MessageStream::new(rx);
            let mut stream = std::pin::pin!(message_stream);

            let messages = vec![
                Message::Binary(Bytes::from(vec![0, 1, 2, 3])),
                Message::Ping(Bytes::from(vec![3, 2, 1, 0])),
                Message::Close(None),
            ];

            let size = messages.len();

            let fut = tx.send_many(messages);
            let fut = std::pin::pin!(fut);
            assert!(fut.poll(cx).is_ready(), "Sending should not yield");

            for _ in 0..size {
                assert!(
                    stream.as_mut().poll_next(cx).is_ready(),
                    "Stream should be ready"
                );
            }

            assert!(
                stream.as_mut().poll_next(cx).is_pending(),
                "Stream should be pending after processing messages"
            );

            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn message_stream_closes() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = payload_pair(8);
            drop(tx);
            let message_stream = MessageStream::new(rx);
            let mut stream = std::pin::pin!(message_stream);

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                matches!(poll, Poll::Ready(None)),
                "Stream should be ready when closing {poll:?}"
            );

            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn message_stream_closes_after_payload_error() {
        struct ErrorPayload {
            yielded_error: bool,
        }

        impl Stream for ErrorPayload {
            type Item = Result<Bytes, PayloadError>;

            fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                let this = self.get_mut();

                if this.yielded_error {
                    Poll::Ready(None)
                } else {
                    this.yielded_error = true;

                    Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "simulated abrupt disconnect",
                    )))))
                }
            }
        }

        std::future::poll_fn(move |cx| {
            let payload = Payload::Stream {
                payload: Box::pin(ErrorPayload {
                    yielded_error: false,
                })
                    as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>,
            };
            let message_stream = MessageStream::new(payload);
            let mut stream = std::pin::pin!(message_stream);

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                matches!(poll, Poll::Ready(Some(Err(ProtocolError::Io(_))))),
                "stream should surface payload error: {poll:?}"
            );

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                matches!(poll, Poll::Ready(None)),
                "stream should terminate after payload error: {poll:?}"
            );

            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn message_stream_closes_when_response_body_drops() {
        struct PendingPayload;

        impl Stream for PendingPayload {
            type Item = Result<Bytes, PayloadError>;

            fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                Poll::Pending
            }
        }

        std::future::poll_fn(move |cx| {
            let (_tx, rx) = tokio::sync::mpsc::channel(1);
            let (connection_closed_tx, connection_closed_rx) = oneshot::channel();

            let flags = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
            let response_body = StreamingBody::new(rx)
                .with_flags(flags.clone())
                .with_connection_close_signal(connection_closed_tx);

            let payload = Payload::Stream {
                payload: Box::pin(PendingPayload)
                    as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>,
            };
            let message_stream = MessageStream::new(payload)
                .with_connection_close_signal(connection_closed_rx, flags);
            let mut stream = std::pin::pin!(message_stream);

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                poll.is_pending(),
                "stream should be pending before close signal: {poll:?}"
            );

            drop(response_body);

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                matches!(poll, Poll::Ready(None)),
                "stream should terminate when response body drops: {poll:?}"
            );

            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn stream_produces_bytes_from_messages() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = tokio::sync::mpsc::channel(1);

            let stream = StreamingBody::new(rx);

            let messages = [
                Message::Binary(Bytes::from(vec![0, 1, 2, 3])),
                Message::Ping(Bytes::from(vec![3, 2, 1, 0])),
                Message::Close(None),
            ];

            let mut stream = std::pin::pin!(stream);

            for msg in messages {
                assert!(
                    stream.as_mut().poll_next(cx).is_pending(),
                    "Stream should be pending when no messages are present"
                );

                let fut = tx.send(msg);
                let fut = std::pin::pin!(fut);

                assert!(fut.poll(cx).is_ready(), "Sending should not yield");
                assert!(
                    stream.as_mut().poll_next(cx).is_ready(),
                    "Stream should be ready"
                );
            }

            assert!(
                matches!(stream.as_mut().poll_next(cx), Poll::Ready(None)),
                "stream should close after processing close message"
            );

            Poll::Ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn stream_processes_many_consecutive_messages() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = tokio::sync::mpsc::channel(3);

            let stream = StreamingBody::new(rx);

            let messages = [
                Message::Binary(Bytes::from(vec![0, 1, 2, 3])),
                Message::Ping(Bytes::from(vec![3, 2, 1, 0])),
                Message::Close(None),
            ];

            let mut stream = std::pin::pin!(stream);

            assert!(stream.as_mut().poll_next(cx).is_pending());

            for msg in messages {
                let fut = tx.send(msg);
                let fut = std::pin::pin!(fut);
                assert!(fut.poll(cx).is_ready(), "Sending should not yield");
            }

            assert!(
                stream.as_mut().poll_next(cx).is_ready(),
                "Stream should be ready"
            );
            assert!(
                matches!(stream.as_mut().poll_next(cx), Poll::Ready(None)),
                "stream should close after processing close message"
            );

            Poll::Ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn stream_closes_after_close_message_even_if_sender_alive() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = tokio::sync::mpsc::channel(1);

            let stream = StreamingBody::new(rx);
            let mut stream = std::pin::pin!(stream);

            assert!(
                stream.as_mut().poll_next(cx).is_pending(),
                "stream should start pending"
            );

            // Send a Close frame but keep the sender alive (e.g. a `Session` clone held elsewhere).
            {
                let fut = tx.send(Message::Close(None));
                let fut = std::pin::pin!(fut);
                assert!(fut.poll(cx).is_ready(), "Sending should not yield");
            }

            assert!(
                stream.as_mut().poll_next(cx).is_ready(),
                "stream should yield close frame bytes"
            );

            let poll = stream.as_mut().poll_next(cx);
            assert!(
                matches!(poll, Poll::Ready(None)),
                "stream should close after close frame even if sender is still alive"
            );

            Poll::Ready(())
        })
        .await;
    }

    /// WIM-Z relay patch: a lingering Close (`Session::try_close` with `linger`).
    #[tokio::test]
    async fn a_lingering_close_ends_the_stream_once_senders_are_gone() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let linger = Arc::new(AtomicU8::new(super::flags::LINGER));
            let stream = StreamingBody::new(rx).with_flags(linger);
            let mut stream = std::pin::pin!(stream);

            assert!(tx.try_send(Message::Close(None)).is_ok());
            assert!(
                stream.as_mut().poll_next(cx).is_ready(),
                "stream should yield close frame bytes"
            );
            // Nothing after the Close is sent, but the body stays open.
            assert!(tx.try_send(Message::Text("late".into())).is_ok());
            assert!(
                stream.as_mut().poll_next(cx).is_pending(),
                "stream stays open after a lingering close while a sender is alive"
            );
            drop(tx);
            assert!(
                matches!(stream.as_mut().poll_next(cx), Poll::Ready(None)),
                "stream ends once the last sender is gone, with nothing after the close"
            );

            Poll::Ready(())
        })
        .await;
    }

    /// WIM-Z relay patch: the abort signal is polled only once raised, and
    /// a lingering close into a full queue, then an abort, ends the body.
    #[tokio::test]
    async fn an_abort_ends_a_lingering_body_seen_through_the_gate() {
        use actix_http::ws::{CloseCode, CloseReason};
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let (abort_tx, abort_rx) = oneshot::channel();
        let flags = Arc::new(AtomicU8::new(0));
        let session = crate::Session::new(tx)
            .with_abort_signal(abort_tx)
            .with_flags(flags.clone());
        let stream = StreamingBody::new(rx)
            .with_flags(flags)
            .with_abort_signal(abort_rx);
        let mut stream = std::pin::pin!(stream);
        assert!(session.try_send(Message::Text("queued".into())).is_ok());
        std::future::poll_fn(|cx| {
            assert!(stream.as_mut().poll_next(cx).is_ready(), "the queued frame");
            assert!(stream.as_mut().poll_next(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        assert!(session.try_send(Message::Text("fills the queue".into())).is_ok());
        let reason = CloseReason {
            code: CloseCode::Policy,
            description: None,
        };
        assert!(session.try_close(Some(reason.clone()), true).is_err(), "full");
        session.abort(Some(reason));
        std::future::poll_fn(|cx| {
            match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    assert_eq!(&bytes[..], &[0x88, 0x02, 0x03, 0xf0], "only the close")
                }
                other => panic!("expected the close frame, got {other:?}"),
            }
            assert!(
                matches!(stream.as_mut().poll_next(cx), Poll::Ready(None)),
                "the body ends though a sender lives"
            );
            Poll::Ready(())
        })
        .await;
        drop(session);
    }

    #[tokio::test]
    async fn stream_closes() {
        std::future::poll_fn(move |cx| {
            let (tx, rx) = tokio::sync::mpsc::channel(3);

            drop(tx);
            let stream = StreamingBody::new(rx);

            let mut stream = std::pin::pin!(stream);

            let poll = stream.as_mut().poll_next(cx);

            assert!(
                matches!(poll, Poll::Ready(None)),
                "stream should close after dropped tx"
            );

            Poll::Ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn stream_truncates_oversized_close_reason() {
        use actix_http::ws::{CloseCode, CloseReason, Frame};
        use futures_util::StreamExt as _;

        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = StreamingBody::new(rx);

        let reason = CloseReason {
            code: CloseCode::Normal,
            description: Some("a".repeat(200)),
        };

        tx.send(Message::Close(Some(reason))).await.unwrap();

        let bytes = stream.next().await.unwrap().unwrap();

        assert_eq!(bytes[0], 0x88, "FIN + Close opcode");
        assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
        assert_eq!(
            (bytes[1] & 0x7F) as usize,
            2 + super::MAX_CLOSE_REASON_BYTES,
            "Close payload must be limited to 125 bytes (2-byte code + 123-byte reason)"
        );

        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = Codec::new().client_mode();

        let frame = codec.decode(&mut buf).unwrap().unwrap();
        match frame {
            Frame::Close(Some(reason)) => {
                assert_eq!(reason.code, CloseCode::Normal);
                let desc = reason.description.unwrap();
                assert_eq!(desc.len(), super::MAX_CLOSE_REASON_BYTES);
                assert_eq!(desc, "a".repeat(super::MAX_CLOSE_REASON_BYTES));
            }
            other => panic!("expected Close frame, got: {other:?}"),
        }

        assert!(buf.is_empty(), "should decode entire buffer");
    }

    #[tokio::test]
    async fn stream_truncates_close_reason_at_utf8_boundary() {
        use actix_http::ws::{CloseCode, CloseReason, Frame};
        use futures_util::StreamExt as _;

        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = StreamingBody::new(rx);

        // Create a reason where truncating at 123 bytes would split a multi-byte UTF-8 character.
        let description = format!("{}{}b", "a".repeat(122), "\u{00E9}");
        assert!(description.len() > super::MAX_CLOSE_REASON_BYTES);

        let reason = CloseReason {
            code: CloseCode::Normal,
            description: Some(description),
        };

        tx.send(Message::Close(Some(reason))).await.unwrap();

        let bytes = stream.next().await.unwrap().unwrap();

        assert_eq!(bytes[0], 0x88, "FIN + Close opcode");
        assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
        assert!(
            (bytes[1] & 0x7F) <= 125,
            "control frames must have payload length <= 125"
        );

        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = Codec::new().client_mode();

        let frame = codec.decode(&mut buf).unwrap().unwrap();
        match frame {
            Frame::Close(Some(reason)) => {
                assert_eq!(reason.code, CloseCode::Normal);
                let desc = reason.description.unwrap();
                assert_eq!(desc, "a".repeat(122));
            }
            other => panic!("expected Close frame, got: {other:?}"),
        }

        assert!(buf.is_empty(), "should decode entire buffer");
    }

    #[tokio::test]
    async fn stream_truncates_oversized_ping_payload() {
        use actix_http::ws::Frame;
        use futures_util::StreamExt as _;

        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = StreamingBody::new(rx);

        let payload = Bytes::from(vec![0xAA; 200]);
        let expected = payload.slice(..super::MAX_CONTROL_PAYLOAD_BYTES);

        tx.send(Message::Ping(payload)).await.unwrap();

        let bytes = stream.next().await.unwrap().unwrap();

        assert_eq!(bytes[0], 0x89, "FIN + Ping opcode");
        assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
        assert_eq!(
            (bytes[1] & 0x7F) as usize,
            super::MAX_CONTROL_PAYLOAD_BYTES,
            "Ping payload must be <= 125 bytes"
        );

        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = Codec::new().client_mode();

        let frame = codec.decode(&mut buf).unwrap().unwrap();
        match frame {
            Frame::Ping(pl) => {
                assert_eq!(pl, expected);
            }
            other => panic!("expected Ping frame, got: {other:?}"),
        }

        assert!(buf.is_empty(), "should decode entire buffer");
    }

    #[tokio::test]
    async fn stream_truncates_oversized_pong_payload() {
        use actix_http::ws::Frame;
        use futures_util::StreamExt as _;

        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = StreamingBody::new(rx);

        let payload = Bytes::from(vec![0xBB; 200]);
        let expected = payload.slice(..super::MAX_CONTROL_PAYLOAD_BYTES);

        tx.send(Message::Pong(payload)).await.unwrap();

        let bytes = stream.next().await.unwrap().unwrap();

        assert_eq!(bytes[0], 0x8A, "FIN + Pong opcode");
        assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
        assert_eq!(
            (bytes[1] & 0x7F) as usize,
            super::MAX_CONTROL_PAYLOAD_BYTES,
            "Pong payload must be <= 125 bytes"
        );

        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = Codec::new().client_mode();

        let frame = codec.decode(&mut buf).unwrap().unwrap();
        match frame {
            Frame::Pong(pl) => {
                assert_eq!(pl, expected);
            }
            other => panic!("expected Pong frame, got: {other:?}"),
        }

        assert!(buf.is_empty(), "should decode entire buffer");
    }
}
