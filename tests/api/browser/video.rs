//! Video: Chromium ↔ the aiortc video robot, relay-only through a stock
//! coturn with relay-issued credentials.

use super::*;
use crate::coturn::Coturn;

#[tokio::test]
async fn harness_smoke_records_stats() {
    let Some(py) = browser_python() else { return };
    let Some(coturn) = Coturn::start(TURN_SECRET).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let relay = release_relay(dir.path(), Some(&coturn), &[]).await;
    let alice = relay.client.user("alice").await;
    let secret = relay.client.device(&alice, "wimz-cam").await;
    let _robot = video_robot(
        &py,
        &relay.client,
        "wimz-cam",
        &secret,
        &["--ice-policy", "relay"],
    )
    .await;
    let out = dir.path().join("stats.json");
    let script = browser_script(
        &py,
        "record_stats.py",
        &[
            &relay.client.base,
            &alice.token,
            "wimz-cam",
            "relay",
            out.to_str().unwrap(),
        ],
    );
    let v = script.finish().await;
    eprintln!("{v}");
}
