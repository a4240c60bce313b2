//! A real nginx in front of relays, on free ports, with the configuration
//! `deploy/local-cluster.sh config DIR` writes (the same the script runs:
//! WebSocket upgrade, forwarded headers, sized for many sockets; its TLS
//! side is tested through the script itself, `deploy.rs`). Plain HTTP here.

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The repository's root (where `deploy/` is).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("deploy/local-cluster.sh").exists() {
        assert!(
            dir.pop(),
            "deploy/local-cluster.sh not found above the crate"
        );
    }
    dir
}

pub struct Nginx {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on free ports in front of the relays on `upstreams`.
    pub fn start(upstreams: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let ports: Vec<String> = upstreams.iter().map(u16::to_string).collect();
        let out = Command::new("bash")
            .arg(repo_root().join("deploy/local-cluster.sh"))
            .arg("config")
            .arg(dir.path())
            .env("HTTP_PORT", port.to_string())
            .env("HTTPS_PORT", tls_port.to_string())
            .env("RELAY_PORTS", ports.join(" "))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "local-cluster.sh config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("nginx")
            .arg("-e")
            .arg(dir.path().join("nginx-error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .output()
            .expect("nginx is installed (.ci/services installs it)");
        assert!(
            out.status.success(),
            "nginx: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { port, dir }
    }

    /// nginx's error log, summarised: how often each (time, message, upstream) occurred.
    pub fn error_log_summary(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("nginx-error.log")).unwrap_or_default();
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for line in log.lines() {
            let time = line.get(11..19).unwrap_or("");
            let msg = line.split(", client").next().unwrap_or(line);
            let msg = msg
                .split(": *")
                .nth(1)
                .map(|m| m.split_once(' ').map(|x| x.1).unwrap_or(m))
                .unwrap_or(msg);
            let up = line
                .split("upstream: \"")
                .nth(1)
                .and_then(|u| u.split('"').next())
                .unwrap_or("");
            *counts.entry(format!("{time} {msg} {up}")).or_default() += 1;
        }
        counts
            .iter()
            .map(|(k, n)| format!("{n:5} {k}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(pid) = self.master_pid() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
