//! One simulated WIM-Z: its state (mode, battery, treats, the running
//! mission or program, today's counters) and how it changes, with no I/O.
//! [`Wimz::tick`] advances time by one step and returns the events the
//! robot sends; the actions ([`Wimz::start_mission`], [`Wimz::set_mode`],
//! ...) are what commands and REST calls do, each answering the events it
//! causes or a [`Refusal`]. Randomness comes from the caller's RNG, so a
//! seeded RNG replays the same robot. This file holds the state and the
//! transitions both share; `life.rs` is what time does to it, `actions.rs`
//! what it is asked to do.

mod actions;
mod life;

pub use actions::MAX_DISPENSE;

use super::catalog::{self, Dog, MissionDef, Program};
use rand::Rng;
use serde_json::{json, Value};

/// An event the robot sends: `{"type":"event","event":name,"data":data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: &'static str,
    pub data: Value,
}

fn event(name: &'static str, data: Value) -> Event {
    Event { name, data }
}

/// Why the robot will not do what it was asked: a code (`snake_case`), an
/// HTTP status for the REST API, and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

pub fn refuse(code: &'static str, status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        status,
        message: message.into(),
    }
}

/// `v[key]` as a string, or `bad_request` naming `{place}{key}` (a
/// command's `data.`, a REST body's ``).
pub fn string_field<'a>(v: &'a Value, key: &str, place: &str) -> Result<&'a str, Refusal> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| {
        refuse(
            "bad_request",
            400,
            format!("{place}{key} (a string) is required"),
        )
    })
}

/// Battery percent lost per tick while idle, and extra while training.
const DRAIN_IDLE: f64 = 0.1;
const DRAIN_MISSION: f64 = 0.25;
/// Percent gained per tick on the dock.
const CHARGE: f64 = 1.5;
/// Goes to the dock at or below this level; leaves it at or above `FULL`.
const LOW: f64 = 15.0;
const FULL: f64 = 98.0;
/// A mission needs at least this much battery.
const MISSION_MIN_BATTERY: f64 = 10.0;
/// A `status_update` every this many ticks.
const STATUS_EVERY: u64 = 10;
/// In training mode, ticks between the end of one mission and the next.
const TRAINING_PAUSE: std::ops::Range<u32> = 15..45;
/// Treats in a full hopper; "hopper low" is said below `TREATS_LOW`.
const HOPPER: u32 = 60;
const TREATS_LOW: u32 = 10;

/// Where a mission is within its current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Just started: waiting for the dog to come into view.
    Waiting,
    /// Dog found: the robot greets it.
    Greeting,
    /// The robot gives the stage's command.
    Command,
    /// Watching whether the dog does it.
    Watching,
    /// Done right: treat, then the next stage.
    Success,
    /// Not this time: the command again.
    Retry,
}

impl Step {
    fn status(self) -> &'static str {
        match self {
            Step::Waiting => "waiting",
            Step::Greeting => "greeting",
            Step::Command => "command",
            Step::Watching => "watching",
            Step::Success => "success",
            Step::Retry => "retry",
        }
    }
}

#[derive(Debug, Clone)]
struct ActiveMission {
    def: &'static MissionDef,
    stage: u32,
    step: Step,
    paused: bool,
    /// The mode to go back to when it ends.
    previous_mode: String,
}

#[derive(Debug, Clone)]
struct ActiveProgram {
    program: Program,
    /// The mission of `program.missions` running (or next).
    index: usize,
    paused: bool,
}

/// Today's numbers (reports).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub barks: u32,
    pub treats: u32,
    pub missions_started: u32,
    pub missions_completed: u32,
    pub successes: u32,
    pub retries: u32,
    pub detections: u32,
}

/// One robot.
#[derive(Debug, Clone)]
pub struct Wimz {
    pub device_id: String,
    pub dog: Dog,
    mode: String,
    battery: f64,
    charging: bool,
    treats: u32,
    hopper_low_said: bool,
    mission: Option<ActiveMission>,
    program: Option<ActiveProgram>,
    programs: Vec<Program>,
    ticks: u64,
    /// Training mode: ticks left before it starts a mission by itself.
    training_wait: u32,
    pub today: Counters,
}

impl Wimz {
    pub fn new(device_id: &str, rng: &mut impl Rng) -> Wimz {
        Wimz {
            device_id: device_id.to_string(),
            dog: catalog::DOGS[rng.gen_range(0..catalog::DOGS.len())],
            mode: catalog::TRAINING_MODE.to_string(),
            battery: rng.gen_range(55.0..95.0),
            charging: false,
            treats: rng.gen_range(30..HOPPER),
            hopper_low_said: false,
            mission: None,
            program: None,
            programs: catalog::builtin_programs(),
            ticks: 0,
            training_wait: rng.gen_range(2..6),
            today: Counters::default(),
        }
    }

    pub fn mode(&self) -> &str {
        &self.mode
    }

    pub fn locked(&self) -> bool {
        self.mission.is_some()
    }

    pub fn battery_level(&self) -> u32 {
        self.battery.round().clamp(0.0, 100.0) as u32
    }

    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// `status_update` data: what an app shows for the robot at a glance
    /// (the relay's snapshot takes `mode` and `battery` from it).
    pub fn status(&self) -> Value {
        json!({
            "mode": self.mode,
            "locked": self.locked(),
            "battery": self.battery_json(),
            "mission": self.mission.as_ref().map(|m| m.def.name),
            "program": self.program.as_ref().map(|p| p.program.name.clone()),
            "treats_remaining": self.treats,
            "dog": {"id": self.dog.id, "name": self.dog.name},
            "uptime_s": self.ticks,
        })
    }

    fn battery_json(&self) -> Value {
        json!({"level": self.battery_level(), "charging": self.charging})
    }

    /// `GET /missions/status`.
    pub fn mission_status(&self) -> Value {
        match &self.mission {
            None => json!({"active": false, "mission": null}),
            Some(m) => json!({
                "active": true,
                "mission": m.def.name,
                "title": m.def.title,
                "status": m.step.status(),
                "stage": m.stage,
                "total_stages": m.def.total_stages,
                "paused": m.paused,
                "dog": self.dog.name,
            }),
        }
    }

    /// `GET /programs/status`.
    pub fn program_status(&self) -> Value {
        match &self.program {
            None => json!({"active": false, "program": null}),
            Some(p) => json!({
                "active": true,
                "program": p.program.name,
                "missions": p.program.missions.iter().map(|m| m.name).collect::<Vec<_>>(),
                "mission_index": p.index,
                "paused": p.paused,
            }),
        }
    }

    fn progress(&self) -> Option<Event> {
        let m = self.mission.as_ref()?;
        let mut data = json!({
            "mission": m.def.name,
            "status": m.step.status(),
            "stage": m.stage,
            "total_stages": m.def.total_stages,
            "dog": self.dog.name,
        });
        if let Some(p) = &self.program {
            data["program"] = json!(p.program.name);
        }
        Some(event("mission_progress", data))
    }

    fn begin(&mut self, def: &'static MissionDef) -> Vec<Event> {
        let previous_mode = std::mem::replace(&mut self.mode, catalog::MISSION_MODE.to_string());
        self.today.missions_started += 1;
        let mut out = vec![event(
            "mode_changed",
            json!({"mode": self.mode, "previous": previous_mode, "locked": true}),
        )];
        self.mission = Some(ActiveMission {
            def,
            stage: 1,
            step: Step::Waiting,
            paused: false,
            previous_mode,
        });
        out.extend(self.progress());
        out
    }

    fn change_mode(&mut self, mode: &str) -> Vec<Event> {
        let previous = std::mem::replace(&mut self.mode, mode.to_string());
        vec![event(
            "mode_changed",
            json!({"mode": self.mode, "previous": previous, "locked": self.locked()}),
        )]
    }

    fn give_treats(&mut self, count: u32, reason: &str) -> Vec<Event> {
        let count = count.min(self.treats);
        self.treats -= count;
        self.today.treats += count;
        let mut out = vec![event(
            "treat_dispensed",
            json!({
                "count": count,
                "reason": reason,
                "mission": self.mission.as_ref().map(|m| m.def.name),
                "treats_remaining": self.treats,
            }),
        )];
        if self.treats < TREATS_LOW && !self.hopper_low_said {
            self.hopper_low_said = true;
            out.push(event(
                "alert",
                json!({
                    "level": "warning",
                    "code": "treat_hopper_low",
                    "message": format!("{} treats left in the hopper", self.treats),
                }),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.name).collect()
    }

    #[test]
    fn a_mission_goes_through_its_stages_to_completed() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut w = Wimz::new("sim-1", &mut rng);
        w.start_mission("quiet_training").unwrap();
        let mut progress = Vec::new();
        for _ in 0..200 {
            for e in w.tick(&mut rng) {
                if e.name == "mission_progress" {
                    progress.push(e.data);
                }
            }
            if w.mission.is_none() {
                break;
            }
        }
        let statuses: Vec<&str> = progress
            .iter()
            .map(|d| d["status"].as_str().unwrap())
            .collect();
        assert_eq!(&statuses[..2], ["greeting", "command"]);
        assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
        let stages: Vec<u64> = progress
            .iter()
            .map(|d| d["stage"].as_u64().unwrap())
            .collect();
        assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
        assert_eq!(stages.last(), Some(&3));
        assert_eq!(w.today.missions_completed, 1);
        assert_eq!(w.mode(), "training", "back to the mode before");
        assert!(!w.locked());
    }

    #[test]
    fn the_battery_drains_goes_to_the_dock_and_recharges() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let mut w = Wimz::new("sim-1", &mut rng);
        w.set_mode("idle").unwrap();
        let mut seen = Vec::new();
        let docked = |seen: &[Event]| seen.iter().position(|e| e.data["code"] == "battery_low");
        let charged = |seen: &[Event], from: usize| {
            seen[from..]
                .iter()
                .any(|e| e.name == "battery" && e.data["charging"] == false)
        };
        for _ in 0..2000 {
            seen.extend(w.tick(&mut rng));
            if docked(&seen).is_some_and(|low| charged(&seen, low)) {
                break;
            }
        }
        let low = docked(&seen).expect("went to the dock");
        assert_eq!(seen[low + 1].data["charging"], true, "{:?}", names(&seen));
        assert!(
            charged(&seen, low),
            "left the dock charged: {:?}",
            names(&seen)
        );
        assert!(w.battery_level() >= 98);
        assert!(seen.iter().any(|e| e.name == "status_update"));
        assert!(seen.iter().any(|e| e.name == "bark_detected"));
        assert!(seen.iter().any(|e| e.name == "dog_detected"));
    }

    #[test]
    fn training_mode_starts_missions_by_itself_and_idle_does_not() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let mut coach = Wimz::new("sim-1", &mut rng);
        let mut idle = coach.clone();
        idle.set_mode("idle").unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            a.extend(coach.tick(&mut rng));
            b.extend(idle.tick(&mut rng));
        }
        assert!(a.iter().any(|e| e.name == "mission_progress"));
        assert!(!b.iter().any(|e| e.name == "mission_progress"));
    }
}
