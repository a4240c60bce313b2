//! Bad input stays safe in the browser (issue 13): a robot puts markup into
//! everything it controls and the console shows it as text. The payload
//! would, if parsed as HTML anywhere, create an element and set
//! `window.__pwned`; `tests/browser/hostile.py` checks the DOM for any such
//! element or `on*` attribute and the flag after each view, and that the
//! strings are shown verbatim.

use super::*;
use crate::helpers::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const PASSWORD: &str = "password-123"; // RelayClient::user's
/// No double quotes: the console shows event data as JSON text, which would
/// escape them and hide a verbatim match.
const PAYLOAD: &str = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script><svg onload=window.__pwned=3><b>bold</b>";

/// The device's name (names are at most 100 characters).
const NAME: &str = "<img src=x onerror=window.__pwned=4>Rex<script>window.__pwned=5</script>";

/// Answers the console's command and REST call with the payload inside.
async fn hostile_robot(mut ws: Ws) {
    while let Some(Ok(msg)) = ws.next().await {
        let Ok(text) = msg.into_text() else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let answer = match v["type"].as_str() {
            Some("command") => json!({
                "type": "command_result", "reply_to": v["reply_to"], "id": v["id"], "ok": true,
                "data": {"message": PAYLOAD, "dispensed": PAYLOAD},
            }),
            Some("http_request") => json!({
                "type": "http_response", "request_id": v["request_id"], "status": 200,
                "body": [{"name": PAYLOAD, "id": PAYLOAD, PAYLOAD: PAYLOAD}],
            }),
            _ => continue,
        };
        send(&mut ws, answer).await;
    }
}

#[tokio::test]
async fn robot_data_with_markup_is_shown_as_text_and_never_runs() {
    let Some(py) = browser_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let relay = release_relay(dir.path(), None, &[]).await;
    let alice = relay.client.user("alice").await;
    let r = relay
        .client
        .post_json(
            "/api/devices",
            &json!({"device_id": "wimz-x", "name": NAME}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status(), 201);
    let secret = r.json::<Value>().await.unwrap()["device_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut robot = relay.client.robot("wimz-x", &secret).await;

    let base = relay.client.base.clone();
    let mut page = browser_script(
        &py,
        "hostile.py",
        &[&base, "alice", PASSWORD, "wimz-x", PAYLOAD, NAME],
    );
    page.step("robot_page").await;
    for (event, data) in [
        (
            "status_update",
            json!({"note": PAYLOAD, "nested": {"html": PAYLOAD, "list": [PAYLOAD]}}),
        ),
        (PAYLOAD, json!({"x": 1})),
        ("alert", json!({"level": PAYLOAD, "message": PAYLOAD})),
        (
            "mission_progress",
            json!({"mission": PAYLOAD, "status": PAYLOAD, "stage": 2, "total_stages": 5}),
        ),
        ("done", json!({})),
    ] {
        send(
            &mut robot,
            json!({"type": "event", "event": event, "data": data}),
        )
        .await;
    }
    let answering = tokio::spawn(hostile_robot(robot));
    page.tell(json!({"do": "sent"})).await;

    let events = page.step("events").await;
    let command = page.step("command").await;
    assert_eq!(command["state"], "ok", "{command}");
    let rest = page.step("rest").await;
    assert_eq!(rest["state"], "ok", "{rest}");
    let done = page.finish().await;
    // Every place showed the payload verbatim, as text.
    let checks = &done["checks"];
    for key in [
        "list_name",
        "title",
        "event_data",
        "event_names",
        "alerts",
        "mission",
        "command_result",
        "rest",
    ] {
        assert!(
            checks[key].as_u64().unwrap_or(0) >= 1,
            "{key} not shown as text: {checks} {events}"
        );
    }
    answering.abort();
}
