//! Giving the devices up when this instance stops (`crate::shutdown`):
//! [`BeginHandOff`] marks each device whose robot is here as being handed
//! off, so that a claim from the instance the robot reconnects to waits
//! until our room has appended the robot's last events and released it;
//! [`FinishHandOff`], once the rooms drained, stops all appends and claims,
//! writes the snapshots still waiting for their flush, deletes the claims
//! (and marks) still ours, and tells every instance we are gone, so their
//! mirrors announce a robot we never released at once.
//!
//! Every key touched names one device (its hash tag), so on a Redis Cluster
//! each command goes to that device's shard; they run concurrently, not as
//! one pipeline (which would span shards). The `Gone` broadcast goes on
//! `wimz:{all}` like every broadcast (`SPUBLISH` on a Redis Cluster, where
//! every instance `SSUBSCRIBE`s that one channel on its one shard).

use super::keys;
use super::messages::*;
use super::presence::release;
use super::ClusterBridge;
use actix::prelude::*;
use futures_util::future::join_all;
use redis::AsyncCommands;

impl Handler<BeginHandOff> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: BeginHandOff, _ctx: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = msg.ttl.as_secs_f64().ceil().max(1.0) as u64;
        let marks: Vec<_> = self
            .homes
            .keys()
            .map(|device| {
                let (mut redis, key, instance) =
                    (redis.clone(), keys::handoff(device), instance.clone());
                async move { redis.set_ex::<_, _, ()>(key, instance, ttl).await }
            })
            .collect();
        Box::pin(async move {
            let failed = join_all(marks).await.iter().filter(|r| r.is_err()).count();
            if failed > 0 {
                tracing::warn!(failed, "could not mark devices as handed off");
            }
        })
    }
}

impl Handler<FinishHandOff> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: FinishHandOff, _ctx: &mut Context<Self>) -> Self::Result {
        self.closing = true;
        // No room appends on its own from now on either.
        self.lane.invalidate();
        // The rooms drained: their last snapshots are written now, not at
        // a flush this instance may not live to see.
        let snapshots = self.snapshot_writes();
        let homes: Vec<_> = self.homes.drain().map(|(device, _)| device).collect();
        let redis = self.redis.clone();
        let script = self.scripts.release.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            if let Some(writes) = snapshots {
                writes.await;
            }
            let releases = homes.iter().map(|device| {
                let (mut redis, script, instance) = (redis.clone(), &script, &instance);
                async move { release(&mut redis, script, device, instance).await }
            });
            let released = join_all(releases)
                .await
                .into_iter()
                .filter(|r| matches!(r, Ok(1)))
                .count();
            if released > 0 {
                tracing::warn!(
                    released,
                    "robots not detached within the shutdown budget; their claims were released"
                );
            }
            if let Ok(payload) = serde_json::to_string(&Directed::Gone { i: instance }) {
                let _: Result<i64, _> = redis
                    .publish_cmd(keys::ALL, &payload)
                    .query_async(&mut redis.clone())
                    .await;
            }
        })
    }
}
