//! The pub/sub task of the [`ClusterBridge`](super::ClusterBridge).
//!
//! Owns the one subscriber connection ([`PubSub`]: RESP3 pushes; sharded
//! channels on a Redis Cluster): subscribes to this instance's channel, to
//! `wimz:{all}` and to the channels of devices mirrored here, keeps the
//! last stream position forwarded per device, forwards only what is above
//! it (so an event a fenced instance published after its `XADD` was
//! refused is dropped: the claim that fenced it announced a higher id
//! first), fills holes from the device's stream before forwarding (so
//! mirrors get events in order), and rebuilds the connection when any of
//! it drops (a Sentinel failover, a cluster node lost) or when its own
//! periodic probe stops coming back, catching up from the streams.

use super::keys;
use super::link::{Link, PubSub, Topology};
use super::messages::{Incoming, Mirror, RemoteEvent, RemoteGap};
use super::stream_ids::{Position, Published, StreamId};
use super::ClusterBridge;
use crate::ids::DeviceId;
use actix::Addr;
use bytestring::ByteString;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests from the bridge.
pub enum SubCmd {
    /// Start receiving a device's events for `mirror`: subscribe, then
    /// read where its stream stands (reserving `epoch` if it has no
    /// numbering yet); `ack` with that position, or `None` if Redis could
    /// not be reached.
    Watch {
        device: DeviceId,
        epoch: i64,
        mirror: Mirror,
        ack: oneshot::Sender<Option<Position>>,
    },
    Unwatch(DeviceId),
}

/// How often the probe is published, and how long without one before the
/// connection counts as silently dead.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_DEADLINE: Duration = Duration::from_secs(4);

pub struct Subscriber {
    pub topology: Topology,
    pub redis: Link,
    pub instance: Arc<str>,
    pub bridge: Addr<ClusterBridge>,
    pub connected: Arc<AtomicBool>,
    pub cmds: mpsc::UnboundedReceiver<SubCmd>,
    pub reserve: redis::Script,
    pub history_size: usize,
}

/// The devices mirrored here.
type Watched = HashMap<DeviceId, Watching>;

/// A device mirrored here: the room its events go to (straight from this
/// task, in the order read: events and gaps into one mailbox, with no
/// bridge in between), and the last position forwarded to it (None:
/// watched while Redis was down).
struct Watching {
    mirror: Mirror,
    last: Option<Position>,
}

/// One entry of a device's stream: an event (`frame`) or a marker.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: Position,
    pub frame: Option<ByteString>,
}

impl Subscriber {
    pub async fn run(mut self) {
        let mut watched: Watched = HashMap::new();
        let mut backoff = Duration::from_millis(100);
        let own = keys::instance_channel(&self.instance);
        loop {
            let mut pubsub = match self.redis.pubsub(&self.topology).await {
                Ok(p) => p,
                Err(e) => {
                    self.down(&format!("connect: {e}"));
                    if !self.idle_for(backoff, &mut watched).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut ok =
                pubsub.subscribe(&own).await.is_ok() && pubsub.subscribe(keys::ALL).await.is_ok();
            for d in watched.keys() {
                ok = ok && pubsub.subscribe(&keys::device_channel(d)).await.is_ok();
            }
            if !ok {
                self.down("subscribe failed");
                if !self.idle_for(backoff, &mut watched).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(100);
            // Whatever was appended while we were not listening.
            let devices: Vec<DeviceId> = watched.keys().cloned().collect();
            for d in devices {
                self.catch_up(&d, &mut watched).await;
            }
            self.connected.store(true, Ordering::Relaxed);
            self.bridge.do_send(Incoming::Up);
            tracing::info!("cluster pub/sub connected");
            self.live(&mut pubsub, &own, &mut watched).await;
            if self.cmds.is_closed() {
                return;
            }
            self.down("pub/sub connection lost");
        }
    }

    /// Serves one connection until it drops or stops delivering.
    async fn live(&mut self, pubsub: &mut PubSub, own: &str, watched: &mut Watched) {
        let mut probe_tick = tokio::time::interval(PROBE_EVERY);
        let mut last_probe = Instant::now();
        let probe_payload = format!(
            "{{\"k\":\"probe\",\"from\":{}}}",
            crate::wire::encode::json_str(&self.instance)
        );
        loop {
            tokio::select! {
                msg = pubsub.next() => {
                    let Some((channel, payload)) = msg else { return };
                    if channel == keys::ALL {
                        self.bridge.do_send(Incoming::Directed(payload));
                    } else if channel == own {
                        if payload == probe_payload {
                            last_probe = Instant::now();
                        } else {
                            self.bridge.do_send(Incoming::Directed(payload));
                        }
                    } else if let Some(device) = keys::device_of_channel(&channel) {
                        self.on_message(device, &payload, Instant::now(), watched).await;
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    None => return,
                    Some(SubCmd::Watch { device, epoch, mirror, ack }) => {
                        let subscribed = pubsub.subscribe(&keys::device_channel(&device)).await.is_ok();
                        let start = match subscribed {
                            true => self.start_of(&device, epoch).await,
                            false => None,
                        };
                        watched.insert(device, Watching { mirror, last: start });
                        let _ = ack.send(start);
                    }
                    Some(SubCmd::Unwatch(device)) => {
                        let _ = pubsub.unsubscribe(&keys::device_channel(&device)).await;
                        watched.remove(&device);
                    }
                },
                _ = probe_tick.tick() => {
                    if last_probe.elapsed() > PROBE_DEADLINE {
                        tracing::warn!("cluster pub/sub stopped delivering; rebuilding it");
                        return;
                    }
                    let mut r = self.redis.clone();
                    let _: Result<i64, _> = self.redis.publish_cmd(own, &probe_payload).query_async(&mut r).await;
                }
            }
        }
    }

    /// Where the device's stream stands (after subscribing: anything
    /// published later is above it), reserving `epoch` if it is empty.
    async fn start_of(&mut self, device: &DeviceId, epoch: i64) -> Option<Position> {
        let publish = self.redis.publish_name();
        let mut redis = self.redis.clone();
        let (epoch, id): (String, String) = self
            .reserve
            .key(keys::stream(device))
            .key(keys::device_channel(device))
            .arg(epoch)
            .arg(crate::ids::unix_now_ms())
            .arg(self.history_size)
            .arg(publish)
            .invoke_async(&mut redis)
            .await
            .map_err(|e| tracing::warn!(error = %e, "cluster: reading a stream failed"))
            .ok()?;
        Some(Position {
            id: StreamId::parse(&id)?,
            epoch: epoch.parse().ok()?,
        })
    }

    fn down(&self, why: &str) {
        if self.connected.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                reason = why,
                "cluster degraded: Redis unreachable; serving local rooms only"
            );
            self.bridge.do_send(Incoming::Down);
        }
    }

    /// Sleeps `d`, still taking watch requests (answered "not subscribed").
    async fn idle_for(&mut self, d: Duration, watched: &mut Watched) -> bool {
        let deadline = tokio::time::sleep(d);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return true,
                cmd = self.cmds.recv() => match cmd {
                    None => return false,
                    Some(SubCmd::Watch { device, mirror, ack, .. }) => {
                        watched.insert(device, Watching { mirror, last: None });
                        let _ = ack.send(None);
                    }
                    Some(SubCmd::Unwatch(device)) => { watched.remove(&device); }
                },
            }
        }
    }

    /// A device's event or marker, published by its home and `read` here
    /// just now.
    async fn on_message(
        &mut self,
        device: DeviceId,
        payload: &str,
        read: Instant,
        watched: &mut Watched,
    ) {
        let Some(p) = Published::parse(payload) else {
            return;
        };
        let Some(w) = watched.get_mut(&device) else {
            return;
        };
        if let Some(last) = w.last {
            if p.at.id <= last.id {
                return; // already forwarded, or from an instance fenced since
            }
            let needed = before(&p.at, p.frame.is_some());
            if p.at.epoch == last.epoch && needed > last.id.seq {
                // A hole: fill it from the stream first.
                let reached = self
                    .fill(&device, &w.mirror, last, p.at, needed, read)
                    .await;
                if reached < needed {
                    w.mirror.gaps.do_send(RemoteGap {
                        epoch: p.at.epoch,
                        from: reached + 1,
                        to: needed,
                    });
                }
            }
        }
        w.last = Some(p.at);
        forward(&w.mirror, p.at, p.frame, read);
    }

    /// Forwards the stream's events after `after`, below `upto` and of its
    /// epoch, while they follow on; returns the last seq reached (the hole
    /// is filled if that is `needed`).
    async fn fill(
        &mut self,
        device: &DeviceId,
        mirror: &Mirror,
        after: Position,
        upto: Position,
        needed: u64,
        read: Instant,
    ) -> u64 {
        let Some(entries) = read_stream(&mut self.redis, device, Some(after.id)).await else {
            return after.id.seq;
        };
        let mut reached = after.id.seq;
        for e in entries {
            if e.at.id >= upto.id || e.at.epoch != after.epoch || e.at.id.seq > reached + 1 {
                break;
            }
            if e.frame.is_some() {
                reached = e.at.id.seq;
            }
            forward(mirror, e.at, e.frame, read);
        }
        reached.min(needed)
    }

    /// After a reconnect: forward what was appended since the last forwarded
    /// event, telling the mirror of each hole.
    async fn catch_up(&mut self, device: &DeviceId, watched: &mut Watched) {
        let Some(w) = watched.get_mut(device) else {
            return;
        };
        let Some(entries) = read_stream(&mut self.redis, device, w.last.map(|l| l.id)).await else {
            return;
        };
        let read = Instant::now();
        for e in entries {
            if let Some(l) = w.last {
                if e.at.id <= l.id {
                    continue;
                }
                let needed = before(&e.at, e.frame.is_some());
                if l.epoch == e.at.epoch && needed > l.id.seq {
                    w.mirror.gaps.do_send(RemoteGap {
                        epoch: l.epoch,
                        from: l.id.seq + 1,
                        to: needed,
                    });
                }
            }
            w.last = Some(e.at);
            forward(&w.mirror, e.at, e.frame, read);
        }
    }
}

/// Passes an event on to the device's mirror room; `read`: when this
/// instance read it from Redis (`wimz_mirror_routing_seconds` starts there).
fn forward(mirror: &Mirror, at: Position, frame: Option<ByteString>, read: Instant) {
    if let Some(frame) = frame {
        mirror.events.do_send(RemoteEvent {
            epoch: at.epoch,
            seq: at.id.seq,
            frame,
            read,
        });
    }
}

/// The last seq a mirror must have had before `at`: the one before an
/// event; the marker's own for a marker (it continues after that seq).
fn before(at: &Position, is_event: bool) -> u64 {
    match is_event {
        true => at.id.seq.saturating_sub(1),
        false => at.id.seq,
    }
}

/// The device's stream, oldest first: all of it, or what is after `after`.
pub async fn read_stream(
    redis: &mut Link,
    device: &DeviceId,
    after: Option<StreamId>,
) -> Option<Vec<Entry>> {
    let start = match after {
        Some(id) => format!("({id}"),
        None => "-".to_string(),
    };
    let reply: redis::streams::StreamRangeReply =
        redis.xrange(keys::stream(device), start, "+").await.ok()?;
    let mut out = Vec::with_capacity(reply.ids.len());
    for entry in reply.ids {
        let Some(id) = StreamId::parse(&entry.id) else {
            continue;
        };
        let Some(epoch) = entry.get::<i64>("e") else {
            continue;
        };
        out.push(Entry {
            at: Position { id, epoch },
            frame: entry.get::<String>("f").map(ByteString::from),
        });
    }
    Some(out)
}
