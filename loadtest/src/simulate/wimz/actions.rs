//! What commands and REST calls ask a [`Wimz`] to do: start, stop, pause
//! missions and programs, change mode, give treats, keep programs. Each
//! answers the events it causes, or a [`Refusal`] when the robot will not.

use super::{refuse, ActiveProgram, Event, Refusal, Wimz, MISSION_MIN_BATTERY};
use crate::simulate::catalog::{self, Program};
use serde_json::json;

/// Most treats one `dispense_treat` may give.
pub const MAX_DISPENSE: u32 = 5;

impl Wimz {
    pub fn start_mission(&mut self, name: &str) -> Result<Vec<Event>, Refusal> {
        let def = catalog::mission(name)
            .ok_or_else(|| refuse("unknown_mission", 404, format!("no mission named {name:?}")))?;
        self.can_start()?;
        self.program = None;
        Ok(self.begin(def))
    }

    fn can_start(&self) -> Result<(), Refusal> {
        if let Some(m) = &self.mission {
            return Err(refuse(
                "mission_running",
                409,
                format!("{} is running; stop it first", m.def.name),
            ));
        }
        if self.battery < MISSION_MIN_BATTERY {
            return Err(refuse("battery_low", 409, "battery too low to train"));
        }
        Ok(())
    }

    pub fn stop_mission(&mut self) -> Result<Vec<Event>, Refusal> {
        if self.mission.is_none() {
            return Err(refuse("no_mission", 409, "no mission is running"));
        }
        Ok(self.finish_mission("stopped"))
    }

    /// Pauses (`true`) or resumes the running mission.
    pub fn pause_mission(&mut self, pause: bool) -> Result<Vec<Event>, Refusal> {
        let m = self
            .mission
            .as_mut()
            .ok_or_else(|| refuse("no_mission", 409, "no mission is running"))?;
        if m.paused == pause {
            let state = if pause { "paused" } else { "running" };
            return Err(refuse(
                "no_change",
                409,
                format!("the mission is already {state}"),
            ));
        }
        m.paused = pause;
        let mut out = self.progress().into_iter().collect::<Vec<_>>();
        if let Some(e) = out.first_mut() {
            e.data["status"] = json!(if pause { "paused" } else { "resumed" });
        }
        Ok(out)
    }

    pub fn set_mode(&mut self, mode: &str) -> Result<Vec<Event>, Refusal> {
        if !catalog::SETTABLE_MODES.contains(&mode) {
            return Err(refuse(
                "unknown_mode",
                400,
                format!("mode must be one of {:?}", catalog::SETTABLE_MODES),
            ));
        }
        if self.locked() {
            return Err(refuse(
                "mode_locked",
                409,
                "a mission is running; stop it first",
            ));
        }
        self.training_wait = 0;
        Ok(self.change_mode(mode))
    }

    pub fn dispense_treat(&mut self, count: u32) -> Result<Vec<Event>, Refusal> {
        if !(1..=MAX_DISPENSE).contains(&count) {
            return Err(refuse(
                "bad_count",
                400,
                format!("count must be 1 to {MAX_DISPENSE}"),
            ));
        }
        if self.treats == 0 {
            return Err(refuse("hopper_empty", 409, "the treat hopper is empty"));
        }
        Ok(self.give_treats(count, "manual"))
    }

    pub fn start_program(&mut self, name: &str) -> Result<Vec<Event>, Refusal> {
        let program = self
            .programs
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| refuse("unknown_program", 404, format!("no program named {name:?}")))?;
        self.can_start()?;
        let first = program.missions[0];
        self.program = Some(ActiveProgram {
            program,
            index: 0,
            paused: false,
        });
        Ok(self.begin(first))
    }

    pub fn stop_program(&mut self) -> Result<Vec<Event>, Refusal> {
        if self.program.is_none() {
            return Err(refuse("no_program", 409, "no program is running"));
        }
        let out = self.finish_mission("stopped");
        self.program = None;
        Ok(out)
    }

    pub fn pause_program(&mut self, pause: bool) -> Result<Vec<Event>, Refusal> {
        let p = self
            .program
            .as_mut()
            .ok_or_else(|| refuse("no_program", 409, "no program is running"))?;
        p.paused = pause;
        match self.mission.as_ref().map(|m| m.paused) {
            Some(paused) if paused != pause => self.pause_mission(pause),
            _ => Ok(Vec::new()),
        }
    }

    /// A user program of known missions (`POST /programs/create`).
    pub fn create_program(&mut self, name: &str, missions: &[String]) -> Result<(), Refusal> {
        let name_ok = !name.is_empty()
            && name.len() <= catalog::MAX_PROGRAM_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(refuse(
                "bad_name",
                400,
                format!("name: 1 to {} of [A-Za-z0-9_-]", catalog::MAX_PROGRAM_NAME),
            ));
        }
        if missions.is_empty() || missions.len() > catalog::MAX_PROGRAM_MISSIONS {
            return Err(refuse(
                "bad_missions",
                400,
                format!("missions: 1 to {}", catalog::MAX_PROGRAM_MISSIONS),
            ));
        }
        let defs = missions
            .iter()
            .map(|m| {
                catalog::mission(m).ok_or_else(|| {
                    refuse("unknown_mission", 400, format!("no mission named {m:?}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.programs.iter().any(|p| p.name == name) {
            return Err(refuse("program_exists", 409, format!("{name} exists")));
        }
        if self.programs.len() >= catalog::MAX_PROGRAMS {
            return Err(refuse("too_many_programs", 409, "delete a program first"));
        }
        self.programs.push(Program {
            name: name.to_string(),
            missions: defs,
            builtin: false,
        });
        Ok(())
    }

    pub fn delete_program(&mut self, name: &str) -> Result<(), Refusal> {
        let i = self
            .programs
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| refuse("unknown_program", 404, format!("no program named {name:?}")))?;
        if self.programs[i].builtin {
            return Err(refuse(
                "builtin_program",
                403,
                "built-in programs cannot be deleted",
            ));
        }
        if self
            .program
            .as_ref()
            .is_some_and(|p| p.program.name == name)
        {
            return Err(refuse("program_running", 409, "stop the program first"));
        }
        self.programs.remove(i);
        Ok(())
    }
}
