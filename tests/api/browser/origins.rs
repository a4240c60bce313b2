//! A real browser (issue 14, item 5): headless Debian Chromium, driven by
//! Playwright for Python (`tests/browser/`), loads a page from another
//! origin that calls login and `GET /api/devices` with `fetch` and opens
//! `/ws/app`: all three work when the page's origin is in
//! `server.allowed_origins`, none does when it is not.
//!
//! [`run_script`] runs a script of `tests/browser/` (its helper
//! `chromium.py` launches the browser with the flags that work here) and
//! returns the JSON line it prints last; `browser_python` (the harness's)
//! skips or fails as the module doc says. Screenshots land in the test
//! binary's `CARGO_TARGET_TMPDIR`.

use super::browser_python;
use crate::helpers::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Runs `tests/browser/<script>` with `args`; its last stdout line, as JSON.
/// The hang guard is generous (a cold Chromium on a loaded machine), not a
/// bound.
async fn run_script(py: &Path, script: &str, args: &[String]) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let child = tokio::process::Command::new(py)
        .arg(dir.join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    match (
        out.status.success(),
        last.map(serde_json::from_str::<Value>),
    ) {
        (true, Some(Ok(v))) => v,
        _ => panic!(
            "{script} failed ({}): {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Where a test's screenshot goes (kept after the run, to be looked at).
fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"))
}

/// One page load on `page_port` against a relay that lists that origin
/// (`allowed`) or not; the page's outcome.
async fn page_against_relay(py: &Path, allowed: bool) -> Value {
    let page_port = free_port();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let listed = page_origin.clone();
    let app = spawn_app_with(move |s| {
        if allowed {
            s.server.allowed_origins = vec![listed];
        }
    })
    .await;
    let user = app.user("browseruser").await;
    app.device(&user, "wimz-browser").await;
    let shot = screenshot_path(if allowed {
        "origins-allowed"
    } else {
        "origins-refused"
    });
    let args = [
        ("--relay", app.base.clone()),
        ("--page-port", page_port.to_string()),
        ("--username", user.name.clone()),
        ("--password", "password-123".to_string()),
        ("--token", user.token.clone()),
        ("--device", "wimz-browser".to_string()),
        ("--screenshot", shot.display().to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect::<Vec<_>>();
    let out = run_script(py, "origins.py", &args).await;
    eprintln!(
        "page {page_origin} (allowed: {allowed}): {out}; screenshot {}",
        shot.display()
    );
    assert_eq!(out["page_origin"], page_origin.as_str());
    assert!(shot.exists(), "screenshot taken");
    out
}

#[tokio::test]
async fn a_page_on_another_origin_reaches_the_relay_only_when_its_origin_is_allowed() {
    let Some(py) = browser_python() else {
        return;
    };
    let out = page_against_relay(&py, true).await;
    assert_eq!(out["login"]["status"], 200, "{out}");
    assert_eq!(out["login"]["token"], true, "{out}");
    assert_eq!(out["devices"]["status"], 200, "{out}");
    assert_eq!(out["devices"]["ids"], serde_json::json!(["wimz-browser"]));
    assert_eq!(out["ws"]["first"], "subscribed", "{out}");
    assert_eq!(out["ws"]["device"], "wimz-browser");

    let out = page_against_relay(&py, false).await;
    // The browser refuses a response without CORS headers (a 403 here):
    // the page sees a network error, never the answer.
    for call in ["login", "devices"] {
        let err = out[call]["error"].as_str().unwrap_or_default();
        assert!(err.contains("Failed to fetch"), "{call}: {out}");
    }
    assert_eq!(out["ws"]["opened"], false, "{out}");
    assert_eq!(out["ws"]["closed"], 1006, "{out}");
}
