//! What the cluster tests run besides in-process relays: a `redis-server`
//! (or `redis-sentinel`) of their own, a relay instance as a real process
//! (so it can be SIGKILLed), and a TCP proxy in front of Redis that can
//! silence pub/sub connections.

use crate::helpers::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` (or `redis-sentinel`) of the test's own.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Arguments after the port and directory (replica of, cluster mode...).
    extra: Vec<String>,
    /// Runs as a sentinel from this configuration file (in `dir`).
    sentinel: bool,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// A server with extra arguments (`--replicaof h p`, `--cluster-enabled yes`...).
    pub fn start_with(extra: &[&str]) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            sentinel: false,
        };
        r.restart();
        r
    }

    /// A sentinel watching the master on `master_port` as `name` (quorum
    /// 2, down after 1 s).
    pub fn start_sentinel(name: &str, master_port: u16) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: Vec::new(),
            sentinel: true,
        };
        let conf = format!(
            "port {}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 4000\n\
             sentinel parallel-syncs {name} 1\n",
            r.port,
            r.dir.path().display()
        );
        std::fs::write(r.dir.path().join("sentinel.conf"), conf).unwrap();
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The test's own connection to it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }

    /// Starts it (again, empty unless it is a replica or a cluster node) on the same port.
    pub fn restart(&mut self) {
        let mut cmd = if self.sentinel {
            let mut c = Command::new("redis-sentinel");
            c.arg(self.dir.path().join("sentinel.conf"));
            c
        } else {
            let mut c = Command::new("redis-server");
            c.args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra);
            c
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server and redis-sentinel are installed (.ci/services installs them)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Instance `A` as a real process, so it can be SIGKILLed.
pub struct ProcessNode {
    pub child: Child,
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts instance `name` as `wimz-relay serve` on a free port, on `redis`
/// and `store`; returns it and its `ws://` base once `/health` answers 200.
pub async fn process_node(
    name: &str,
    redis: &str,
    store: &str,
    dir: &std::path::Path,
) -> (ProcessNode, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_wimz-relay"))
        .arg("serve")
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("WIMZ__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("WIMZ__SERVER__INSTANCE_ID", name)
        .env("WIMZ__SERVER__DATA_DIR", dir.join("data"))
        .env("WIMZ__STORE__URL", store)
        .env("WIMZ__CLUSTER__REDIS_URL", redis)
        .env("WIMZ__CLUSTER__PRESENCE_TTL_S", "2")
        .env(
            "WIMZ__AUTH__JWT_SECRET",
            test_settings().auth.jwt_secret.expose(),
        )
        .env("WIMZ__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    while reqwest::get(format!("{base}/health"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "process node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (ProcessNode { child }, format!("ws://127.0.0.1:{port}"))
}

/// A TCP proxy in front of Redis that can freeze the pub/sub connections
/// open at that moment: they stay open but deliver nothing (a silently dead
/// pub/sub connection); connections made afterwards work. It can do the
/// same to the command connections made between [`FreezingProxy::mark`]
/// and [`FreezingProxy::freeze_commands_since_mark`]: in both directions
/// (a connection a middlebox dropped without a word), or only Redis's
/// answers ([`FreezingProxy::deafen_commands_since_mark`]: what the client
/// writes is done, the client never hears so).
pub struct FreezingProxy {
    pub port: u16,
    /// Connections numbered up to this are frozen.
    frozen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    made: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Command connections numbered in `(lo, hi]` are frozen; what they
    /// write is dropped too unless the third is 1 (answers only).
    commands: std::sync::Arc<[std::sync::atomic::AtomicU64; 3]>,
}

impl FreezingProxy {
    pub async fn start(upstream: u16) -> FreezingProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(AtomicU64::new(0));
        let made = std::sync::Arc::new(AtomicU64::new(0));
        let commands =
            std::sync::Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let (f, m, cmds) = (frozen.clone(), made.clone(), commands.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let me = m.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Only pub/sub connections (they sent SUBSCRIBE) can be frozen.
                let pubsub = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let p1 = pubsub.clone();
                // A frozen command connection hears nothing from Redis.
                let dead = {
                    let cmds = cmds.clone();
                    move |pubsub: bool| {
                        let (lo, hi) = (
                            cmds[0].load(Ordering::SeqCst),
                            cmds[1].load(Ordering::SeqCst),
                        );
                        !pubsub && me > lo && me <= hi
                    }
                };
                // And, unless only deafened, what it writes never reaches
                // Redis either.
                let dead_up = {
                    let (dead, cmds) = (dead.clone(), cmds.clone());
                    move |pubsub: bool| dead(pubsub) && cmds[2].load(Ordering::SeqCst) == 0
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if String::from_utf8_lossy(&buf[..n])
                            .to_ascii_uppercase()
                            .contains("SUBSCRIBE")
                        {
                            p1.store(true, Ordering::SeqCst);
                        }
                        if n > 0 && dead_up(p1.load(Ordering::SeqCst)) {
                            continue;
                        }
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if pubsub.load(Ordering::SeqCst) && me <= f.load(Ordering::SeqCst) {
                            continue; // swallowed: the client hears nothing
                        }
                        if dead(pubsub.load(Ordering::SeqCst)) {
                            continue;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FreezingProxy {
            port,
            frozen,
            made,
            commands,
        }
    }

    /// Remembers which connections exist now (see the next method).
    pub fn mark(&self) {
        use std::sync::atomic::Ordering;
        self.commands[0].store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Freezes the command (not pub/sub) connections made since
    /// [`mark`](Self::mark), both ways.
    pub fn freeze_commands_since_mark(&self) {
        use std::sync::atomic::Ordering;
        self.commands[1].store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The command connections made since [`mark`](Self::mark) go on
    /// reaching Redis, but its answers are swallowed.
    pub fn deafen_commands_since_mark(&self) {
        use std::sync::atomic::Ordering;
        self.commands[2].store(1, Ordering::SeqCst);
        self.commands[1].store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Freezes every pub/sub connection made so far.
    pub fn freeze_existing(&self) {
        use std::sync::atomic::Ordering;
        self.frozen
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}
