//! What a simulated WIM-Z knows how to do: its training missions, built-in
//! programs (sequences of missions), modes and the dogs it trains. Plain
//! data; [`super::wimz`] runs it.

/// One training mission: a named exercise run in `total_stages` stages,
/// each a command, a wait for the dog, and a reward or a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissionDef {
    pub name: &'static str,
    pub title: &'static str,
    pub total_stages: u32,
}

pub const MISSIONS: &[MissionDef] = &[
    MissionDef {
        name: "sit_training",
        title: "Sit",
        total_stages: 5,
    },
    MissionDef {
        name: "down_training",
        title: "Down",
        total_stages: 4,
    },
    MissionDef {
        name: "stay_training",
        title: "Stay",
        total_stages: 6,
    },
    MissionDef {
        name: "quiet_training",
        title: "Quiet (bark control)",
        total_stages: 3,
    },
    MissionDef {
        name: "recall_training",
        title: "Come when called",
        total_stages: 5,
    },
];

pub fn mission(name: &str) -> Option<&'static MissionDef> {
    MISSIONS.iter().find(|m| m.name == name)
}

/// A program: missions run one after the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub missions: Vec<&'static MissionDef>,
    /// Shipped with the robot (cannot be deleted).
    pub builtin: bool,
}

/// The programs every robot starts with.
pub fn builtin_programs() -> Vec<Program> {
    let p = |name: &str, missions: &[&str]| Program {
        name: name.to_string(),
        missions: missions.iter().filter_map(|m| mission(m)).collect(),
        builtin: true,
    };
    vec![
        p("morning_routine", &["sit_training", "down_training"]),
        p("calm_evening", &["quiet_training", "stay_training"]),
        p(
            "full_workout",
            &["sit_training", "stay_training", "recall_training"],
        ),
    ]
}

/// Longest user program name and most missions in one.
pub const MAX_PROGRAM_NAME: usize = 40;
pub const MAX_PROGRAM_MISSIONS: usize = 20;
/// Most programs one robot keeps (built-in ones included).
pub const MAX_PROGRAMS: usize = 32;

/// Modes an app may set (the console offers the first five). `mission` is
/// set by the robot itself while a mission runs (and is then locked).
pub const SETTABLE_MODES: &[&str] = &["idle", "training", "guard", "play", "sleep", "manual"];
pub const MISSION_MODE: &str = "mission";
/// In `training` mode the robot starts missions on its own now and then;
/// a robot starts in it.
pub const TRAINING_MODE: &str = "training";

/// A dog a robot trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dog {
    pub id: &'static str,
    pub name: &'static str,
    pub breed: &'static str,
    pub age_years: u32,
}

pub const DOGS: &[Dog] = &[
    Dog {
        id: "rex",
        name: "Rex",
        breed: "Border Collie",
        age_years: 3,
    },
    Dog {
        id: "luna",
        name: "Luna",
        breed: "Labrador",
        age_years: 2,
    },
    Dog {
        id: "max",
        name: "Max",
        breed: "Beagle",
        age_years: 5,
    },
    Dog {
        id: "bella",
        name: "Bella",
        breed: "Poodle",
        age_years: 4,
    },
];
