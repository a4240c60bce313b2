//! `ANY /api/devices/{id}/robot/{path}` carried over the robot's socket.

use crate::helpers::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

/// A robot that answers every `http_request` by echoing it (status 200, or
/// the status named in the body's "status").
pub(crate) fn echo_robot(mut robot: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(m)) = robot.next().await {
            let Ok(t) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t) else {
                continue;
            };
            if v["type"] != "http_request" {
                continue;
            }
            let status = v["body"]["status"].as_u64().unwrap_or(200);
            send(&mut robot, json!({"type": "http_response", "request_id": v["request_id"], "status": status,
                "body": {"method": v["method"], "path": v["path"], "query": v["query"], "body": v["body"]}})).await;
        }
    })
}

async fn setup(app: &TestApp, name: &str, device: &str) -> (User, String) {
    let u = app.user(name).await;
    let secret = app.device(&u, device).await;
    (u, secret)
}

#[tokio::test]
async fn each_method_family_round_trips() {
    let app = spawn_app().await;
    let (u, secret) = setup(&app, "proxyuser", "wimz-px").await;
    let _robot = echo_robot(app.robot("wimz-px", &secret).await);
    let base = app.url("/api/devices/wimz-px/robot");
    let c = &app.http;
    let r = c
        .get(format!("{base}/missions/available"))
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"method": "GET", "path": "/missions/available", "query": {}, "body": null})
    );

    let r = c
        .post(format!("{base}/missions/start"))
        .bearer_auth(&u.token)
        .json(&json!({"mission": "sit_training", "dog_id": "rex"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/missions/start");
    assert_eq!(v["body"]["dog_id"], "rex");

    let r = c
        .get(format!("{base}/reports/dog/rex-1?week=3&format=full"))
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/reports/dog/rex-1");
    assert_eq!(v["query"], json!({"week": "3", "format": "full"}));

    let r = c
        .delete(format!("{base}/programs/evening"))
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["method"], "DELETE");

    let r = c
        .post(format!("{base}/mode"))
        .bearer_auth(&u.token)
        .json(&json!({"mode": "idle", "status": 409}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "the robot's status is the caller's status");
    assert_eq!(r.json::<Value>().await.unwrap()["body"]["mode"], "idle");

    // Not on the allow-list: 404, whatever the method.
    for (m, p) in [
        ("GET", "admin"),
        ("DELETE", "missions/start"),
        ("PUT", "mode"),
        ("GET", "reports/dog"),
    ] {
        let r = c
            .request(m.parse().unwrap(), format!("{base}/{p}"))
            .bearer_auth(&u.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{m} {p}");
    }
    // Bodies: not JSON is 400, too big is 413.
    let r = c
        .post(format!("{base}/mode"))
        .bearer_auth(&u.token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let big = json!({"pad": "x".repeat(app.settings.server.max_body_bytes + 10)});
    let r = c
        .post(format!("{base}/mode"))
        .bearer_auth(&u.token)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}

#[tokio::test]
async fn concurrent_requests_answered_out_of_order_reach_their_own_callers() {
    let app = spawn_app().await;
    let (u, secret) = setup(&app, "proxyconc", "wimz-pc").await;
    let mut robot = app.robot("wimz-pc", &secret).await;
    const N: usize = 16;
    let mut callers = Vec::new();
    for i in 0..N {
        let req = app
            .http
            .post(app.url("/api/devices/wimz-pc/robot/missions/start"))
            .bearer_auth(&u.token)
            .json(&json!({"caller": i}));
        callers.push(tokio::spawn(async move {
            req.send().await.unwrap().json::<Value>().await.unwrap()
        }));
    }
    let mut requests = Vec::new();
    while requests.len() < N {
        let v = recv_type(&mut robot, "http_request").await;
        requests.push(v);
    }
    let ids: std::collections::HashSet<_> = requests
        .iter()
        .map(|r| r["request_id"].to_string())
        .collect();
    assert_eq!(ids.len(), N, "request ids are unique");
    assert_eq!(app.stats().await["proxy_pending"], N as u64);
    for r in requests.iter().rev() {
        send(&mut robot, json!({"type": "http_response", "request_id": r["request_id"], "status": 200, "body": {"answer_for": r["body"]["caller"]}})).await;
    }
    for (i, c) in callers.into_iter().enumerate() {
        assert_eq!(c.await.unwrap()["answer_for"], i);
    }
    app.wait_stats("nothing pending", |s| s["proxy_pending"] == 0)
        .await;
}

#[tokio::test]
async fn offline_timeout_and_disconnect() {
    let app = spawn_app_with(|s| s.proxy.timeout_s = 0.5).await;
    let (u, secret) = setup(&app, "proxyfail", "wimz-pf").await;
    let url = app.url("/api/devices/wimz-pf/robot/mode");
    // Offline.
    let r = app
        .http
        .get(&url)
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // A robot that never answers: 504, and the pending entry is gone.
    let mut robot = app.robot("wimz-pf", &secret).await;
    let r = app
        .http
        .get(&url)
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    recv_type(&mut robot, "http_request").await;
    app.wait_stats("timed-out request forgotten", |s| s["proxy_pending"] == 0)
        .await;
    // A late answer to it goes nowhere and breaks nothing.
    // Disconnect mid-request: every waiting caller fails at once.
    let app_ref = &app;
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let req = app_ref.http.get(&url).bearer_auth(&u.token);
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for _ in 0..3 {
        recv_type(&mut robot, "http_request").await;
    }
    drop(robot);
    for w in waiting {
        assert_eq!(w.await.unwrap(), 503);
    }
    app.wait_stats("no pending entry survives", |s| s["proxy_pending"] == 0)
        .await;
}

#[tokio::test]
async fn strangers_and_traversal_are_refused_and_reach_nothing() {
    let app = spawn_app_with(|s| s.proxy.timeout_s = 1.0).await;
    let (owner, secret) = setup(&app, "proxyowner", "wimz-pt").await;
    let stranger = app.user("proxystranger").await;
    let mut robot = app.robot("wimz-pt", &secret).await;
    let r = app
        .get("/api/devices/wimz-pt/robot/mode", Some(&stranger.token))
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .get("/api/devices/wimz-nope/robot/mode", Some(&stranger.token))
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .get(app.url("/api/devices/wimz-pt/robot/mode"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Raw paths, so no client library normalises them first.
    for path in [
        "/api/devices/wimz-pt/robot/missions/../admin",
        "/api/devices/wimz-pt/robot/missions/%2e%2e/admin",
        "/api/devices/wimz-pt/robot/missions%2fstart",
        "/api/devices/wimz-pt/robot/missions%2Fstatus",
        "/api/devices/wimz-pt/robot//missions/status",
        "/api/devices/wimz-pt/robot/reports/dog/..%2f..%2fadmin",
        "/api/devices/wimz-pt/robot/reports/dog/%2e%2e",
        "/api/devices/wimz-pt/robot/mode/.",
        "/api/devices/wimz-pt/robot/./mode",
        "/api/devices/wimz-pt/robot/mode%00",
        "/api/devices/wimz-pt/robot/mode\\..\\admin",
    ] {
        let auth = format!("Bearer {}", owner.token);
        let (status, _) = raw_get(app.port, path, &[("Authorization", &auth)]).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    assert_silent(&mut robot, Duration::from_millis(300)).await;
    // The owner's plain call still works.
    let r = app
        .get("/api/devices/wimz-pt/robot/mode", Some(&owner.token))
        .await;
    assert_eq!(r.status(), 504, "reached the robot (which does not answer)");
    recv_type(&mut robot, "http_request").await;
}
