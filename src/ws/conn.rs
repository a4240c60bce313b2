//! What robot and app socket actors share: the [`SocketCore`] (outbox,
//! slow-consumer handle, heartbeat clock, rate limit) and the handling of raw
//! WebSocket items (pings, binary frames, oversize frames, close).

use super::gate::{Gate, Ticks};
use super::ratelimit::TokenBucket;
use crate::caps::sockets::SocketPermit;
use crate::config::secs;
use crate::ids::ConnId;
use crate::metrics::{inc, Refusal, SocketRole};
use crate::state::AppState;
use crate::state::Phase;
use crate::wire::close;
use crate::wire::outbox::{attach, Outbox, PeerHandle};
use crate::wire::{WireCode, WireError};
use actix::prelude::*;
use actix_web::web;
use actix_ws::{AggregatedMessage, CloseCode, ProtocolError, Session};
use serde_json::value::RawValue;
use std::time::Instant;

/// Per-socket state common to robots and apps.
pub struct SocketCore {
    pub conn: ConnId,
    /// The bounded queue to this peer; rooms hold clones.
    pub outbox: Outbox,
    /// Slow signal, and the switch that drops the peer.
    pub peer: PeerHandle,
    /// Last time anything (frame, ping, pong) came from the peer.
    pub last_seen: Instant,
    /// `limits.messages_per_s` for this connection.
    pub bucket: TokenBucket,
    /// Why the socket ended, for `robot_disconnected` and logs.
    pub stop_reason: &'static str,
    /// Our close frame is queued: the socket is only read until it ends.
    pub closing: bool,
    /// The close code it ended with (1006: lost without a close frame),
    /// for `wimz_ws_closed_total`.
    pub stop_code: u16,
    pub state: web::Data<AppState>,
    /// Counts this socket against the caps until the actor is dropped.
    _permit: SocketPermit,
}

impl SocketCore {
    pub fn new(
        conn: ConnId,
        session: Session,
        state: web::Data<AppState>,
        permit: SocketPermit,
    ) -> Self {
        let limits = &state.settings.limits;
        let (outbox, peer) = attach(
            session,
            limits.outbound_queue,
            state.metrics.outbox_saturated(),
        );
        SocketCore {
            conn,
            outbox,
            peer,
            last_seen: Instant::now(),
            bucket: TokenBucket::new(limits.messages_per_s, limits.messages_burst),
            stop_reason: "closed",
            closing: false,
            stop_code: 1000,
            state,
            _permit: permit,
        }
    }

    pub fn send_error(&self, err: WireError) {
        self.outbox.send(err.to_frame());
    }

    /// Close frame after the queued frames, then stop. If ours is already
    /// queued ([`close_and_read`](Self::close_and_read)), only stop: the
    /// reason stays the first one.
    pub fn close<A: Actor<Context = Context<A>>>(
        &mut self,
        ctx: &mut Context<A>,
        code: CloseCode,
        reason: &'static str,
    ) {
        if !self.closing {
            self.stop_reason = reason;
            self.stop_code = code.into();
            self.outbox.close(code, reason);
        }
        ctx.stop();
    }

    /// Close frame after the queued frames, but go on reading the peer
    /// (what it sent before it saw the close is still handled) until it
    /// answers the close or its connection ends; the caller bounds the wait.
    pub fn close_and_read(&mut self, code: CloseCode, reason: &'static str) {
        if !self.closing {
            self.closing = true;
            self.stop_reason = reason;
            self.stop_code = code.into();
            self.outbox.close_and_read(code, reason);
        }
    }

    /// Counts how this socket of `role` ended (`wimz_ws_closed_total`);
    /// from the actor's `stopped`, which every exit path runs.
    pub fn count_close(&self, role: SocketRole) {
        self.state
            .metrics
            .ws_closed(role, self.stop_code, self.stop_reason);
    }

    /// The answer to an application-level `ping`.
    pub fn pong_frame() -> String {
        crate::wire::encode::pong(crate::ids::unix_now_ms())
    }
}

/// A socket actor: robots and apps.
pub trait SocketActor: Actor<Context = Context<Self>> {
    fn core(&mut self) -> &mut SocketCore;
    /// A text frame that passed the rate limit.
    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>);
    /// On every heartbeat tick: deal with rooms that are gone without
    /// saying so (a room that failed tells its sockets itself).
    fn check_rooms(&mut self, _ctx: &mut Context<Self>) {}
    /// The relay is shutting down ([`Phase::Closing`]): by default, close
    /// with 1012 at once.
    fn on_shutdown(&mut self, ctx: &mut Context<Self>) {
        self.core().close(ctx, close::RESTART, "relay_shutdown");
    }
}

/// Heartbeat, slow-consumer watch and shutdown watch; call from `started`.
pub fn start_common<A: SocketActor>(
    act: &mut A,
    ctx: &mut Context<A>,
    shutdown: tokio::sync::watch::Receiver<Phase>,
) {
    // Each behind one gate (`super::gate`): polled when it fired, not on
    // every frame the peer sends.
    let gate = Gate::new();
    let core = act.core();
    let hb = &core.state.settings.heartbeat;
    let (interval, timeout) = (secs(hb.interval_s), secs(hb.timeout_s));
    ctx.spawn(
        actix::fut::wrap_stream::<_, A>(gate.wrap(Ticks::every(interval)))
            .map(move |(), act, ctx| {
                let core = act.core();
                if core.last_seen.elapsed() > timeout {
                    inc(&core.state.metrics.heartbeat_timeouts);
                    tracing::info!(conn_id = %core.conn, "heartbeat timeout");
                    core.close(ctx, close::HEARTBEAT_TIMEOUT, "heartbeat_timeout");
                } else {
                    core.outbox.ping();
                    act.check_rooms(ctx);
                }
            })
            .finish(),
    );

    let core = act.core();
    let slow = core.peer.slow.clone();
    ctx.spawn(
        gate.wrap(async move { slow.notify.notified().await })
            .into_actor(act)
            .map(|_, act, ctx| {
                let core = act.core();
                inc(&core.state.metrics.slow_consumers_closed);
                tracing::info!(conn_id = %core.conn, "closing slow consumer");
                core.stop_reason = "slow_consumer";
                core.stop_code = CloseCode::Policy.into();
                core.peer.kill();
                ctx.stop();
            }),
    );

    let mut closing = shutdown.clone();
    ctx.spawn(
        gate.wrap(async move {
            let _ = closing.wait_for(|p| *p >= Phase::Closing).await;
        })
        .into_actor(act)
        .map(|_, act, ctx| act.on_shutdown(ctx)),
    );
    let mut now = shutdown;
    ctx.spawn(
        gate.wrap(async move {
            let _ = now.wait_for(|p| *p >= Phase::Now).await;
        })
        .into_actor(act)
        .map(|_, act, ctx| {
            act.core().close(ctx, close::RESTART, "relay_shutdown");
        }),
    );
}

/// The `id` of a frame, if it has one (for `ref` on errors raised before parsing).
fn frame_id(text: &str) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(default)]
        id: Option<Box<RawValue>>,
    }
    serde_json::from_str::<Id>(text).ok().and_then(|i| i.id)
}

/// Handles one item from the socket's stream.
pub fn on_item<A: SocketActor>(
    act: &mut A,
    item: Result<AggregatedMessage, ProtocolError>,
    ctx: &mut Context<A>,
) {
    let core = act.core();
    core.last_seen = Instant::now();
    match item {
        Ok(AggregatedMessage::Text(text)) => {
            if !core.bucket.take() {
                inc(&core.state.metrics.rate_limited);
                core.state.metrics.refused(Refusal::RateLimited);
                core.send_error(
                    WireError::new(WireCode::RateLimited, "too many messages; slow down")
                        .with_ref(frame_id(&text)),
                );
                return;
            }
            inc(&core.state.metrics.messages_routed);
            act.on_text(&text, ctx);
        }
        Ok(AggregatedMessage::Binary(_)) => {
            core.send_error(WireError::new(
                WireCode::Unsupported,
                "binary frames are not supported; send JSON text frames",
            ));
        }
        Ok(AggregatedMessage::Ping(data)) => {
            core.outbox.pong(data);
        }
        Ok(AggregatedMessage::Pong(_)) => {}
        Ok(AggregatedMessage::Close(_)) => {
            core.close(ctx, close::NORMAL, "closed");
        }
        Err(e) => match Violation::of(&e) {
            None => {
                // The peer went away without a close frame (or the read failed).
                tracing::debug!(conn_id = %core.conn, error = %e, "connection lost");
                // No close frame: there is no one to read it. (After ours, the
                // peer may simply go: the reason and code stay ours.)
                if !core.closing {
                    core.stop_reason = "connection_lost";
                    core.stop_code = 1006;
                }
                ctx.stop();
            }
            Some(v) => {
                inc(&core.state.metrics.bad_messages);
                let (code, reason) = v.close();
                tracing::info!(conn_id = %core.conn, reason, code = u16::from(code), error = %e, "closing socket: protocol violation");
                core.close(ctx, code, reason);
            }
        },
    }
}

/// How a peer broke RFC 6455, from an error of the socket's stream; `None`
/// when the stream failed because the connection did (nothing to answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A frame, or a fragmented message so far, over `limits.max_message_bytes`.
    TooBig,
    /// A text message that is not UTF-8.
    InvalidUtf8,
    /// Anything else: reserved bits set, an unmasked frame, a bad opcode,
    /// a control frame over 125 bytes, a continuation out of place.
    Protocol,
}

impl Violation {
    pub fn of(err: &ProtocolError) -> Option<Violation> {
        match err {
            ProtocolError::Overflow => Some(Violation::TooBig),
            // The decoder reports bad bytes as `InvalidData` (reserved bits,
            // and invalid UTF-8 with its `Utf8Error` as the source); every
            // other I/O error is the connection failing.
            ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let utf8 = e
                    .get_ref()
                    .is_some_and(|inner| inner.is::<std::str::Utf8Error>());
                Some(if utf8 {
                    Violation::InvalidUtf8
                } else {
                    Violation::Protocol
                })
            }
            ProtocolError::Io(_) => None,
            _ => Some(Violation::Protocol),
        }
    }

    /// The close code (RFC 6455 §7.4.1) and the reason (close frame, logs,
    /// `robot_disconnected.reason`).
    pub fn close(self) -> (CloseCode, &'static str) {
        match self {
            Violation::TooBig => (close::TOO_BIG, "message_too_big"),
            Violation::InvalidUtf8 => (close::INVALID_UTF8, "invalid_utf8"),
            Violation::Protocol => (close::PROTOCOL_ERROR, "protocol_error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn stream_errors_are_told_apart() {
        let bytes = vec![0xff_u8];
        let bad_utf8 = std::str::from_utf8(&bytes).unwrap_err();
        for (err, want) in [
            (ProtocolError::Overflow, Some(Violation::TooBig)),
            (
                ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, bad_utf8)),
                Some(Violation::InvalidUtf8),
            ),
            (
                ProtocolError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "Received a frame with non-zero reserved bits",
                )),
                Some(Violation::Protocol),
            ),
            (ProtocolError::UnmaskedFrame, Some(Violation::Protocol)),
            (ProtocolError::InvalidLength(200), Some(Violation::Protocol)),
            (ProtocolError::Io(io::Error::other("payload ended")), None),
            (
                ProtocolError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
                None,
            ),
        ] {
            let shown = err.to_string();
            assert_eq!(Violation::of(&err), want, "{shown}");
        }
        assert_eq!(
            Violation::InvalidUtf8.close(),
            (close::INVALID_UTF8, "invalid_utf8")
        );
    }
}
