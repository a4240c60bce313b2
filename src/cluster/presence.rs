//! Presence: which instance holds each device's robot (`Claim`, `Release`,
//! and the periodic refresh that keeps our claims alive and checks the
//! holders of the devices we mirror), plus this instance's numbers for the
//! cluster's `/stats` totals.

use super::directed::publish_directed;
use super::keys;
use super::messages::*;
use super::scripts;
use super::ClusterBridge;
use crate::ids::DeviceId;
use actix::prelude::*;
use redis::AsyncCommands;

impl ClusterBridge {
    pub(super) fn refresh_presence(&mut self, ctx: &mut Context<Self>) {
        let homes: Vec<String> = self.homes.iter().map(keys::presence).collect();
        let mirrors: Vec<(DeviceId, Mirror)> = self
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
                for (device, mirror) in mirrors {
                    let read_at = std::time::Instant::now();
                    let holder: Result<Option<String>, _> =
                        redis.get(keys::presence(&device)).await;
                    if let Ok(holder) = holder {
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
                // A fresh epoch if the device has none: the attaching room takes it.
                .arg(format!("{}:0", crate::ids::unix_now_ms()))
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

pub(super) fn parse_last(s: &str) -> Option<(i64, u64)> {
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
