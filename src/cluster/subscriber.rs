//! The pub/sub task of the [`ClusterBridge`](super::ClusterBridge).
//!
//! Owns the one Redis pub/sub connection: subscribes to this instance's
//! channel and to the channels of devices mirrored here, keeps the last
//! `(epoch, seq)` seen per device, fills gaps from the device's stream before
//! forwarding (so mirrors get events in order), and rebuilds the connection
//! when it drops or when its own periodic probe stops coming back.

use super::keys;
use super::messages::Incoming;
use super::ClusterBridge;
use crate::ids::DeviceId;
use actix::Addr;
use bytestring::ByteString;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests from the bridge.
pub enum SubCmd {
    /// Start receiving a device's events; `ack` once subscribed.
    Watch {
        device: DeviceId,
        last: Option<(i64, u64)>,
        ack: oneshot::Sender<bool>,
    },
    Unwatch(DeviceId),
}

/// How often the probe is published, and how long without one before the
/// connection counts as silently dead.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_DEADLINE: Duration = Duration::from_secs(4);

pub struct Subscriber {
    pub client: redis::Client,
    pub redis: ConnectionManager,
    pub instance: Arc<str>,
    pub bridge: Addr<ClusterBridge>,
    pub connected: Arc<AtomicBool>,
    pub cmds: mpsc::UnboundedReceiver<SubCmd>,
}

/// Parses `"<epoch> <seq> <frame>"`.
pub fn parse_event(payload: &str) -> Option<(i64, u64, &str)> {
    let (e, rest) = payload.split_once(' ')?;
    let (s, frame) = rest.split_once(' ')?;
    Some((e.parse().ok()?, s.parse().ok()?, frame))
}

impl Subscriber {
    pub async fn run(mut self) {
        // device -> last (epoch, seq) forwarded
        let mut watched: HashMap<DeviceId, Option<(i64, u64)>> = HashMap::new();
        let mut backoff = Duration::from_millis(100);
        let own = keys::instance_channel(&self.instance);
        loop {
            let pubsub = match self.client.get_async_pubsub().await {
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
            let (mut sink, mut stream) = pubsub.split();
            let mut ok =
                sink.subscribe(&own).await.is_ok() && sink.subscribe(keys::ALL).await.is_ok();
            for d in watched.keys() {
                ok = ok && sink.subscribe(keys::device_channel(d)).await.is_ok();
            }
            if !ok {
                self.down("subscribe failed");
                if !self.idle_for(backoff, &mut watched).await {
                    return;
                }
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

            let mut probe_tick = tokio::time::interval(PROBE_EVERY);
            let mut last_probe = Instant::now();
            let probe_payload = format!(
                "{{\"k\":\"probe\",\"from\":{}}}",
                crate::wire::encode::json_str(&self.instance)
            );
            'live: loop {
                tokio::select! {
                    msg = stream.next() => {
                        let Some(msg) = msg else { break 'live };
                        let channel = msg.get_channel_name().to_string();
                        let Ok(payload) = msg.get_payload::<String>() else { continue };
                        if channel == keys::ALL {
                            self.bridge.do_send(Incoming::Directed(payload));
                        } else if channel == own {
                            if payload == probe_payload {
                                last_probe = Instant::now();
                            } else {
                                self.bridge.do_send(Incoming::Directed(payload));
                            }
                        } else if let Some(dev) = channel.strip_prefix("wimz:dev:") {
                            if let Ok(device) = DeviceId::parse(dev) {
                                self.on_event(device, &payload, &mut watched).await;
                            }
                        }
                    }
                    cmd = self.cmds.recv() => match cmd {
                        None => return,
                        Some(SubCmd::Watch { device, last, ack }) => {
                            let ok = sink.subscribe(keys::device_channel(&device)).await.is_ok();
                            watched.insert(device, last);
                            let _ = ack.send(ok);
                        }
                        Some(SubCmd::Unwatch(device)) => {
                            let _ = sink.unsubscribe(keys::device_channel(&device)).await;
                            watched.remove(&device);
                        }
                    },
                    _ = probe_tick.tick() => {
                        if last_probe.elapsed() > PROBE_DEADLINE {
                            tracing::warn!("cluster pub/sub stopped delivering; rebuilding it");
                            break 'live;
                        }
                        let mut r = self.redis.clone();
                        let _: Result<(), _> = r.publish(&own, &probe_payload).await;
                    }
                }
            }
            self.down("pub/sub connection lost");
        }
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
    async fn idle_for(
        &mut self,
        d: Duration,
        watched: &mut HashMap<DeviceId, Option<(i64, u64)>>,
    ) -> bool {
        let deadline = tokio::time::sleep(d);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return true,
                cmd = self.cmds.recv() => match cmd {
                    None => return false,
                    Some(SubCmd::Watch { device, last, ack }) => { watched.insert(device, last); let _ = ack.send(false); }
                    Some(SubCmd::Unwatch(device)) => { watched.remove(&device); }
                },
            }
        }
    }

    async fn on_event(
        &mut self,
        device: DeviceId,
        payload: &str,
        watched: &mut HashMap<DeviceId, Option<(i64, u64)>>,
    ) {
        let Some((epoch, seq, frame)) = parse_event(payload) else {
            return;
        };
        let Some(last) = watched.get(&device).copied() else {
            return;
        };
        match last {
            Some((e, s)) if e == epoch && seq <= s => return, // already forwarded
            Some((e, s)) if e == epoch && seq > s + 1 => {
                // A gap: fill it from the stream first.
                let filled = self.fill(&device, epoch, s, seq).await;
                if !filled {
                    self.bridge.do_send(Incoming::Gap {
                        device: device.clone(),
                        epoch,
                        from: s + 1,
                        to: seq - 1,
                    });
                }
            }
            _ => {}
        }
        watched.insert(device.clone(), Some((epoch, seq)));
        self.bridge.do_send(Incoming::Event {
            device,
            epoch,
            seq,
            frame: ByteString::from(frame),
        });
    }

    /// Forwards events `after < seq < before` of `epoch` from the stream; false if any is missing.
    async fn fill(&mut self, device: &DeviceId, epoch: i64, after: u64, before: u64) -> bool {
        let entries = match read_stream(&mut self.redis, device).await {
            Some(e) => e,
            None => return false,
        };
        let mut want = after + 1;
        for (e, s, f) in entries {
            if e != epoch || s < want || s >= before {
                continue;
            }
            if s != want {
                return false;
            }
            self.bridge.do_send(Incoming::Event {
                device: device.clone(),
                epoch,
                seq: s,
                frame: f,
            });
            want += 1;
        }
        want == before
    }

    /// After a reconnect: forward what was appended since the last forwarded event.
    async fn catch_up(
        &mut self,
        device: &DeviceId,
        watched: &mut HashMap<DeviceId, Option<(i64, u64)>>,
    ) {
        let Some(entries) = read_stream(&mut self.redis, device).await else {
            return;
        };
        let mut last = watched.get(device).copied().flatten();
        let mut gap = false;
        for (e, s, f) in entries {
            match last {
                Some((le, ls)) if le == e && s <= ls => continue,
                Some((le, ls)) if le == e && s != ls + 1 => gap = true,
                _ => {}
            }
            if gap {
                if let Some((le, ls)) = last {
                    self.bridge.do_send(Incoming::Gap {
                        device: device.clone(),
                        epoch: le,
                        from: ls + 1,
                        to: s.saturating_sub(1),
                    });
                }
                gap = false;
            }
            self.bridge.do_send(Incoming::Event {
                device: device.clone(),
                epoch: e,
                seq: s,
                frame: f,
            });
            last = Some((e, s));
        }
        watched.insert(device.clone(), last);
    }
}

/// The device's stream, oldest first, as `(epoch, seq, frame)`.
pub async fn read_stream(
    redis: &mut ConnectionManager,
    device: &DeviceId,
) -> Option<Vec<(i64, u64, ByteString)>> {
    let reply: redis::streams::StreamRangeReply =
        redis.xrange_all(keys::stream(device)).await.ok()?;
    let mut out = Vec::with_capacity(reply.ids.len());
    for id in reply.ids {
        let e: Option<i64> = id.get("e");
        let s: Option<u64> = id.get("s");
        let f: Option<String> = id.get("f");
        if let (Some(e), Some(s), Some(f)) = (e, s, f) {
            out.push((e, s, ByteString::from(f)));
        }
    }
    Some(out)
}
