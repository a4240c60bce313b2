//! Cluster-wide WebRTC session slots: the per-device session limit counted
//! over every instance (`SessionSlot`, `SessionSlots`).

use super::keys;
use super::messages::*;
use super::ClusterBridge;
use actix::prelude::*;
use std::sync::atomic::Ordering;

impl Handler<SessionSlot> for ClusterBridge {
    type Result = ResponseFuture<SlotAnswer>;

    fn handle(&mut self, msg: SessionSlot, _ctx: &mut Context<Self>) -> Self::Result {
        // Known down: answer at once rather than wait for the connection
        // manager's reconnect attempts to time out.
        if !self.connected.load(Ordering::Relaxed) {
            return Box::pin(async { SlotAnswer::Down });
        }
        let mut redis = self.redis.clone();
        let script = self.scripts.session_slot.clone();
        Box::pin(async move {
            let r: Result<i64, _> = script
                .key(keys::sessions(&msg.device))
                .arg(&msg.session)
                .arg(crate::ids::unix_now())
                .arg(msg.stale_after_s)
                .arg(msg.max)
                .invoke_async(&mut redis)
                .await;
            match r {
                Ok(1) => SlotAnswer::Taken,
                Ok(_) => SlotAnswer::Full,
                Err(_) => SlotAnswer::Down,
            }
        })
    }
}

impl Handler<SessionSlots> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: SessionSlots, ctx: &mut Context<Self>) {
        let redis = self.redis.clone();
        let (slots, refresh) = match msg {
            SessionSlots::Refresh {
                slots,
                stale_after_s,
            } => (slots, Some(stale_after_s)),
            SessionSlots::GiveBack { slots } => (slots, None),
        };
        ctx.spawn(
            async move {
                let now = crate::ids::unix_now();
                // One pipeline per device: on a Redis Cluster each device's
                // set is on its own shard.
                let updates = slots.iter().map(|(device, session)| {
                    let mut redis = redis.clone();
                    let mut pipe = redis::pipe();
                    match refresh {
                        Some(stale_after_s) => {
                            pipe.zadd(keys::sessions(device), session, now).ignore();
                            pipe.expire(keys::sessions(device), stale_after_s as i64)
                                .ignore();
                        }
                        None => {
                            pipe.zrem(keys::sessions(device), session).ignore();
                        }
                    }
                    async move {
                        let _: Result<(), _> = pipe.query_async(&mut redis).await;
                    }
                });
                futures_util::future::join_all(updates).await;
            }
            .into_actor(self),
        );
    }
}
