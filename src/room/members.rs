//! The app side of a [`DeviceRoom`]: members joining and leaving,
//! subscriptions with `since_seq` recovery, and commands to the robot.

use super::device_room::{DeviceRoom, Member};
use super::messages::*;
use crate::metrics;
use crate::wire::encode::{self, Loss};
use actix::prelude::*;

impl Handler<Join> for DeviceRoom {
    type Result = Result<(), JoinError>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        if self.retired {
            return Err(JoinError::Retired);
        }
        if msg.user != self.owner {
            return Err(JoinError::NotOwner);
        }
        let cap = self.env.max_members;
        if cap > 0 && self.members.len() >= cap && !self.members.contains_key(&msg.conn) {
            self.env.metrics.refused(metrics::Refusal::DeviceWatchers);
            return Err(JoinError::Full);
        }
        self.idle_generation += 1;
        self.members.entry(msg.conn).or_insert(Member {
            user: msg.user,
            outbox: msg.outbox,
            socket: msg.socket,
            subscribed: false,
        });
        // A room its robot left while nobody was here stays (idle grace)
        // without mirroring the device (`release_home` watches for members
        // only): the first member makes it follow the device again.
        self.watch(ctx);
        Ok(())
    }
}

impl Handler<Subscribe> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) {
        let snapshot = self.snapshot();
        let Some(m) = self.members.get_mut(&msg.conn) else {
            return;
        };
        m.subscribed = true;
        m.outbox.send(encode::subscribed(
            &self.device,
            &snapshot,
            self.epoch,
            self.seq,
        ));
        let (frames, complete, reason) = if let Some(failed) = msg.after_failure {
            // The app's earlier room failed: what it missed cannot be
            // known, so everything buffered, and never `complete`.
            let reason = match failed.epoch {
                Some(e) if e != self.epoch => Loss::EpochChanged,
                _ => Loss::Gap,
            };
            (self.history.all(), false, Some(reason))
        } else {
            let Some(since) = msg.since_seq else { return };
            let same_epoch = msg.epoch.is_none_or(|e| e == self.epoch);
            let (frames, complete) = if same_epoch {
                let r = self.history.since(since, self.seq);
                (r.frames, r.complete)
            } else {
                (self.history.all(), false)
            };
            // A since_seq past our seq means the app saw another epoch.
            let frames = if same_epoch && since > self.seq {
                self.history.all()
            } else {
                frames
            };
            (frames, complete, None)
        };
        for f in frames {
            if !m.outbox.send(f.clone()) {
                return; // too slow to take its own replay: it is being closed
            }
        }
        m.outbox.send(match reason {
            None => encode::recovered(&self.device_json, complete),
            Some(loss) => encode::lost(&self.device_json, loss),
        });
    }
}

impl Handler<Unsubscribe> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        if let Some(m) = self.members.get_mut(&msg.conn) {
            m.subscribed = false;
            m.outbox.send(encode::unsubscribed(&self.device_json, None));
        }
    }
}

impl Handler<Leave> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        if self.members.remove(&msg.conn).is_some() {
            self.check_idle(ctx);
        }
    }
}

impl Handler<Command> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: Command, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get(&msg.conn) else {
            return;
        };
        let Some(robot) = &self.robot else {
            if self.command_to_other_instance(
                &msg.conn,
                &msg.raw,
                msg.spoofed,
                msg.reference.clone(),
                ctx,
            ) {
                return;
            }
            self.send_error(
                &msg.conn,
                crate::wire::WireError::robot_offline().with_ref(msg.reference),
            );
            return;
        };
        metrics::inc(&self.env.metrics.commands);
        let handed = robot.outbox.send(encode::command(
            &msg.raw,
            msg.spoofed,
            &member.user,
            &msg.conn,
        ));
        match (handed, &msg.reference) {
            (true, Some(id)) => self.command_handed(msg.conn, id.get()),
            (true, None) => {}
            // Its queue is full (it is being closed as a slow consumer) or
            // it is going: the robot will not get this one.
            (false, _) => self.send_error(
                &msg.conn,
                crate::wire::WireError::new(
                    crate::wire::WireCode::RobotOffline,
                    "the robot is not taking commands",
                )
                .with_ref(msg.reference),
            ),
        }
    }
}

/// Unanswered commands remembered per robot connection; more are not.
const MAX_WAITING_COMMANDS: usize = 256;
/// A command unanswered for longer is forgotten (the app has given up).
const COMMAND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

impl DeviceRoom {
    /// The robot was handed command `id` from app connection `conn`.
    pub(super) fn command_handed(&mut self, conn: crate::ids::ConnId, id: &str) {
        let now = std::time::Instant::now();
        if self.waiting_commands.len() >= MAX_WAITING_COMMANDS {
            self.waiting_commands
                .retain(|_, since| now.duration_since(*since) < COMMAND_PATIENCE);
            if self.waiting_commands.len() >= MAX_WAITING_COMMANDS {
                return;
            }
        }
        self.waiting_commands.insert((conn, id.to_string()), now);
    }

    /// The robot is gone: every command it was handed in the last
    /// COMMAND_PATIENCE and did not answer gets `robot_offline` (with its
    /// `id` as `ref`), here or on the app's instance.
    pub(super) fn fail_commands(&mut self) {
        let now = std::time::Instant::now();
        for ((conn, id), since) in std::mem::take(&mut self.waiting_commands) {
            if now.duration_since(since) >= COMMAND_PATIENCE {
                continue;
            }
            let frame = crate::wire::WireError::new(
                crate::wire::WireCode::RobotOffline,
                "the robot went offline before answering",
            )
            .with_ref(serde_json::value::RawValue::from_string(id).ok())
            .to_frame();
            if let Some(m) = self.members.get(&conn) {
                m.outbox.send(frame);
            } else {
                self.result_to_other_instance(conn, frame);
            }
        }
    }
}
