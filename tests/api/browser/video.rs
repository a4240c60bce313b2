//! Video (issue 13): the console's video panel in Chromium ↔ the aiortc
//! video robot, both relay-only through a stock coturn with relay-issued
//! (`hmac`) credentials, all signaling through the release relay. Frames
//! are decoded, the path is shown and reported to the relay as `relay`;
//! then coturn is stopped: with coturn back the ICE restart recovers, without
//! it the session closes with the reason shown.

use super::*;
use crate::coturn::Coturn;
use crate::helpers::*;
use crate::process::Relay;
use serde_json::json;

const PASSWORD: &str = "password-123"; // RelayClient::user's

/// The webrtc_sessions rows of the relay's SQLite store (written when a
/// session ends): `(connection_type, ice_restarts, close_reason)`.
async fn session_rows(dir: &std::path::Path) -> Vec<(Option<String>, i64, String)> {
    use sqlx::Row;
    let url = format!("sqlite://{}/relay.db", dir.display());
    let mut conn = store_connection(&url).await;
    sqlx::query("SELECT connection_type, ice_restarts, close_reason FROM webrtc_sessions")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Waits until the store holds `n` session rows (hang guard `PATIENCE`).
async fn wait_rows(dir: &std::path::Path, n: usize) -> Vec<(Option<String>, i64, String)> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let rows = session_rows(dir).await;
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

struct Setup {
    py: std::path::PathBuf,
    coturn: Coturn,
    dir: tempfile::TempDir,
    relay: Relay,
    robot: LineProc,
    token: String,
}

async fn setup() -> Option<Setup> {
    let py = browser_python()?;
    let coturn = Coturn::start(TURN_SECRET).await?;
    let dir = tempfile::tempdir().unwrap();
    let relay = release_relay(dir.path(), Some(&coturn), &[]).await;
    let alice = relay.client.user("alice").await;
    let secret = relay.client.device(&alice, "wimz-cam").await;
    let robot = video_robot(
        &py,
        &relay.client,
        "wimz-cam",
        &secret,
        &["--ice-policy", "relay"],
    )
    .await;
    Some(Setup {
        py,
        coturn,
        dir,
        relay,
        robot,
        token: alice.token,
    })
}

/// Chromium plays the robot's video over relay↔relay and says so, the
/// relay counts it; coturn stops (every allocation gone), Chromium's ICE
/// disconnects, coturn comes back, and the console's ICE restart (fresh
/// credentials from the relay, a new offer from the robot) brings the
/// picture back. The relay's history row says relay, ≥ 1 restart.
#[tokio::test]
async fn video_plays_relay_only_and_recovers_by_ice_restart_after_coturn_restarts() {
    let Some(mut s) = setup().await else { return };
    let base = s.relay.client.base.clone();
    let mut page = browser_script(
        &s.py,
        "video.py",
        &[&base, "alice", PASSWORD, "wimz-cam", "recover"],
    );

    let playing = page.step("playing").await;
    assert!(playing["framesDecoded"].as_u64().unwrap() > 0, "{playing}");
    assert!(playing["videoWidth"].as_u64().unwrap() > 0, "{playing}");
    assert_eq!(playing["connectionType"], "relay", "{playing}");
    assert!(
        playing["connectionText"]
            .as_str()
            .unwrap()
            .contains("relay ↔ relay"),
        "{playing}"
    );
    // The console reported the path to the relay (webrtc_stats).
    wait_metric(&s.relay.client, "wimz_webrtc_relay_sessions_total", |v| {
        v >= 1.0
    })
    .await;
    assert_eq!(s.robot.status("connected").await["restarts"], 0);

    s.coturn.stop();
    page.tell(json!({"do": "broken"})).await;
    let broken = page.step("disconnected").await;
    assert!(
        ["disconnected", "failed"].contains(&broken["ice"].as_str().unwrap()),
        "{broken}"
    );
    s.coturn.restart().await;
    page.tell(json!({"do": "continue"})).await;

    let back = page.step("recovered").await;
    assert!(back["restarts"].as_u64().unwrap() >= 1, "{back}");
    assert!(
        back["framesDecoded"].as_u64().unwrap() > 0 && back["videoWidth"].as_u64().unwrap() > 0,
        "{back}"
    );
    assert_eq!(back["connectionType"], "relay", "{back}");
    assert!(
        s.robot.status("connected").await["restarts"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let done = page.finish().await;
    assert_eq!(done["reason"], "closed_by_app", "{done}");
    let rows = wait_rows(s.dir.path(), 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (ctype, restarts, reason) = &rows[0];
    assert_eq!(ctype.as_deref(), Some("relay"));
    assert!(*restarts >= 1, "{rows:?}");
    assert_eq!(reason, "closed_by_app");
    drop(s.token);
}

/// coturn stops and stays down: the bounded ICE restarts fail and the
/// session closes with `ice_failed`, shown on the page; the relay ends the
/// session (the console told it) and its row has the restarts.
#[tokio::test]
async fn video_closes_with_a_reason_when_ice_restarts_cannot_recover() {
    let Some(mut s) = setup().await else { return };
    let base = s.relay.client.base.clone();
    let mut page = browser_script(
        &s.py,
        "video.py",
        &[&base, "alice", PASSWORD, "wimz-cam", "fail"],
    );
    let playing = page.step("playing").await;
    assert!(playing["framesDecoded"].as_u64().unwrap() > 0, "{playing}");

    s.coturn.stop();
    page.tell(json!({"do": "broken"})).await;
    page.step("disconnected").await;
    page.tell(json!({"do": "continue"})).await;
    let closed = page.step("closed").await;
    assert_eq!(closed["reason"], "ice_failed", "{closed}");
    assert!(
        closed["shown"].as_str().unwrap().contains("ice_failed"),
        "{closed}"
    );
    page.finish().await;

    let rows = wait_rows(s.dir.path(), 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.as_deref(), Some("relay"));
    assert!(rows[0].1 >= 1, "{rows:?}");
    wait_metric(&s.relay.client, "wimz_webrtc_sessions_active", |v| v == 0.0).await;
}
