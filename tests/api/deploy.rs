//! `deploy/local-cluster.sh` for real: it starts Redis, three relays on a
//! shared PostgreSQL and nginx with TLS (a CA and certificate it makes),
//! clients connect over `https://` and `wss://` trusting that CA, and on
//! SIGTERM it stops everything it started.

use crate::helpers::*;
use crate::nginx::repo_root;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long the script may take to bring three relays up (a hang guard).
const START_GUARD: Duration = Duration::from_secs(90);

/// A TLS client configuration trusting only the PEM certificates in `ca`.
fn tls_trusting(ca: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn wss(url: &str, headers: &[(&'static str, String)], tls: &Arc<rustls::ClientConfig>) -> Ws {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let connector = tokio_tungstenite::Connector::Rustls(tls.clone());
    tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector))
        .await
        .expect("wss:// through nginx with the script's CA")
        .0
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// The running script; a test that fails midway still stops it (and so
/// everything it started).
struct Script(std::process::Child);

impl Script {
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
    }

    /// Waits for it to exit, `guard` at most.
    fn wait_within(&mut self, guard: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < guard {
            if let Some(st) = self.0.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.terminate();
            if self.wait_within(PATIENCE * 3).is_none() {
                let _ = self.0.kill();
            }
        }
    }
}

#[tokio::test]
async fn local_cluster_script_serves_https_and_wss_and_stops_everything() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("wimz_script_{}", uuid::Uuid::new_v4().simple());
    let (http, https, redis) = (free_port(), free_port(), free_port());
    let relays = [free_port(), free_port(), free_port()];
    let relay_ports: Vec<String> = relays.iter().map(u16::to_string).collect();
    let mut script = Script(
        Command::new("bash")
            .arg(repo_root().join("deploy/local-cluster.sh"))
            .env("WIMZ_BIN", env!("CARGO_BIN_EXE_wimz-relay"))
            .env("WIMZ_CLUSTER_DIR", dir.path())
            .env("WIMZ_PG_ADMIN", &admin)
            .env("WIMZ_PG_DB", &db)
            .env("HTTP_PORT", http.to_string())
            .env("HTTPS_PORT", https.to_string())
            .env("REDIS_PORT", redis.to_string())
            .env("RELAY_PORTS", relay_ports.join(" "))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bash runs the script"),
    );
    let stdout = script.0.stdout.take().unwrap();
    let up = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("cluster up") {
                return true;
            }
        }
        false
    });
    let up = tokio::time::timeout(START_GUARD, up).await;
    assert!(
        matches!(up, Ok(Ok(true))),
        "the script never said the cluster is up"
    );

    let ca = std::fs::read(dir.path().join("tls/ca.crt")).expect("the script's CA");
    let http_client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let front = RelayClient {
        port: https,
        base: format!("https://localhost:{https}"),
        ws_base: format!("wss://localhost:{https}"),
        http: http_client,
    };
    let health: Value = front.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["cluster"], "ok", "{health}");
    // Plain HTTP on its own port, too.
    let plain = reqwest::get(format!("http://127.0.0.1:{http}/health"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    // A client that does not trust the script's CA is refused.
    assert!(reqwest::get(format!("https://localhost:{https}/health"))
        .await
        .is_err());

    // nginx passes what the relays need to know their own origin (the
    // browser's Host, and https from a trusted proxy): a page served from
    // https://localhost:PORT may call them, another origin may not.
    let own = format!("https://localhost:{https}");
    for (origin, want) in [(own.as_str(), 200), ("https://elsewhere.example", 403)] {
        let r = front
            .http
            .get(format!("{}/health", front.base))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "Origin {origin}");
    }

    // Users and devices over HTTPS; a robot and an app over wss://.
    let user = front.user("tlsuser").await;
    let secret = front.device(&user, "wimz-tls").await;
    let tls = tls_trusting(&ca);
    let ts = wimz_relay::ids::unix_now();
    let mut robot = wss(
        &format!("{}/ws/device", front.ws_base),
        &[
            ("x-device-id", "wimz-tls".into()),
            ("x-timestamp", ts.to_string()),
            ("x-signature", sign(&secret, "wimz-tls", ts)),
        ],
        &tls,
    )
    .await;
    send(&mut robot, json!({"type": "ping"})).await;
    recv_type(&mut robot, "pong").await;
    let mut app = wss(
        &format!("{}/ws/app", front.ws_base),
        &[
            ("authorization", format!("Bearer {}", user.token)),
            ("origin", own.clone()),
        ],
        &tls,
    )
    .await;
    send(
        &mut app,
        json!({"type": "subscribe", "device_id": "wimz-tls"}),
    )
    .await;
    let sub = recv_type(&mut app, "subscribed").await;
    assert_eq!(sub["robot_online"], true, "{sub}");
    send(
        &mut robot,
        json!({"type": "event", "event": "bark_detected", "data": {"loud": true}}),
    )
    .await;
    let ev = recv_event(&mut app, "bark_detected").await;
    assert_eq!(ev["data"]["loud"], true);
    drop((robot, app));

    // SIGTERM: the script stops every process it started, then exits.
    script.terminate();
    // Hang guard: the relays' shutdown budget (5 s) and slack.
    let status = tokio::task::spawn_blocking(move || script.wait_within(PATIENCE * 3))
        .await
        .unwrap()
        .expect("the script exits after SIGTERM");
    assert!(!status.success(), "stopped by a signal: {status}");
    for port in [http, https, redis].iter().chain(&relays) {
        assert!(
            refused(*port),
            "port {port} still served after the script exited"
        );
    }

    use sqlx::Connection;
    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut c)
            .await;
    }
}

/// Without a PostgreSQL to use, the script says so plainly and starts
/// nothing.
#[test]
fn local_cluster_script_says_plainly_that_postgresql_must_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("deploy/local-cluster.sh"))
        .env("WIMZ_BIN", env!("CARGO_BIN_EXE_wimz-relay"))
        .env("WIMZ_CLUSTER_DIR", dir.path())
        .env(
            "WIMZ_PG_ADMIN",
            format!("postgres://postgres@127.0.0.1:{}/postgres", free_port()),
        )
        .output()
        .expect("bash runs the script");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL is not reachable") && stderr.contains("does not start one"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was started"
    );
}
