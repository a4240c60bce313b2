//! The console in Chromium against the release relay and a simulated WIM-Z
//! (`wimz-relay simulate`, the same binary): sign in, the robot goes online
//! in the list by itself, its live events arrive in order, a command's
//! result shows, the REST-proxy views render. `tests/browser/console.py`
//! takes the screenshots of each page.

use super::*;
use crate::helpers::*;
use std::path::Path;
use std::time::Duration;

const PASSWORD: &str = "password-123"; // RelayClient::user's

/// `wimz-relay simulate` with one robot `wimz-001` of alice's, a step every
/// 0.3 s; its secrets are kept in `dir` across runs. Killed on drop.
fn simulate(bin: &Path, base: &str, dir: &Path) -> tokio::process::Child {
    tokio::process::Command::new(bin)
        .args([
            "simulate", "--target", base, "--robots", "1", "--user", "alice",
        ])
        .args([
            "--password",
            PASSWORD,
            "--prefix",
            "wimz",
            "--tick",
            "0.3",
            "--seed",
            "13",
            "--quiet",
        ])
        .arg("--devices-file")
        .arg(dir.join("simulate-devices.json"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("simulate starts")
}

async fn wait_online(relay: &RelayClient, user: &User, online: bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list = relay.devices(user).await;
        if list.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["device_id"] == "wimz-001" && d["online"] == online)
        }) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "wimz-001 online={online} never: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn console_signs_in_sees_a_simulated_robot_live_and_commands_it() {
    let Some(py) = browser_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let relay = release_relay(dir.path(), None, &[]).await;
    let bin = tokio::task::spawn_blocking(release_binary).await.unwrap();
    let alice = relay.client.user("alice").await;
    // A first run registers the device; then it is offline.
    let mut first = simulate(&bin, &relay.client.base, dir.path());
    wait_online(&relay.client, &alice, true).await;
    first.kill().await.unwrap();
    wait_online(&relay.client, &alice, false).await;

    let base = relay.client.base.clone();
    let mut page = browser_script(&py, "console.py", &[&base, "alice", PASSWORD, "wimz-001"]);
    page.step("list_offline").await;
    let _robot = simulate(&bin, &relay.client.base, dir.path());

    let online = page.step("online").await;
    assert!(
        online["mission"].as_str().unwrap().contains('/'),
        "{online}"
    );
    let events = page.step("events").await;
    // Newest first, every seq once, no gap: the robot's order.
    let seqs: Vec<u64> = events["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(seqs.len() >= 12, "{events}");
    assert!(
        seqs.windows(2).all(|w| w[0] == w[1] + 1),
        "out of order or gaps: {seqs:?}"
    );
    assert!(
        events["total"]
            .as_str()
            .is_some_and(|t| t.parse::<u32>().unwrap() > 0),
        "{events}"
    );

    // The robot's own answers: stopping the running mission (or saying
    // there is none), then starting one and a treat, both ok.
    let stop = page.step("command").await;
    assert!(
        ["ok", "failed"].contains(&stop["state"].as_str().unwrap()),
        "{stop}"
    );
    for key in ["start-mission", "dispense-treat"] {
        let command = page.step("command").await;
        assert_eq!(command["key"], key);
        assert_eq!(command["state"], "ok", "{command}");
        assert!(
            command["text"].as_str().unwrap().starts_with('✓'),
            "{command}"
        );
    }
    for view in ["missions", "programs", "reports"] {
        let rest = page.step("rest").await;
        assert_eq!(rest["view"], view);
        assert_eq!(rest["state"], "ok", "{rest}");
        assert_eq!(rest["status"], "200", "{rest}");
        assert!(rest["text"].as_str().unwrap().len() > 10, "{rest}");
    }
    page.finish().await;
}
