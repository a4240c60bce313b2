//! A real coturn (`turnserver`, Debian package `coturn`) on a free loopback
//! port with `use-auth-secret`, for the tests that need TURN: `peers.rs`
//! (aiortc peers) and `browser/` (Chromium). It can be stopped and started
//! again on the same port, to break a media path and let it come back.

use crate::helpers::PATIENCE;
use crate::peers::missing;
use crate::turn::free_udp_tcp_port;
use std::process::Stdio;
use std::time::Duration;

/// A coturn on a free loopback port, killed on drop.
pub(crate) struct Coturn {
    child: Option<std::process::Child>,
    pub(crate) port: u16,
    secret: String,
    dir: tempfile::TempDir,
    /// How many times it was started; each start logs to its own file.
    starts: u32,
}

impl Coturn {
    /// `None` when `turnserver` is not installed (and peers are not required).
    pub(crate) async fn start(secret: &str) -> Option<Coturn> {
        if std::process::Command::new("turnserver")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            missing("turnserver (coturn)");
            return None;
        }
        let mut coturn = Coturn {
            child: None,
            port: free_udp_tcp_port(),
            secret: secret.to_string(),
            dir: tempfile::tempdir().unwrap(),
            starts: 0,
        };
        coturn.run().await;
        Some(coturn)
    }

    /// Starts `turnserver` on `self.port` and waits until it serves.
    async fn run(&mut self) {
        self.starts += 1;
        let log = self.dir.path().join(format!("turn-{}.log", self.starts));
        let child = std::process::Command::new("turnserver")
            .arg("-n") // no config file: everything is on this command line
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &self.port.to_string()])
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={}", self.secret))
            .args(["--realm", "wimz.test"])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--simple-log", "--log-file"])
            .arg(&log)
            .arg("--pidfile")
            .arg(self.dir.path().join("turn.pid"))
            .arg("--userdb")
            .arg(self.dir.path().join("turndb"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        self.child = Some(child);
        // Ready once its relay threads are up (it logs this after binding).
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Total General servers") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "coturn did not start: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Kills it: every allocation (and so every relayed media path) is gone.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same secret.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    pub(crate) fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.stop();
    }
}
