//! The REST proxy's side of a [`DeviceRoom`]: requests waiting on the robot,
//! their answers, cancellations, and failing them all when the robot leaves.

use super::device_room::DeviceRoom;
use super::messages::*;
use crate::metrics;
use actix::prelude::*;

impl DeviceRoom {
    /// The robot left: every waiting REST call is answered "robot offline",
    /// and every command it was handed and did not answer `robot_offline`.
    pub(super) fn fail_pending(&mut self) {
        self.fail_commands();
        for (r, (back, _)) in std::mem::take(&mut self.remote_pending) {
            self.proxy_answer_other_instance(back, r, None, None);
        }
        metrics::gauge_add(
            &self.env.metrics.proxy_pending,
            -(self.pending.len() as i64),
        );
        for (_, tx) in self.pending.drain() {
            let _ = tx.send(ProxyReply::RobotOffline);
        }
    }

    /// Answers one waiting REST call with "robot offline" (it could not be
    /// forwarded), if it is still waiting.
    pub(super) fn fail_one_pending(&mut self, request_id: &str) {
        if let Some(tx) = self.pending.remove(request_id) {
            metrics::gauge_add(&self.env.metrics.proxy_pending, -1);
            let _ = tx.send(ProxyReply::RobotOffline);
        }
    }
}

impl Handler<ProxyRequest> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: ProxyRequest, ctx: &mut Context<Self>) {
        let Some(robot) = &self.robot else {
            if self.pending.len() < self.env.max_pending_proxy
                && self.proxy_to_other_instance(&msg.request_id, &msg.frame, ctx)
            {
                self.pending.insert(msg.request_id, msg.reply);
                metrics::gauge_add(&self.env.metrics.proxy_pending, 1);
            } else {
                let _ = msg.reply.send(ProxyReply::RobotOffline);
            }
            return;
        };
        if self.pending.len() >= self.env.max_pending_proxy {
            let _ = msg.reply.send(ProxyReply::TooMany);
            return;
        }
        if !robot.outbox.send(msg.frame) {
            let _ = msg.reply.send(ProxyReply::RobotOffline);
            return;
        }
        self.pending.insert(msg.request_id, msg.reply);
        metrics::gauge_add(&self.env.metrics.proxy_pending, 1);
    }
}

impl Handler<ProxyCancel> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: ProxyCancel, _ctx: &mut Context<Self>) {
        if self.pending.remove(&msg.request_id).is_some() {
            metrics::gauge_add(&self.env.metrics.proxy_pending, -1);
        }
    }
}

impl Handler<ProxyResponse> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: ProxyResponse, _ctx: &mut Context<Self>) {
        if self.robot.as_ref().map(|r| &r.conn) != Some(&msg.conn) {
            return;
        }
        if let Some((back, _)) = self.remote_pending.remove(&msg.request_id) {
            self.proxy_answer_other_instance(back, msg.request_id, Some(msg.status), msg.body);
            return;
        }
        if let Some(tx) = self.pending.remove(&msg.request_id) {
            metrics::gauge_add(&self.env.metrics.proxy_pending, -1);
            let _ = tx.send(ProxyReply::Response {
                status: msg.status,
                body: msg.body,
            });
        }
    }
}

impl Handler<PendingProxyCount> for DeviceRoom {
    type Result = usize;

    fn handle(&mut self, _msg: PendingProxyCount, _ctx: &mut Context<Self>) -> usize {
        self.pending.len()
    }
}
