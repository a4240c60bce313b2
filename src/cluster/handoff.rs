//! Giving the devices up when this instance stops (`crate::shutdown`):
//! [`BeginHandOff`] marks each device whose robot is here as being handed
//! off, so that a claim from the instance the robot reconnects to waits
//! until our room has appended the robot's last events and released it;
//! [`FinishHandOff`], once the rooms drained, stops all appends and claims,
//! deletes the claims (and marks) still ours, and tells every instance we
//! are gone, so their mirrors announce a robot we never released at once.

use super::keys;
use super::messages::*;
use super::presence::release;
use super::ClusterBridge;
use actix::prelude::*;
use redis::AsyncCommands;

impl Handler<BeginHandOff> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: BeginHandOff, _ctx: &mut Context<Self>) -> Self::Result {
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        let ttl = msg.ttl.as_secs_f64().ceil().max(1.0) as u64;
        let mut pipe = redis::pipe();
        for device in &self.homes {
            pipe.set_ex(keys::handoff(device), &instance, ttl).ignore();
        }
        let any = !self.homes.is_empty();
        Box::pin(async move {
            if any {
                if let Err(e) = pipe.query_async::<()>(&mut redis).await {
                    tracing::warn!(error = %e, "could not mark devices as handed off");
                }
            }
        })
    }
}

impl Handler<FinishHandOff> for ClusterBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: FinishHandOff, _ctx: &mut Context<Self>) -> Self::Result {
        self.closing = true;
        let homes: Vec<_> = self.homes.drain().collect();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            let mut released = 0;
            for device in &homes {
                if let Ok(1) = release(&mut redis, device, &instance).await {
                    released += 1;
                }
            }
            if released > 0 {
                tracing::warn!(
                    released,
                    "robots not detached within the shutdown budget; their claims were released"
                );
            }
            if let Ok(payload) = serde_json::to_string(&Directed::Gone { i: instance }) {
                let _: Result<i64, _> = redis.publish(keys::ALL, payload).await;
            }
        })
    }
}
