//! Presence: which instance holds each device's robot (`Claim`, `Release`,
//! and the periodic refresh that keeps our claims alive and checks the
//! holders of the devices we mirror), plus this instance's numbers for the
//! cluster's `/stats` totals.

use super::directed::publish_directed;
use super::keys;
use super::link::Link;
use super::messages::*;
use super::{ClusterBridge, Home, Term};
use crate::ids::DeviceId;
use actix::prelude::*;
use redis::AsyncCommands;

impl ClusterBridge {
    /// Every `presence_ttl_s / 3`: refresh our claims (one script each, run
    /// concurrently: on a Redis Cluster each goes to its device's shard),
    /// hand a room whose claim another instance now holds its loss, report
    /// our stats, and read the holders of the devices we mirror.
    pub(super) fn refresh_presence(&mut self, ctx: &mut Context<Self>) {
        let homes: Vec<DeviceId> = self
            .homes
            .iter()
            .filter(|(_, h)| h.claimed)
            .map(|(d, _)| d.clone())
            .collect();
        let mirrors: Vec<(DeviceId, Mirror)> = self
            .mirrors
            .iter()
            .map(|(d, a)| (d.clone(), a.clone()))
            .collect();
        let redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = self.presence_ttl_s;
        let refresh = self.scripts.refresh.clone();
        let rooms = self.upstream.rooms.clone();
        // A presence key is refreshed every ttl/3: only after listening a
        // whole ttl does its absence mean its holder is gone.
        let absence_counts = self
            .up_since
            .is_some_and(|t| t.elapsed() >= std::time::Duration::from_secs(ttl));
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
                let refreshes = homes.into_iter().map(|device| {
                    let (mut redis, refresh, instance) =
                        (redis.clone(), refresh.clone(), &instance);
                    async move {
                        let ours: Result<i64, _> = refresh
                            .key(keys::presence(&device))
                            .arg(instance)
                            .arg(ttl)
                            .invoke_async(&mut redis)
                            .await;
                        (device, ours)
                    }
                });
                for (device, ours) in futures_util::future::join_all(refreshes).await {
                    if let Ok(0) = ours {
                        // Another instance claimed it (a claim whose
                        // `Replaced` never reached us): our robot is stale.
                        let _ = rooms.try_send(ForRooms::Replaced { device });
                    }
                }
                let mut r = redis.clone();
                let _: Result<(), _> = r.set_ex(keys::stats(&instance), stats, ttl.max(3)).await;
                let _: Result<(), _> = r.sadd(keys::INSTANCES, &instance).await;
                // Mirrors whose robot's instance stopped refreshing: gone.
                let reads = mirrors.into_iter().map(|(device, mirror)| {
                    let mut redis = redis.clone();
                    async move {
                        let read_at = std::time::Instant::now();
                        let holder: Result<Option<String>, _> =
                            redis.get(keys::presence(&device)).await;
                        (mirror, holder, read_at)
                    }
                });
                for (mirror, holder, read_at) in futures_util::future::join_all(reads).await {
                    if let Ok(holder) = holder {
                        if holder.is_none() && !absence_counts {
                            continue;
                        }
                        mirror.holder.do_send(HolderIs {
                            holder: holder.filter(|h| *h != instance),
                            read_at,
                        });
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<Claim> for ClusterBridge {
    type Result = ResponseActFuture<Self, Result<Claimed, ()>>;

    /// Takes presence, mints a term and marks the stream with it (Redis
    /// refuses the previous holder's appends from then on), and tells the
    /// previous holder (`Replaced`) so it drops its robot at once.
    fn handle(&mut self, msg: Claim, _ctx: &mut Context<Self>) -> Self::Result {
        if self.closing {
            return Box::pin(fut::ready(Err(())));
        }
        self.homes.insert(msg.device.clone(), Home::default());
        let invalidations = self.lane.count();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = self.presence_ttl_s;
        let claim = self.scripts.claim.clone();
        let maxlen = self.history_size;
        let device = msg.device.clone();
        let work = async move {
            let publish = redis.publish_name();
            // The holder may be stopping and still appending the robot's
            // last events (it marked the device `handoff`): wait for it to
            // release the device, at most as long as its claim could live.
            let patience = std::time::Instant::now() + std::time::Duration::from_secs(ttl);
            // A fresh epoch if the device has none: the attaching room takes it.
            let fresh_epoch = crate::ids::unix_now_ms();
            let (prev, epoch, seq, term) = loop {
                let (prev, epoch, seq, term, wait): (String, String, u64, u64, String) = claim
                    .key(keys::presence(&msg.device))
                    .key(keys::stream(&msg.device))
                    .key(keys::device_channel(&msg.device))
                    .key(keys::handoff(&msg.device))
                    .arg(&instance)
                    .arg(ttl)
                    .arg(fresh_epoch)
                    .arg(crate::ids::unix_now_ms())
                    .arg(maxlen)
                    .arg(publish)
                    .invoke_async(&mut redis)
                    .await
                    .map_err(|e| tracing::warn!(error = %e, "cluster claim failed"))?;
                if wait.is_empty() || std::time::Instant::now() > patience {
                    break (prev, epoch, seq, term);
                }
                tokio::time::sleep(HANDOFF_POLL).await;
            };
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
            let epoch: i64 = epoch.parse().map_err(|_| ())?;
            Ok((
                Claimed {
                    previous,
                    last: Some((epoch, seq)),
                },
                term,
            ))
        };
        Box::pin(work.into_actor(self).map(move |r, bridge, _ctx| {
            let (claimed, term) = r?;
            if let Some(home) = bridge.homes.get_mut(&device) {
                home.claimed = true;
                home.term = Some(Term {
                    term,
                    generation: bridge.redis.generation(),
                    invalidations,
                });
            }
            Ok(claimed)
        }))
    }
}

/// How often a claim asks again while the holder hands the device off.
const HANDOFF_POLL: std::time::Duration = std::time::Duration::from_millis(20);

impl Handler<Release> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Release, _ctx: &mut Context<Self>) -> Self::Result {
        self.homes.remove(&msg.device);
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let script = self.scripts.release.clone();
        Box::pin(async move {
            let _ = release(&mut redis, &script, &msg.device, &instance).await;
        })
    }
}

/// Deletes our claim of `device` and our hand-off mark, if still ours.
/// `script` is [`scripts::RELEASE`] (hashed once, in `Scripts`).
pub(super) async fn release(
    redis: &mut Link,
    script: &redis::Script,
    device: &DeviceId,
    instance: &str,
) -> redis::RedisResult<i64> {
    script
        .key(keys::presence(device))
        .key(keys::handoff(device))
        .arg(instance)
        .invoke_async(redis)
        .await
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
