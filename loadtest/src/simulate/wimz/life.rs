//! What a [`Wimz`] does as time passes, one [`Wimz::tick`] at a time: its
//! battery drains (more while training), it docks when low and leaves full;
//! a running mission moves one step; in training mode it starts missions by
//! itself; it hears barks, sees its dog, and now and then says something.

use super::{
    catalog, event, Event, Step, Wimz, CHARGE, DRAIN_IDLE, DRAIN_MISSION, FULL, LOW,
    MISSION_MIN_BATTERY, STATUS_EVERY, TRAINING_PAUSE,
};
use rand::Rng;
use serde_json::json;

impl Wimz {
    /// One step of time: battery, the mission's next step, training mode's
    /// own missions, things the robot notices, and a periodic status.
    pub fn tick(&mut self, rng: &mut impl Rng) -> Vec<Event> {
        self.ticks += 1;
        let mut out = self.battery_tick();
        out.extend(self.mission_tick(rng));
        out.extend(self.training_tick(rng));
        out.extend(self.senses(rng));
        if self.ticks % STATUS_EVERY == 0 {
            out.push(event("status_update", self.status()));
        }
        out
    }

    fn battery_tick(&mut self) -> Vec<Event> {
        let before = self.battery_level() / 5;
        let mut out = Vec::new();
        if self.charging {
            self.battery = (self.battery + CHARGE).min(100.0);
            if self.battery >= FULL {
                self.charging = false;
                out.push(event("battery", self.battery_json()));
            }
        } else {
            let drain = DRAIN_IDLE
                + if self.mission.is_some() {
                    DRAIN_MISSION
                } else {
                    0.0
                };
            self.battery = (self.battery - drain).max(0.0);
            if self.battery <= LOW {
                self.charging = true;
                out.push(event(
                    "alert",
                    json!({
                        "level": "warning",
                        "code": "battery_low",
                        "message": format!("Battery at {}%: going to the dock", self.battery_level()),
                    }),
                ));
                out.push(event("battery", self.battery_json()));
            }
        }
        if out.is_empty() && self.battery_level() / 5 != before {
            out.push(event("battery", self.battery_json()));
        }
        out
    }

    fn mission_tick(&mut self, rng: &mut impl Rng) -> Vec<Event> {
        let Some(m) = self.mission.as_mut() else {
            return Vec::new();
        };
        if m.paused {
            return Vec::new();
        }
        let mut out = Vec::new();
        m.step = match m.step {
            Step::Waiting => Step::Greeting,
            Step::Greeting | Step::Retry => Step::Command,
            Step::Command => Step::Watching,
            Step::Watching if rng.gen_bool(0.25) => {
                self.today.retries += 1;
                Step::Retry
            }
            Step::Watching => {
                self.today.successes += 1;
                Step::Success
            }
            Step::Success if m.stage >= m.def.total_stages => {
                return self.finish_mission("completed");
            }
            Step::Success => {
                m.stage += 1;
                Step::Command
            }
        };
        out.extend(self.progress());
        if self.mission.as_ref().map(|m| m.step) == Some(Step::Success) && self.treats > 0 {
            out.extend(self.give_treats(1, "reward"));
        }
        out
    }

    /// Ends the running mission with `status` (`completed`, `stopped`):
    /// its last progress event, the mode it had before, and the program's
    /// next mission if one runs.
    pub(super) fn finish_mission(&mut self, status: &'static str) -> Vec<Event> {
        let Some(m) = self.mission.take() else {
            return Vec::new();
        };
        if status == "completed" {
            self.today.missions_completed += 1;
        }
        let mut data = json!({
            "mission": m.def.name,
            "status": status,
            "stage": m.stage,
            "total_stages": m.def.total_stages,
            "dog": self.dog.name,
        });
        if let Some(p) = &self.program {
            data["program"] = json!(p.program.name);
        }
        let mut out = vec![event("mission_progress", data)];
        out.extend(self.change_mode(&m.previous_mode));
        self.training_wait = 0;
        if status == "completed" {
            out.extend(self.next_in_program());
        } else {
            self.program = None;
        }
        out
    }

    fn next_in_program(&mut self) -> Vec<Event> {
        let Some(p) = self.program.as_mut() else {
            return Vec::new();
        };
        p.index += 1;
        match p.program.missions.get(p.index).copied() {
            Some(next) => self.begin(next),
            None => {
                self.program = None;
                Vec::new()
            }
        }
    }

    fn training_tick(&mut self, rng: &mut impl Rng) -> Vec<Event> {
        if self.mode != catalog::TRAINING_MODE || self.mission.is_some() || self.charging {
            return Vec::new();
        }
        if self.training_wait == 0 {
            self.training_wait = rng.gen_range(TRAINING_PAUSE);
            return Vec::new();
        }
        self.training_wait -= 1;
        if self.training_wait > 0 || self.battery < 2.0 * MISSION_MIN_BATTERY {
            return Vec::new();
        }
        let def = &catalog::MISSIONS[rng.gen_range(0..catalog::MISSIONS.len())];
        self.begin(def)
    }

    /// Barks, the dog coming into view, now and then a notice.
    fn senses(&mut self, rng: &mut impl Rng) -> Vec<Event> {
        let mut out = Vec::new();
        if rng.gen_bool(0.06) {
            self.today.barks += 1;
            out.push(event(
                "bark_detected",
                json!({
                    "confidence": (rng.gen_range(0.70..0.99f64) * 100.0).round() / 100.0,
                    "loudness_db": rng.gen_range(55..92),
                    "duration_ms": rng.gen_range(150..1200),
                    "dog": self.dog.name,
                }),
            ));
        }
        if rng.gen_bool(0.04) {
            self.today.detections += 1;
            out.push(event(
                "dog_detected",
                json!({
                    "dog_id": self.dog.id,
                    "name": self.dog.name,
                    "confidence": (rng.gen_range(0.80..0.99f64) * 100.0).round() / 100.0,
                    "position": {"x": rng.gen_range(0..640), "y": rng.gen_range(0..480)},
                }),
            ));
        }
        if rng.gen_bool(0.005) {
            out.push(event(
                "alert",
                json!({
                    "level": "info",
                    "code": "dog_left_area",
                    "message": format!("{} left the training area", self.dog.name),
                }),
            ));
        }
        out
    }
}
