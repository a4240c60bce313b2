//! The robot's REST API as the relay proxies it (PROTOCOL.md §6): an
//! `http_request` becomes a status and a JSON body (and maybe events). The
//! endpoints are those of the relay's default `proxy.allowed_paths`, i.e.
//! the real WIM-Z's: `missions/*`, `programs/*`, `reports/*`, `mode`.
//! Refusals answer `{"error":code,"message":..}` with a fitting status;
//! an unknown endpoint `404`, a known one with another method `405`.

use super::catalog;
use super::reports;
use super::wimz::{refuse, string_field, Event, Refusal, Wimz};
use serde_json::{json, Value};

/// The robot's answer to one proxied call.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub events: Vec<Event>,
}

/// Answers `method path` with `body` (`null` when the call had none);
/// `now_day` is today as days since 1970 (reports).
pub fn answer(w: &mut Wimz, method: &str, path: &str, body: &Value, now_day: i64) -> Answer {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match route(w, method, &segments, body, now_day) {
        Ok((status, body, events)) => Answer {
            status,
            body,
            events,
        },
        Err(r) => Answer {
            status: r.status,
            body: json!({"error": r.code, "message": r.message}),
            events: Vec::new(),
        },
    }
}

type Routed = Result<(u16, Value, Vec<Event>), Refusal>;

fn ok(body: Value) -> Routed {
    Ok((200, body, Vec::new()))
}

/// A change that worked: `{"ok":true, ...}` and its events.
fn done(body: Value, events: Vec<Event>) -> Routed {
    let mut body = body;
    body["ok"] = json!(true);
    Ok((200, body, events))
}

fn route(w: &mut Wimz, method: &str, seg: &[&str], body: &Value, now_day: i64) -> Routed {
    match (method, seg) {
        ("GET", ["missions", "available"]) => ok(json!({"missions": catalog::MISSIONS
            .iter()
            .map(|m| json!({"name": m.name, "title": m.title, "total_stages": m.total_stages}))
            .collect::<Vec<_>>()})),
        ("GET", ["missions", "status"]) => ok(w.mission_status()),
        ("POST", ["missions", "start"]) => {
            let m = field(body, "mission")?;
            done(json!({"mission": m}), w.start_mission(m)?)
        }
        ("POST", ["missions", "stop"]) => done(json!({}), w.stop_mission()?),
        ("POST", ["missions", "pause"]) => done(json!({}), w.pause_mission(true)?),
        ("POST", ["missions", "resume"]) => done(json!({}), w.pause_mission(false)?),
        ("GET", ["programs", "available"]) => ok(json!({"programs": w
            .programs()
            .iter()
            .map(|p| json!({
                "name": p.name,
                "missions": p.missions.iter().map(|m| m.name).collect::<Vec<_>>(),
                "builtin": p.builtin,
            }))
            .collect::<Vec<_>>()})),
        ("GET", ["programs", "status"]) => ok(w.program_status()),
        ("POST", ["programs", "start"]) => {
            let p = field(body, "program")?;
            done(json!({"program": p}), w.start_program(p)?)
        }
        ("POST", ["programs", "stop"]) => done(json!({}), w.stop_program()?),
        ("POST", ["programs", "pause"]) => done(json!({}), w.pause_program(true)?),
        ("POST", ["programs", "resume"]) => done(json!({}), w.pause_program(false)?),
        ("POST", ["programs", "create"]) => {
            let name = field(body, "name")?;
            let missions: Vec<String> = body
                .get("missions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(String::from))
                        .collect()
                })
                .ok_or_else(|| {
                    refuse("bad_request", 400, "missions (a list of names) is required")
                })?;
            w.create_program(name, &missions)?;
            Ok((201, json!({"ok": true, "program": name}), Vec::new()))
        }
        ("DELETE", ["programs", name]) => {
            w.delete_program(name)?;
            done(json!({"deleted": name}), Vec::new())
        }
        ("GET", ["reports", "weekly"]) => ok(reports::weekly(w, now_day)),
        ("GET", ["reports", "trends"]) => ok(reports::trends(w, now_day)),
        ("GET", ["reports", "compare"]) => ok(reports::compare(w, now_day)),
        ("GET", ["reports", "dog", id]) => ok(reports::dog(w, id, now_day)?),
        ("GET", ["mode"]) => ok(json!({
            "mode": w.mode(),
            "locked": w.locked(),
            "available": catalog::SETTABLE_MODES,
        })),
        ("POST", ["mode"]) => {
            let m = field(body, "mode")?;
            done(json!({"mode": m}), w.set_mode(m)?)
        }
        (_, path) if known(path) => Err(refuse("method_not_allowed", 405, "not with this method")),
        _ => Err(refuse("not_found", 404, "no such endpoint on this robot")),
    }
}

/// A path some method answers (for 405 rather than 404).
fn known(seg: &[&str]) -> bool {
    matches!(
        seg,
        [
            "missions",
            "available" | "status" | "start" | "stop" | "pause" | "resume"
        ] | ["programs", _]
            | ["reports", "weekly" | "trends" | "compare"]
            | ["reports", "dog", _]
            | ["mode"]
    )
}

fn field<'a>(body: &'a Value, key: &str) -> Result<&'a str, Refusal> {
    string_field(body, key, "body.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_default_endpoint_answers_plausible_json() {
        let mut w = Wimz::new("sim-1", &mut rand::rngs::StdRng::seed_from_u64(3));
        let none = Value::Null;
        let mut call = |m: &str, p: &str, b: Value| answer(&mut w, m, p, &b, 20_000);
        let a = call("GET", "/missions/available", none.clone());
        assert_eq!(a.status, 200);
        assert!(a.body["missions"].as_array().unwrap().len() >= 3);
        let a = call(
            "POST",
            "/missions/start",
            json!({"mission": "down_training"}),
        );
        assert_eq!((a.status, &a.body["ok"]), (200, &json!(true)));
        assert_eq!(a.events[1].name, "mission_progress");
        let a = call("GET", "/missions/status", none.clone());
        assert_eq!(a.body["mission"], "down_training");
        assert_eq!(call("POST", "/missions/pause", none.clone()).status, 200);
        assert_eq!(
            call("GET", "/missions/status", none.clone()).body["paused"],
            true
        );
        assert_eq!(call("POST", "/missions/resume", none.clone()).status, 200);
        assert_eq!(call("POST", "/mode", json!({"mode": "idle"})).status, 409);
        assert_eq!(call("POST", "/missions/stop", none.clone()).status, 200);
        assert_eq!(call("POST", "/missions/stop", none.clone()).status, 409);
        let a = call("GET", "/programs/available", none.clone());
        let first = a.body["programs"][0]["name"].as_str().unwrap().to_string();
        assert_eq!(
            call("POST", "/programs/start", json!({"program": first})).status,
            200
        );
        assert_eq!(
            call("GET", "/programs/status", none.clone()).body["active"],
            true
        );
        assert_eq!(call("POST", "/programs/stop", none.clone()).status, 200);
        let mine = json!({"name": "evening", "missions": ["sit_training"]});
        assert_eq!(call("POST", "/programs/create", mine.clone()).status, 201);
        assert_eq!(call("POST", "/programs/create", mine).status, 409);
        assert_eq!(
            call("DELETE", "/programs/evening", none.clone()).status,
            200
        );
        assert_eq!(
            call("DELETE", "/programs/evening", none.clone()).status,
            404
        );
        assert_eq!(
            call("DELETE", &format!("/programs/{first}"), none.clone()).status,
            403
        );
        for p in ["/reports/weekly", "/reports/trends", "/reports/compare"] {
            let a = call("GET", p, none.clone());
            assert_eq!(a.status, 200, "{p}");
            assert!(a.body.is_object(), "{p}");
        }
        assert_eq!(call("GET", "/reports/dog/nobody", none.clone()).status, 404);
        let a = call("GET", "/mode", none.clone());
        assert_eq!(a.body["mode"], "training");
        let a = call("POST", "/mode", json!({"mode": "guard"}));
        assert_eq!((a.status, a.events[0].name), (200, "mode_changed"));
        assert_eq!(call("GET", "/missions/start", none.clone()).status, 405);
        assert_eq!(call("GET", "/secrets", none.clone()).status, 404);
        assert_eq!(call("POST", "/missions/start", json!("nope")).status, 400);
    }
}
