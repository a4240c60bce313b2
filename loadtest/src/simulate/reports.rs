//! The robot's reports (`GET /reports/weekly`, `/reports/dog/{id}`,
//! `/reports/trends`, `/reports/compare`): today from the robot's own
//! counters, earlier days made up, but the same on every call for the same
//! device and day (seeded by both), so a page that reloads shows the same
//! history.

use super::wimz::{refuse, Refusal, Wimz};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One day's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Day {
    barks: u32,
    treats: u32,
    missions_completed: u32,
    training_minutes: u32,
    success_rate: f64,
}

impl Day {
    fn json(&self, date: &str) -> Value {
        json!({
            "date": date,
            "barks": self.barks,
            "treats": self.treats,
            "missions_completed": self.missions_completed,
            "training_minutes": self.training_minutes,
            "success_rate": self.success_rate,
        })
    }
}

/// A past day (`days_ago` >= 1) of this device: made up, but stable.
fn past_day(device_id: &str, day_number: i64) -> Day {
    let seed =
        fnv1a(device_id.as_bytes()) ^ (day_number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Day {
        barks: rng.gen_range(3..40),
        treats: rng.gen_range(5..30),
        missions_completed: rng.gen_range(0..6),
        training_minutes: rng.gen_range(5..60),
        success_rate: round2(rng.gen_range(0.55..0.95)),
    }
}

fn today(w: &Wimz) -> Day {
    let tries = w.today.successes + w.today.retries;
    Day {
        barks: w.today.barks,
        treats: w.today.treats,
        missions_completed: w.today.missions_completed,
        training_minutes: w.today.missions_started * 2,
        success_rate: match tries {
            0 => 0.0,
            n => round2(f64::from(w.today.successes) / f64::from(n)),
        },
    }
}

/// Days `first..=last` ago (0 = today), oldest first.
fn days(w: &Wimz, now_day: i64, ago: std::ops::RangeInclusive<i64>) -> Vec<(String, Day)> {
    ago.rev()
        .map(|a| {
            let d = now_day - a;
            let day = if a == 0 {
                today(w)
            } else {
                past_day(&w.device_id, d)
            };
            (date(d), day)
        })
        .collect()
}

fn totals(days: &[(String, Day)]) -> Value {
    let sum = |f: fn(&Day) -> u32| days.iter().map(|(_, d)| f(d)).sum::<u32>();
    let rated: Vec<f64> = days
        .iter()
        .map(|(_, d)| d.success_rate)
        .filter(|r| *r > 0.0)
        .collect();
    json!({
        "barks": sum(|d| d.barks),
        "treats": sum(|d| d.treats),
        "missions_completed": sum(|d| d.missions_completed),
        "training_minutes": sum(|d| d.training_minutes),
        "success_rate": match rated.len() {
            0 => 0.0,
            n => round2(rated.iter().sum::<f64>() / n as f64),
        },
    })
}

/// `GET /reports/weekly`: the last seven days, today last.
pub fn weekly(w: &Wimz, now_day: i64) -> Value {
    let week = days(w, now_day, 0..=6);
    json!({
        "device_id": w.device_id,
        "from": week[0].0,
        "to": week[6].0,
        "days": week.iter().map(|(date, d)| d.json(date)).collect::<Vec<_>>(),
        "totals": totals(&week),
    })
}

/// `GET /reports/compare`: this week against the one before.
pub fn compare(w: &Wimz, now_day: i64) -> Value {
    let this = totals(&days(w, now_day, 0..=6));
    let last = totals(&days(w, now_day, 7..=13));
    json!({"this_week": this, "last_week": last})
}

/// `GET /reports/trends`: weekly success rate and barks, four weeks.
pub fn trends(w: &Wimz, now_day: i64) -> Value {
    let weeks: Vec<Value> = (0..4)
        .rev()
        .map(|k| {
            let t = totals(&days(w, now_day, 7 * k..=7 * k + 6));
            json!({"weeks_ago": k, "success_rate": t["success_rate"], "barks": t["barks"]})
        })
        .collect();
    json!({"device_id": w.device_id, "weeks": weeks})
}

/// `GET /reports/dog/{id}`: the robot's dog, or 404 for any other id.
pub fn dog(w: &Wimz, dog_id: &str, now_day: i64) -> Result<Value, Refusal> {
    if dog_id != w.dog.id {
        return Err(refuse(
            "unknown_dog",
            404,
            format!("no dog {dog_id:?} on this robot"),
        ));
    }
    let week = totals(&days(w, now_day, 0..=6));
    Ok(json!({
        "dog_id": w.dog.id,
        "name": w.dog.name,
        "breed": w.dog.breed,
        "age_years": w.dog.age_years,
        "this_week": week,
        "favourite_mission": "sit_training",
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), proleptic
/// Gregorian (H. Hinnant's `civil_from_days`).
pub fn date(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_stable_history() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_723), "2024-01-01");
        assert_eq!(date(19_782), "2024-02-29");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let w = Wimz::new("sim-7", &mut rng);
        let a = weekly(&w, 20_000);
        assert_eq!(a, weekly(&w, 20_000), "same numbers on every call");
        assert_eq!(a["days"].as_array().unwrap().len(), 7);
        assert_eq!(a["to"], date(20_000));
        assert!(dog(&w, "nobody", 20_000).is_err());
        assert_eq!(dog(&w, w.dog.id, 20_000).unwrap()["name"], w.dog.name);
        assert_eq!(trends(&w, 20_000)["weeks"].as_array().unwrap().len(), 4);
    }
}
