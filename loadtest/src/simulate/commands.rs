//! Commands an app sends a simulated robot (PROTOCOL.md §3.4) and the
//! `command_result` it answers: `start_mission {mission}`, `stop_mission`,
//! `set_mode {mode}`, `dispense_treat {count?}`; anything else is answered
//! `ok:false` with `error:"unknown_command"`.

use super::wimz::{refuse, string_field, Event, Refusal, Wimz};
use serde_json::{json, Value};

/// What the robot does with one command.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// `command_result.ok`.
    pub ok: bool,
    /// `command_result.data`.
    pub data: Value,
    /// Events the command caused, sent after the result.
    pub events: Vec<Event>,
}

/// Runs `command` with its `data` on the robot.
pub fn run(wimz: &mut Wimz, command: &str, data: &Value) -> Outcome {
    let result = match command {
        "start_mission" => str_field(data, "mission").and_then(|m| {
            let events = wimz.start_mission(m)?;
            Ok((json!({"mission": m, "status": "started"}), events))
        }),
        "stop_mission" => wimz
            .stop_mission()
            .map(|events| (json!({"status": "stopped"}), events)),
        "set_mode" => str_field(data, "mode").and_then(|m| {
            let events = wimz.set_mode(m)?;
            Ok((json!({"mode": m}), events))
        }),
        "dispense_treat" => count(data).and_then(|n| {
            let events = wimz.dispense_treat(n)?;
            Ok((json!({"count": n}), events))
        }),
        other => Err(refuse(
            "unknown_command",
            400,
            format!("this robot does not know {other:?}"),
        )),
    };
    match result {
        Ok((data, events)) => Outcome {
            ok: true,
            data,
            events,
        },
        Err(r) => Outcome {
            ok: false,
            data: json!({"error": r.code, "message": r.message}),
            events: Vec::new(),
        },
    }
}

fn str_field<'a>(data: &'a Value, key: &str) -> Result<&'a str, Refusal> {
    string_field(data, key, "data.")
}

/// `data.count`, 1 when absent.
fn count(data: &Value) -> Result<u32, Refusal> {
    match data.get("count") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| refuse("bad_count", 400, "data.count must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn robot() -> Wimz {
        Wimz::new("sim-1", &mut rand::rngs::StdRng::seed_from_u64(7))
    }

    #[test]
    fn commands_answer_and_cause_events() {
        let mut w = robot();
        let o = run(&mut w, "start_mission", &json!({"mission": "sit_training"}));
        assert!(o.ok, "{o:?}");
        let names: Vec<_> = o.events.iter().map(|e| e.name).collect();
        assert_eq!(names, ["mode_changed", "mission_progress"]);
        assert_eq!(o.events[1].data["status"], "waiting");
        assert_eq!(o.events[1].data["total_stages"], 5);
        // Locked while the mission runs; a second mission is refused.
        let o = run(&mut w, "set_mode", &json!({"mode": "idle"}));
        assert_eq!(
            (o.ok, o.data["error"].as_str()),
            (false, Some("mode_locked"))
        );
        let o = run(
            &mut w,
            "start_mission",
            &json!({"mission": "stay_training"}),
        );
        assert_eq!(o.data["error"], "mission_running");
        let o = run(&mut w, "stop_mission", &json!({}));
        assert!(o.ok);
        assert_eq!(o.events[0].data["status"], "stopped");
        assert_eq!(o.events[1].name, "mode_changed");
        assert_eq!(w.mode(), "training");
        let o = run(&mut w, "set_mode", &json!({"mode": "guard"}));
        assert!(o.ok);
        assert_eq!(w.mode(), "guard");
        let o = run(&mut w, "dispense_treat", &json!({"count": 2}));
        assert!(o.ok);
        assert_eq!(o.events[0].name, "treat_dispensed");
        assert_eq!(o.events[0].data["count"], 2);
    }

    #[test]
    fn bad_and_unknown_commands_are_refused_with_a_reason() {
        let mut w = robot();
        for (cmd, data, code) in [
            ("self_destruct", json!({}), "unknown_command"),
            ("start_mission", json!({}), "bad_request"),
            (
                "start_mission",
                json!({"mission": "fetch_beer"}),
                "unknown_mission",
            ),
            ("stop_mission", json!({}), "no_mission"),
            ("set_mode", json!({"mode": "turbo"}), "unknown_mode"),
            ("set_mode", json!({"mode": 3}), "bad_request"),
            ("dispense_treat", json!({"count": 99}), "bad_count"),
            ("dispense_treat", json!({"count": -1}), "bad_count"),
        ] {
            let o = run(&mut w, cmd, &data);
            assert!(!o.ok, "{cmd} {data}");
            assert_eq!(o.data["error"], code, "{cmd} {data}");
            assert!(o.events.is_empty());
        }
    }
}
