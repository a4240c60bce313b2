//! What every browser test needs: the release relay binary, the Python
//! (with Playwright) that runs `tests/browser/*.py`, a child process spoken
//! to in JSON lines (a browser script or the video robot), and where
//! screenshots go.

use crate::coturn::Coturn;
use crate::helpers::*;
use crate::peers::{missing, venv_python};
use crate::process::{start_relay_of, Relay};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Hang guard for one step of a browser script or robot (Chromium start,
/// an ICE failure and restart on a loaded machine). Not a bound on speed.
pub(crate) const STEP_PATIENCE: Duration = Duration::from_secs(120);

pub(crate) const TURN_SECRET: &str = "browser-tests-coturn-secret";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The release `wimz-relay`, built now if it is missing or stale (a no-op
/// after `.ci/test`, which builds it first; from a clean checkout the first
/// browser test builds it, once, the others wait on cargo's lock).
pub(crate) fn release_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    // The variables cargo sets for this test process are not the build's:
    // some build scripts watch them (ring's reruns on CARGO_MANIFEST_DIR),
    // so inheriting them would make every release build here a rebuild.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
            || name.starts_with("NEXTEST")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref())
        {
            cmd.env_remove(name.as_ref());
        }
    }
    let out = cmd
        .current_dir(repo())
        .args([
            "build",
            "--release",
            "-p",
            "wimz-relay",
            "--bin",
            "wimz-relay",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build --release failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "wimz-relay")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the release binary")
}

/// The venv's python if it can drive Chromium (Playwright importable,
/// `/usr/bin/chromium` present); otherwise skip or fail (`missing`).
pub(crate) fn browser_python() -> Option<PathBuf> {
    let py = venv_python()?;
    let ok = std::process::Command::new(&py)
        .args(["-c", "import playwright.sync_api, numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing("Playwright and numpy in tests/.venv");
        return None;
    }
    if !Path::new("/usr/bin/chromium").exists() {
        missing("/usr/bin/chromium (Debian package chromium)");
        return None;
    }
    Some(py)
}

/// Where the scripts write `console-*.png`.
pub(crate) fn screenshot_dir() -> PathBuf {
    if std::env::var("WIMZ_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        repo().join("docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    }
}

/// The release relay on a free port, its store in `dir`, TURN credentials
/// from the `hmac` provider pointing at `coturn` (when given).
pub(crate) async fn release_relay(
    dir: &Path,
    coturn: Option<&Coturn>,
    extra: &[(&str, &str)],
) -> Relay {
    let bin = tokio::task::spawn_blocking(release_binary).await.unwrap();
    let mut env: Vec<(String, String)> = vec![("WIMZ__TURN__STUN_URLS".into(), "[]".into())];
    if let Some(c) = coturn {
        env.push(("WIMZ__TURN__PROVIDER".into(), "hmac".into()));
        env.push(("WIMZ__TURN__SECRET".into(), TURN_SECRET.into()));
        env.push(("WIMZ__TURN__URLS".into(), format!("[\"{}\"]", c.url())));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    start_relay_of(&bin, dir, "info", &env).await
}

/// A child process that prints JSON lines and reads JSON lines: a browser
/// script (`{"step": ..}` lines, then `{"ok": ..}`) or the video robot
/// (`{"status": ..}` lines). Killed on drop; its stderr is kept in a file
/// and shown when it fails.
pub(crate) struct LineProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
    /// Every JSON line read so far.
    pub(crate) seen: Vec<Value>,
}

impl LineProc {
    pub(crate) fn spawn(
        name: &str,
        py: &Path,
        script: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> LineProc {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut child = tokio::process::Command::new(py)
            .arg(script)
            .args(args)
            .current_dir(script.parent().unwrap())
            .envs(env.iter().copied())
            .env("WIMZ_SCREENSHOT_DIR", screenshot_dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        LineProc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            stderr,
            _dir: dir,
            seen: Vec::new(),
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Reads lines until one satisfies `pred`; panics (with its stderr) on a
    /// `{"ok": false}` line, on exit, or after `STEP_PATIENCE`.
    pub(crate) async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + STEP_PATIENCE;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(l))) => l,
                Ok(_) => panic!(
                    "{} ended before {what}; seen {:?}\nstderr:\n{}",
                    self.name,
                    self.seen,
                    self.stderr_text()
                ),
                Err(_) => panic!(
                    "{} did not reach {what}; seen {:?}\nstderr:\n{}",
                    self.name,
                    self.seen,
                    self.stderr_text()
                ),
            };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            self.seen.push(v.clone());
            if v["ok"] == false {
                panic!(
                    "{} failed before {what}: {v}\nstderr:\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
            if pred(&v) {
                return v;
            }
        }
    }

    /// The next `{"step": step}` of a browser script.
    pub(crate) async fn step(&mut self, step: &str) -> Value {
        self.until(&format!("step {step}"), |v| v["step"] == step)
            .await
    }

    /// The next `{"status": status}` of the video robot.
    pub(crate) async fn status(&mut self, status: &str) -> Value {
        self.until(&format!("status {status}"), |v| v["status"] == status)
            .await
    }

    /// Writes one JSON line to its stdin.
    pub(crate) async fn tell(&mut self, v: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// A browser script's final `{"ok": true, ...}` line, and its exit.
    pub(crate) async fn finish(mut self) -> Value {
        let v = self.until("its result", |v| v["ok"] == true).await;
        drop(self.stdin.take());
        let status = tokio::time::timeout(STEP_PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .unwrap();
        assert!(
            status.success(),
            "{} exit {status}\nstderr:\n{}",
            self.name,
            self.stderr_text()
        );
        v
    }
}

/// Starts `tests/browser/<script>`.
pub(crate) fn browser_script(py: &Path, script: &str, args: &[&str]) -> LineProc {
    LineProc::spawn(
        script,
        py,
        &repo().join("tests/browser").join(script),
        args,
        &[],
    )
}

/// Starts the video robot (`clients/python-robot/video_robot.py --control`)
/// for `device`, relay-only, and waits until its socket is up.
pub(crate) async fn video_robot(
    py: &Path,
    relay: &RelayClient,
    device: &str,
    secret: &str,
    extra: &[&str],
) -> LineProc {
    let script = repo().join("clients/python-robot/video_robot.py");
    let mut args = vec![
        "--relay",
        &relay.base,
        "--device-id",
        device,
        "--control",
        "--once",
    ];
    args.extend_from_slice(extra);
    let mut robot = LineProc::spawn(
        "video robot",
        py,
        &script,
        &args,
        &[("WIMZ_DEVICE_SECRET", secret)],
    );
    robot.status("ready").await;
    robot
}

/// The value of `name` in a Prometheus text page (first sample).
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name || k.starts_with(&format!("{name}{{"))).then(|| v.trim().parse().ok())?
    })
}

/// Reads `/metrics` until `pred` holds for `name` (hang guard `PATIENCE`).
pub(crate) async fn wait_metric(
    relay: &RelayClient,
    name: &str,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = relay
            .http
            .get(format!("{}/metrics", relay.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if let Some(v) = metric(&text, name).filter(|v| pred(*v)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never matched: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
