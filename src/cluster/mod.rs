//! The cluster bridge (PROTOCOL.md §5): the room's outward edge when
//! `cluster.redis_url` is set.
//!
//! `ClusterBridge` is its own actor; rooms never touch Redis. It owns the
//! Redis command connection (a reconnecting `ConnectionManager`), the
//! pub/sub task ([`subscriber`]), the map of mirrored devices to their local
//! rooms, and the set of devices whose robot is here (their presence keys
//! are refreshed every `presence_ttl_s / 3`).
//!
//! Rooms send it: `Claim`/`Release` (robot arrives/leaves), `Append` (an
//! event to number across the cluster), `Watch`/`Unwatch` (mirror a device
//! whose robot is elsewhere), `SendDirected` (commands and results for
//! other instances), `SaveSnapshot`. It sends rooms: `RemoteEvent`,
//! `RemoteGap`, `RemoteCommand`, `DeliverToMember`, `HolderGone`.

pub mod keys;
pub mod messages;
pub mod scripts;
pub mod subscriber;

use crate::ids::DeviceId;
use crate::room::messages as room_msg;
use crate::room::messages::Snapshot;
use crate::room::{DeviceRoom, Directory};
use actix::prelude::*;
use messages::*;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subscriber::{read_stream, SubCmd, Subscriber};
use tokio::sync::{mpsc, oneshot};

pub struct ClusterBridge {
    instance: Arc<str>,
    redis: ConnectionManager,
    client: redis::Client,
    /// Requests to the pub/sub task.
    sub: Option<mpsc::UnboundedSender<SubCmd>>,
    /// Rooms mirroring a device whose robot is elsewhere.
    mirrors: HashMap<DeviceId, Addr<DeviceRoom>>,
    /// Devices whose robot is connected here (presence refreshed).
    homes: HashSet<DeviceId>,
    directory: Option<Addr<Directory>>,
    /// Where robot-side signaling for our sessions goes.
    sessions: Option<Addr<crate::webrtc::SessionSupervisor>>,
    /// True while pub/sub is live (read by `/health`).
    connected: Arc<AtomicBool>,
    presence_ttl_s: u64,
    history_size: usize,
    /// Reports this instance's numbers for cluster totals.
    metrics: Arc<crate::metrics::Metrics>,
}

impl ClusterBridge {
    pub async fn connect(
        url: &str,
        instance: Arc<str>,
        presence_ttl_s: u64,
        history_size: usize,
        metrics: Arc<crate::metrics::Metrics>,
        connected: Arc<AtomicBool>,
    ) -> anyhow::Result<ClusterBridge> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_max_delay(2000);
        // Reconnects by itself after this first connection.
        let redis = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| anyhow::anyhow!("cluster.redis_url: cannot connect to Redis: {e}"))?;
        Ok(ClusterBridge {
            instance,
            redis,
            client,
            sub: None,
            mirrors: HashMap::new(),
            homes: HashSet::new(),
            directory: None,
            sessions: None,
            connected,
            presence_ttl_s: presence_ttl_s.max(1),
            history_size,
            metrics,
        })
    }

    /// The directory rooms are found in (set once at start-up).
    pub fn set_directory(&mut self, directory: Addr<Directory>) {
        self.directory = Some(directory);
    }

    fn refresh_presence(&mut self, ctx: &mut Context<Self>) {
        let homes: Vec<String> = self.homes.iter().map(keys::presence).collect();
        let mirrors: Vec<(DeviceId, Addr<DeviceRoom>)> = self
            .mirrors
            .iter()
            .map(|(d, a)| (d.clone(), a.clone()))
            .collect();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = self.presence_ttl_s;
        let stats = serde_json::json!({
            "robots_online": crate::metrics::get_i(&self.metrics.robots_online),
            "apps_connected": crate::metrics::get_i(&self.metrics.apps_connected),
            "rooms": crate::metrics::get_i(&self.metrics.rooms),
            "webrtc_sessions_active": crate::metrics::get_i(&self.metrics.webrtc_sessions_active),
            "messages_routed": crate::metrics::get_u(&self.metrics.messages_routed),
        })
        .to_string();
        ctx.spawn(
            async move {
                if !homes.is_empty() {
                    let script = redis::Script::new(scripts::REFRESH);
                    let mut s = script.prepare_invoke();
                    for k in &homes {
                        s.key(k);
                    }
                    let _: Result<i64, _> =
                        s.arg(&instance).arg(ttl).invoke_async(&mut redis).await;
                }
                let _: Result<(), _> = redis
                    .set_ex(keys::stats(&instance), stats, ttl.max(3))
                    .await;
                let _: Result<(), _> = redis.sadd(keys::INSTANCES, &instance).await;
                // Mirrors whose robot's instance stopped refreshing: gone.
                for (device, room) in mirrors {
                    let read_at = std::time::Instant::now();
                    let holder: Result<Option<String>, _> =
                        redis.get(keys::presence(&device)).await;
                    if let Ok(holder) = holder {
                        room.do_send(room_msg::HolderIs {
                            holder: holder.filter(|h| *h != instance),
                            read_at,
                        });
                    }
                }
            }
            .into_actor(self),
        );
    }

    fn route_directed(&mut self, payload: String, ctx: &mut Context<Self>) {
        let Ok(msg) = serde_json::from_str::<Directed>(&payload) else {
            tracing::debug!("ignoring an undecodable cluster message");
            return;
        };
        let Some(directory) = self.directory.clone() else {
            return;
        };
        let sessions = self.sessions.clone();
        let redis = self.redis.clone();
        let me = self.instance.to_string();
        ctx.spawn(
            async move {
                match msg {
                    Directed::Cmd { d, c, raw } => {
                        let room = directory
                            .send(room_msg::FindRoom { device: d.clone() })
                            .await
                            .ok()
                            .flatten();
                        let delivered = match &room {
                            Some(r) => r
                                .send(room_msg::RemoteCommand { raw })
                                .await
                                .unwrap_or(false),
                            None => false,
                        };
                        if !delivered {
                            let err = crate::error::WireError::new(
                                crate::error::WireCode::RobotOffline,
                                "the robot is offline",
                            )
                            .to_frame();
                            let back = Directed::Res {
                                d,
                                c: c.clone(),
                                raw: err,
                            };
                            if let Some(instance) = crate::ids::ConnId::from_wire(&c).instance() {
                                publish_directed(redis, instance, &back).await;
                            }
                        }
                    }
                    Directed::Res { d, c, raw } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            room.do_send(room_msg::DeliverToMember {
                                conn: crate::ids::ConnId::from_wire(&c),
                                raw,
                            });
                        }
                    }
                    Directed::ProxyReq { d, r, frame, back } => {
                        match directory
                            .send(room_msg::FindRoom { device: d.clone() })
                            .await
                            .ok()
                            .flatten()
                        {
                            Some(room) => room.do_send(room_msg::RemoteProxyRequest {
                                request_id: r,
                                frame,
                                back,
                            }),
                            None => {
                                let res = Directed::ProxyRes {
                                    d,
                                    r,
                                    status: None,
                                    body: None,
                                };
                                publish_directed(redis, &back, &res).await;
                            }
                        }
                    }
                    Directed::ProxyRes { d, r, status, body } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            let reply = match status {
                                Some(status) => room_msg::ProxyReply::Response {
                                    status,
                                    body: body.and_then(|b| {
                                        serde_json::value::RawValue::from_string(b).ok()
                                    }),
                                },
                                None => room_msg::ProxyReply::RobotOffline,
                            };
                            room.do_send(room_msg::RemoteProxyResponse {
                                request_id: r,
                                reply,
                            });
                        }
                    }
                    Directed::RobotSig { from, d, raw } => {
                        if let (Some(sessions), Ok(parsed)) =
                            (&sessions, crate::ws::frames::parse_robot(&raw))
                        {
                            sessions.do_send(crate::webrtc::messages::FromRobot {
                                conn: crate::webrtc::session::RobotEnd::remote_conn(&from),
                                device: d,
                                outbox: crate::ws::outbox::Outbox::closed(),
                                frame: parsed.frame,
                                reference: None,
                            });
                        }
                    }
                    Directed::Deleted { d } => {
                        if let Some(sessions) = &sessions {
                            sessions.do_send(crate::webrtc::messages::EndDeviceSessions {
                                device: d.clone(),
                                reason: "device_deleted",
                            });
                        }
                        directory.do_send(room_msg::DeviceDeleted { device: d });
                    }
                    Directed::Replaced { d } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            room.do_send(room_msg::RobotReplacedElsewhere);
                        }
                    }
                }
                let _ = me;
            }
            .into_actor(self),
        );
    }
}

async fn publish_directed(mut redis: ConnectionManager, instance: &str, msg: &Directed) -> bool {
    let Ok(payload) = serde_json::to_string(msg) else {
        return false;
    };
    let r: Result<i64, _> = redis
        .publish(keys::instance_channel(instance), payload)
        .await;
    r.is_ok()
}

impl Actor for ClusterBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        let (tx, rx) = mpsc::unbounded_channel();
        self.sub = Some(tx);
        let sub = Subscriber {
            client: self.client.clone(),
            redis: self.redis.clone(),
            instance: self.instance.clone(),
            bridge: ctx.address(),
            connected: self.connected.clone(),
            cmds: rx,
        };
        actix_rt::spawn(sub.run());
        let every = Duration::from_secs_f64((self.presence_ttl_s as f64 / 3.0).max(0.5));
        ctx.run_interval(every, |bridge, ctx| bridge.refresh_presence(ctx));
    }
}

impl Handler<Claim> for ClusterBridge {
    type Result = ResponseFuture<Result<Claimed, ()>>;

    fn handle(&mut self, msg: Claim, _ctx: &mut Context<Self>) -> Self::Result {
        self.homes.insert(msg.device.clone());
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = self.presence_ttl_s;
        Box::pin(async move {
            let (prev, last): (String, String) = redis::Script::new(scripts::CLAIM)
                .key(keys::presence(&msg.device))
                .key(keys::last(&msg.device))
                .arg(&instance)
                .arg(ttl)
                .invoke_async(&mut redis)
                .await
                .map_err(|e| tracing::warn!(error = %e, "cluster claim failed"))?;
            let previous = Some(prev).filter(|p| !p.is_empty() && *p != instance);
            if let Some(p) = &previous {
                publish_directed(
                    redis.clone(),
                    p,
                    &Directed::Replaced {
                        d: msg.device.clone(),
                    },
                )
                .await;
            }
            Ok(Claimed {
                previous,
                last: parse_last(&last),
            })
        })
    }
}

fn parse_last(s: &str) -> Option<(i64, u64)> {
    let (e, q) = s.split_once(':')?;
    Some((e.parse().ok()?, q.parse().ok()?))
}

impl Handler<Release> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Release, _ctx: &mut Context<Self>) -> Self::Result {
        self.homes.remove(&msg.device);
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            let _: Result<i64, _> = redis::Script::new(scripts::RELEASE)
                .key(keys::presence(&msg.device))
                .arg(instance)
                .invoke_async(&mut redis)
                .await;
        })
    }
}

impl Handler<Append> for ClusterBridge {
    type Result = ResponseFuture<AppendResult>;

    fn handle(&mut self, msg: Append, _ctx: &mut Context<Self>) -> Self::Result {
        if !self.connected.load(Ordering::Relaxed) {
            // Known down: don't make the room wait out connection retries;
            // it delivers locally and a new epoch follows once Redis is back.
            return Box::pin(async { AppendResult::Down });
        }
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let maxlen = self.history_size;
        let ttl = self.presence_ttl_s;
        Box::pin(async move {
            let expected = msg
                .expected
                .map(|(e, s)| format!("{e}:{s}"))
                .unwrap_or_default();
            let r: Result<String, _> = redis::Script::new(scripts::APPEND)
                .key(keys::presence(&msg.device))
                .key(keys::last(&msg.device))
                .key(keys::stream(&msg.device))
                .key(keys::device_channel(&msg.device))
                .arg(&instance)
                .arg(expected)
                .arg(format!("{}:{}", msg.epoch, msg.seq))
                .arg(msg.epoch)
                .arg(msg.seq)
                .arg(&*msg.frame)
                .arg(maxlen)
                .arg(ttl)
                .invoke_async(&mut redis)
                .await;
            match r.as_deref() {
                Ok("ok") => AppendResult::Ok,
                Ok("fenced") => AppendResult::Fenced,
                Ok("broken") => AppendResult::Broken,
                Ok(_) | Err(_) => AppendResult::Down,
            }
        })
    }
}

impl Handler<Watch> for ClusterBridge {
    type Result = ResponseFuture<Option<SyncState>>;

    fn handle(&mut self, msg: Watch, _ctx: &mut Context<Self>) -> Self::Result {
        self.mirrors.insert(msg.device.clone(), msg.room);
        let sub = self.sub.clone();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            // Subscribe first, then read: nothing can fall between the two
            // (duplicates are dropped by seq).
            let (ack_tx, ack_rx) = oneshot::channel();
            let last_now: Option<String> = redis.get(keys::last(&msg.device)).await.ok()?;
            let last = last_now.as_deref().and_then(parse_last);
            sub?.send(SubCmd::Watch {
                device: msg.device.clone(),
                last,
                ack: ack_tx,
            })
            .ok()?;
            if !ack_rx.await.unwrap_or(false) {
                return None;
            }
            let frames = read_stream(&mut redis, &msg.device).await?;
            let holder: Option<String> = redis.get(keys::presence(&msg.device)).await.ok()?;
            let snap: HashMap<String, String> = redis
                .hgetall(keys::snapshot(&msg.device))
                .await
                .unwrap_or_default();
            let last = frames.last().map(|(e, s, _)| (*e, *s)).or(last);
            Some(SyncState {
                last,
                frames,
                holder: holder.filter(|h| *h != instance),
                snapshot: snapshot_from_hash(&snap),
            })
        })
    }
}

fn snapshot_from_hash(h: &HashMap<String, String>) -> Snapshot {
    let get = |k: &str| h.get(k).and_then(|v| serde_json::from_str(v).ok());
    Snapshot {
        online: false,
        mode: get("mode"),
        mission: get("mission"),
        battery: get("battery"),
        last_seen: h.get("last_seen").and_then(|v| v.parse().ok()),
    }
}

impl Handler<Unwatch> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _ctx: &mut Context<Self>) {
        if self.mirrors.get(&msg.device) == Some(&msg.room) {
            self.mirrors.remove(&msg.device);
            if let Some(sub) = &self.sub {
                let _ = sub.send(SubCmd::Unwatch(msg.device));
            }
        }
    }
}

impl Handler<SendDirected> for ClusterBridge {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: SendDirected, _ctx: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        Box::pin(async move { publish_directed(redis, &msg.instance, &msg.msg).await })
    }
}

impl Handler<SaveSnapshot> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: SaveSnapshot, ctx: &mut Context<Self>) {
        let mut redis = self.redis.clone();
        let s = msg.snapshot;
        let mut fields: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("mode", &s.mode),
            ("mission", &s.mission),
            ("battery", &s.battery),
        ] {
            if let Some(v) = v {
                fields.push((k, v.to_string()));
            }
        }
        if let Some(t) = s.last_seen {
            fields.push(("last_seen", t.to_string()));
        }
        let key = keys::snapshot(&msg.device);
        ctx.spawn(
            async move {
                if !fields.is_empty() {
                    let _: Result<(), _> = redis.hset_multiple(key, &fields).await;
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<DeviceStatus> for ClusterBridge {
    type Result = ResponseFuture<Option<Snapshot>>;

    fn handle(&mut self, msg: DeviceStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let mut redis = self.redis.clone();
        Box::pin(async move {
            let holder: Option<String> = redis.get(keys::presence(&msg.device)).await.ok()?;
            let snap: HashMap<String, String> =
                redis.hgetall(keys::snapshot(&msg.device)).await.ok()?;
            let mut s = snapshot_from_hash(&snap);
            s.online = holder.is_some();
            Some(s)
        })
    }
}

impl Handler<ClusterTotals> for ClusterBridge {
    type Result = ResponseFuture<Option<serde_json::Value>>;

    fn handle(&mut self, _msg: ClusterTotals, _ctx: &mut Context<Self>) -> Self::Result {
        let mut redis = self.redis.clone();
        Box::pin(async move {
            let instances: Vec<String> = redis.smembers(keys::INSTANCES).await.ok()?;
            let mut totals = serde_json::Map::new();
            let mut live = 0;
            for i in instances {
                let raw: Option<String> = redis.get(keys::stats(&i)).await.ok()?;
                let Some(v) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
                else {
                    continue;
                };
                live += 1;
                if let Some(obj) = v.as_object() {
                    for (k, n) in obj {
                        let sum = totals.get(k).and_then(|x| x.as_i64()).unwrap_or(0)
                            + n.as_i64().unwrap_or(0);
                        totals.insert(k.clone(), sum.into());
                    }
                }
            }
            totals.insert("instances".into(), live.into());
            Some(serde_json::Value::Object(totals))
        })
    }
}

impl Handler<Incoming> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        match msg {
            Incoming::Event {
                device,
                epoch,
                seq,
                frame,
            } => {
                if let Some(room) = self.mirrors.get(&device) {
                    room.do_send(room_msg::RemoteEvent { epoch, seq, frame });
                }
            }
            Incoming::Gap {
                device,
                epoch,
                from,
                to,
            } => {
                if let Some(room) = self.mirrors.get(&device) {
                    room.do_send(room_msg::RemoteGap { epoch, from, to });
                }
            }
            Incoming::Directed(payload) => self.route_directed(payload, ctx),
            Incoming::Up => {
                self.connected.store(true, Ordering::Relaxed);
                self.refresh_presence(ctx);
            }
            Incoming::Down => self.connected.store(false, Ordering::Relaxed),
        }
    }
}

impl Handler<SetDirectory> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: SetDirectory, _ctx: &mut Context<Self>) {
        self.set_directory(msg.directory);
        self.sessions = Some(msg.sessions);
    }
}

impl Handler<BroadcastDeleted> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: BroadcastDeleted, ctx: &mut Context<Self>) {
        let mut redis = self.redis.clone();
        ctx.spawn(
            async move {
                let Ok(payload) = serde_json::to_string(&Directed::Deleted { d: msg.device })
                else {
                    return;
                };
                let _: Result<i64, _> = redis.publish(keys::ALL, payload).await;
            }
            .into_actor(self),
        );
    }
}

impl Handler<SessionSlot> for ClusterBridge {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: SessionSlot, _ctx: &mut Context<Self>) -> Self::Result {
        let mut redis = self.redis.clone();
        Box::pin(async move {
            let r: Result<i64, _> = redis::Script::new(scripts::SESSION_SLOT)
                .key(keys::sessions(&msg.device))
                .arg(&msg.session)
                .arg(crate::ids::unix_now())
                .arg(msg.stale_after_s)
                .arg(msg.max)
                .invoke_async(&mut redis)
                .await;
            r.map(|n| n == 1).unwrap_or(true)
        })
    }
}

impl Handler<SessionSlots> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: SessionSlots, ctx: &mut Context<Self>) {
        let mut redis = self.redis.clone();
        ctx.spawn(
            async move {
                let now = crate::ids::unix_now();
                let mut pipe = redis::pipe();
                for (device, session) in &msg.slots {
                    if msg.keep {
                        pipe.zadd(keys::sessions(device), session, now).ignore();
                        pipe.expire(keys::sessions(device), msg.stale_after_s as i64)
                            .ignore();
                    } else {
                        pipe.zrem(keys::sessions(device), session).ignore();
                    }
                }
                let _: Result<(), _> = pipe.query_async(&mut redis).await;
            }
            .into_actor(self),
        );
    }
}
