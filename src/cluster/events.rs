//! Events across instances: `Append` (number an event through Redis), the
//! mirror side (`Watch` / `Unwatch`: subscribe, then read the device's
//! state), and the device snapshot kept in Redis (`SaveSnapshot`,
//! `DeviceStatus`).

use super::keys;
use super::messages::*;
use super::presence::parse_last;
use super::scripts;
use super::subscriber::{read_stream, SubCmd};
use super::ClusterBridge;
use crate::wire::Snapshot;
use actix::prelude::*;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

impl Handler<Append> for ClusterBridge {
    type Result = ResponseFuture<AppendResult>;

    fn handle(&mut self, msg: Append, _ctx: &mut Context<Self>) -> Self::Result {
        if self.closing {
            // Handed off: the device may be another instance's already, and
            // an event numbered here now could take a seq it gives out too.
            return Box::pin(async { AppendResult::Fenced });
        }
        if !self.connected.load(Ordering::Relaxed) {
            // Known down: don't make the room wait out connection retries;
            // it delivers locally and a new epoch follows once Redis is back.
            self.metrics.redis_publish_skipped();
            return Box::pin(async { AppendResult::Down });
        }
        let metrics = self.metrics.clone();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let maxlen = self.history_size;
        let ttl = self.presence_ttl_s;
        Box::pin(async move {
            let expected = msg
                .expected
                .map(|(e, s)| format!("{e}:{s}"))
                .unwrap_or_default();
            let started = std::time::Instant::now();
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
            metrics.redis_published(started, r.is_ok());
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
        self.mirrors.insert(msg.device.clone(), msg.mirror);
        let sub = self.sub.clone();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            // Subscribe first, then read: nothing can fall between the two
            // (duplicates are dropped by seq).
            let (ack_tx, ack_rx) = oneshot::channel();
            let last_now: String = redis::Script::new(scripts::LAST_OR_RESERVE)
                .key(keys::last(&msg.device))
                .arg(format!("{}:0", msg.epoch))
                .invoke_async(&mut redis)
                .await
                .ok()?;
            let last = parse_last(&last_now);
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
    fn get<T: serde::de::DeserializeOwned>(h: &HashMap<String, String>, k: &str) -> Option<T> {
        h.get(k).and_then(|v| serde_json::from_str(v).ok())
    }
    Snapshot {
        online: false,
        mode: get(h, "mode"),
        mission: get(h, "mission"),
        battery: get(h, "battery"),
        last_seen: h.get("last_seen").and_then(|v| v.parse().ok()),
    }
}

impl Handler<Unwatch> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _ctx: &mut Context<Self>) {
        if self.mirrors.get(&msg.device) == Some(&msg.mirror) {
            self.mirrors.remove(&msg.device);
            if let Some(sub) = &self.sub {
                let _ = sub.send(SubCmd::Unwatch(msg.device));
            }
        }
    }
}

impl Handler<SaveSnapshot> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: SaveSnapshot, ctx: &mut Context<Self>) {
        let mut redis = self.redis.clone();
        let s = msg.snapshot;
        let mut fields: Vec<(&str, String)> = Vec::new();
        if let Some(v) = &s.mode {
            fields.push(("mode", v.to_string()));
        }
        for (k, v) in [("mission", &s.mission), ("battery", &s.battery)] {
            if let Some(v) = v {
                fields.push((k, v.get().to_string()));
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
