//! `spawn_app()` and the clients tests drive it with.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wimz_relay::config::Settings;
use wimz_relay::startup::{AppHandle, Application};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen promptly. Not a
/// performance bound: only a guard against hanging forever.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Where the store lives for one test.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// A relay running on its own thread and actix system.
pub struct TestApp {
    pub port: u16,
    pub client: RelayClient,
    pub handle: AppHandle,
    pub settings: Settings,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// What a test drives a relay with over HTTP and WebSocket: the in-process
/// [`TestApp`] (through `Deref`) and the real binary that `process.rs`
/// starts alike.
pub struct RelayClient {
    pub port: u16,
    pub base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
}

impl RelayClient {
    pub fn new(port: u16) -> RelayClient {
        RelayClient {
            port,
            base: format!("http://127.0.0.1:{port}"),
            ws_base: format!("ws://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = RelayClient;
    fn deref(&self) -> &RelayClient {
        &self.client
    }
}

/// Settings every test starts from: `config/default.toml` as shipped, bound to
/// 127.0.0.1 port 0, two workers, a fixed JWT secret (no generated secret
/// file) and a 2 s shutdown budget. Tests shorten their own timers through
/// [`spawn_app_with`]'s `tweak`.
pub fn test_settings() -> Settings {
    let mut s = Settings::load_from(
        Some(std::path::Path::new("config/default.toml")),
        Vec::new(),
    )
    .expect("default config loads");
    s.server.bind = "127.0.0.1:0".parse().unwrap();
    s.server.workers = 2;
    s.auth.jwt_secret = wimz_relay::secret::Secret::new("test-secret-test-secret-test-secret-0123");
    s.server.shutdown_timeout_s = 2.0;
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a relay with SQLite in a temp dir, after `tweak` edits the settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut s = test_settings();
    s.store.url =
        wimz_relay::secret::Secret::new(format!("sqlite://{}/relay.db", dir.path().display()));
    s.server.data_dir = dir.path().join("data");
    tweak(&mut s);
    let db = TestDb::Sqlite(tempfile::tempdir().unwrap());
    start(s, db, dir).await
}

/// The PostgreSQL admin URL tests create databases with. `.ci/run` sets it;
/// without it PostgreSQL tests are skipped with a note (never silently in CI:
/// `.ci/run` exports WIMZ_TEST_REQUIRE_POSTGRES=1, which turns a missing URL into a failure).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("WIMZ_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("WIMZ_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("WIMZ_TEST_REQUIRE_POSTGRES=1 but WIMZ_TEST_POSTGRES_URL is not set");
            }
            eprintln!("note: WIMZ_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
            None
        }
    }
}

/// Creates a fresh database and returns its URL.
pub async fn fresh_postgres_db(admin_url: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("wimz_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    (format!("{base}/{name}"), name)
}

/// Starts a relay on a fresh PostgreSQL database; `None` if PostgreSQL is not configured.
pub async fn spawn_app_pg_with(tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let admin = postgres_admin_url()?;
    let (url, name) = fresh_postgres_db(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = test_settings();
    s.store.url = wimz_relay::secret::Secret::new(url);
    s.server.data_dir = dir.path().join("data");
    tweak(&mut s);
    Some(
        start(
            s,
            TestDb::Postgres {
                admin_url: admin,
                name,
            },
            dir,
        )
        .await,
    )
}

async fn start(settings: Settings, db: TestDb, dir: tempfile::TempDir) -> TestApp {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = settings.clone();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let app = Application::build(s).await.expect("relay builds");
            tx.send((app.port(), app.handle())).ok();
            app.run_until_stopped().await.ok();
        });
    });
    let (port, handle) = rx.await.expect("relay started");
    TestApp {
        port,
        client: RelayClient::new(port),
        handle,
        settings,
        _db: db,
        _dir: dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(handle.stop_now());
        });
        if let TestDb::Postgres { admin_url, name } = &self._db {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A registered, logged-in user.
pub struct User {
    pub name: String,
    pub id: String,
    pub token: String,
}

impl RelayClient {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http.delete(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request sent")
    }

    pub async fn stats(&self) -> Value {
        self.get("/stats", None).await.json().await.unwrap()
    }

    /// Registers and logs in `name` (password "password-123").
    pub async fn user(&self, name: &str) -> User {
        let r = self
            .post_json(
                "/api/auth/register",
                &json!({"username": name, "password": "password-123"}),
                None,
            )
            .await;
        assert_eq!(r.status(), 201, "register {name}");
        let r = self
            .post_json(
                "/api/auth/login",
                &json!({"username": name, "password": "password-123"}),
                None,
            )
            .await;
        assert_eq!(r.status(), 200, "login {name}");
        let v: Value = r.json().await.unwrap();
        User {
            name: name.into(),
            id: v["user_id"].as_str().unwrap().into(),
            token: v["access_token"].as_str().unwrap().into(),
        }
    }

    /// Registers `device_id` for `user`; returns its secret.
    pub async fn device(&self, user: &User, device_id: &str) -> String {
        let r = self
            .post_json(
                "/api/devices",
                &json!({"device_id": device_id, "name": "Robot"}),
                Some(&user.token),
            )
            .await;
        assert_eq!(r.status(), 201, "create device {device_id}");
        let v: Value = r.json().await.unwrap();
        v["device_secret"].as_str().unwrap().into()
    }

    /// `GET /api/devices` as `user`: the JSON array of their devices.
    pub async fn devices(&self, user: &User) -> Value {
        let r = self.get("/api/devices", Some(&user.token)).await;
        assert_eq!(r.status(), 200, "list devices of {}", user.name);
        r.json().await.unwrap()
    }

    /// A robot socket authenticated with signature headers ([`Self::try_robot`]),
    /// attached to its room when this returns (the relay handles a robot's
    /// frames only after attaching it, so a pong proves it).
    pub async fn robot(&self, device_id: &str, secret: &str) -> Ws {
        let mut ws = self
            .try_robot(device_id, secret)
            .await
            .expect("robot socket opens");
        send(&mut ws, serde_json::json!({"type": "ping"})).await;
        recv_type(&mut ws, "pong").await;
        ws
    }

    pub async fn try_robot(
        &self,
        device_id: &str,
        secret: &str,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let ts = wimz_relay::ids::unix_now();
        let sig = sign(secret, device_id, ts);
        let mut req = format!("{}/ws/device", self.ws_base)
            .into_client_request()
            .unwrap();
        let h = req.headers_mut();
        h.insert("x-device-id", device_id.parse().unwrap());
        h.insert("x-timestamp", ts.to_string().parse().unwrap());
        h.insert("x-signature", sig.parse().unwrap());
        tokio_tungstenite::connect_async(req)
            .await
            .map(|(ws, _)| ws)
    }

    /// An app socket authenticated with a bearer header.
    pub async fn app(&self, user: &User) -> Ws {
        let mut req = format!("{}/ws/app", self.ws_base)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", user.token).parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req)
            .await
            .expect("app socket opens")
            .0
    }

    /// An app socket subscribed to `device_id` (the `subscribed` answer consumed and returned).
    pub async fn subscribed_app(&self, user: &User, device_id: &str) -> (Ws, Value) {
        let mut ws = self.app(user).await;
        send(
            &mut ws,
            json!({"type": "subscribe", "device_id": device_id}),
        )
        .await;
        let v = recv_type(&mut ws, "subscribed").await;
        (ws, v)
    }

    /// Waits until `/stats` satisfies `pred` (or panics after PATIENCE).
    pub async fn wait_stats(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let s = self.stats().await;
            if pred(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("stats never showed {what}: {s}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl TestApp {
    /// The test's own connection to this relay's store (to lock it from
    /// outside, as another writer would).
    pub async fn store_connection(&self) -> sqlx::AnyConnection {
        store_connection(self.settings.store.url.expose()).await
    }
}

/// The test's own connection to the store at `url`.
pub async fn store_connection(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("the test's own connection to the relay's store")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sign(secret: &str, device_id: &str, ts: i64) -> String {
    wimz_relay::auth::signature::sign(&wimz_relay::secret::Secret::new(secret), device_id, ts)
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

pub async fn send_text(ws: &mut Ws, t: &str) {
    ws.send(Message::Text(t.to_string().into()))
        .await
        .expect("send");
}

/// Next text frame as JSON (pings/pongs skipped); panics on close or timeout.
pub async fn recv(ws: &mut Ws) -> Value {
    recv_within(ws, PATIENCE).await
}

/// As [`recv`], with a longer hang guard for what takes seconds by design
/// (e.g. a fault that a periodic probe must notice first).
pub async fn recv_within(ws: &mut Ws, patience: Duration) -> Value {
    match tokio::time::timeout(patience, next_json(ws)).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("socket closed while waiting for a message"),
        Err(_) => panic!("no message within {patience:?}"),
    }
}

pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => {
                return Some(serde_json::from_str(&t).expect("relay sends JSON"))
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Next message of `ty`, skipping others (e.g. presence events).
pub async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Next `event` message named `name`.
pub async fn recv_event(ws: &mut Ws, name: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == "event" && v["event"] == name {
            return v;
        }
    }
}

/// Asserts nothing but pings arrives within `d`.
pub async fn assert_silent(ws: &mut Ws, d: Duration) {
    if let Ok(Some(v)) = tokio::time::timeout(d, next_json(ws)).await {
        panic!("expected silence, got {v}");
    }
}

/// Waits for the close frame; returns its code.
pub async fn recv_close(ws: &mut Ws) -> Option<u16> {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    };
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("socket closes in time")
}

/// One `GET` whose request line carries `path` exactly as given (no client
/// normalises it first), with `headers`, on a fresh connection: the status
/// and the body.
pub async fn raw_get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: not HTTP: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}
