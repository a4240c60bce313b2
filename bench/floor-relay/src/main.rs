//! floor-relay: the plainest fast WebSocket fan-out relay — tokio + axum, no actors, no database,
//! no auth checks. A performance floor for the protocol subset a load generator needs:
//!   GET /health, POST /api/auth/register, POST /api/auth/login, POST /api/devices,
//!   GET /ws/app (subscribe → subscribed, then events), GET /ws/device (robot events in).
//! Each event is parsed once (its `event` and `data` kept as raw JSON slices), framed once,
//! and the same refcounted bytes are queued to every subscriber's writer.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{Listener, ListenerExt};
use axum::{Json, Router};
use clap::Parser;
use dashmap::DashMap;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// listen address
    #[arg(long, default_value = "127.0.0.1:8100")]
    bind: SocketAddr,
    /// tokio worker threads (default: number of cores)
    #[arg(long)]
    threads: Option<usize>,
}

/// Most frames an app writer queues before one flush (one write syscall).
const WRITE_BATCH: usize = 64;

/// Per-socket read buffer: tungstenite's default (128 KiB, zero-filled on use) costs RSS per
/// connection; events are a few hundred bytes.
const READ_BUFFER: usize = 8 * 1024;

/// One app socket's queue; its task is the only writer of that socket.
type Tx = mpsc::UnboundedSender<Utf8Bytes>;

/// Per-device state: the last sequence number and the subscribed apps.
#[derive(Default)]
struct Device {
    seq: u64,
    subs: Vec<Tx>,
}

type DeviceRef = Arc<Mutex<Device>>;

/// All devices, in a sharded concurrent map; sockets keep their own `DeviceRef`,
/// so the map is touched only on connect and subscribe, never per event.
#[derive(Clone, Default)]
struct Relay {
    devices: Arc<DashMap<String, DeviceRef>>,
}

impl Relay {
    fn device(&self, id: &str) -> DeviceRef {
        if let Some(d) = self.devices.get(id) {
            return d.clone();
        }
        self.devices.entry(id.to_owned()).or_default().clone()
    }
}

/// What a robot sends; `event` and `data` stay borrowed raw JSON, spliced verbatim.
#[derive(Deserialize)]
struct RobotMsg<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// What an app sends.
#[derive(Deserialize)]
struct AppMsg {
    #[serde(rename = "type")]
    kind: String,
    device_id: Option<String>,
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn random_hex() -> String {
    // RandomState is randomly keyed per process and per instance: enough for a dummy secret.
    format!("{:016x}{:016x}", RandomState::new().hash_one(1u8), RandomState::new().hash_one(2u8))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.enable_all().build()?.block_on(serve(args.bind))
}

async fn serve(bind: SocketAddr) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/api/auth/register", post(|| async { (StatusCode::CREATED, Json(json!({"ok": true}))) }))
        .route("/api/auth/login", post(|| async { Json(json!({"access_token": "floor", "token_type": "bearer"})) }))
        .route("/api/devices", post(create_device))
        .route("/ws/app", get(ws_app))
        .route("/ws/device", get(ws_device))
        .with_state(Relay::default());
    let sock = if bind.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    sock.set_reuseaddr(true)?;
    sock.bind(bind)?;
    // a deep accept backlog: load tests open thousands of sockets at once
    let listener = sock.listen(4096)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // the address actually bound (port 0 picks a free one: tests read it here)
    eprintln!("floor-relay listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}

#[derive(Deserialize)]
struct NewDevice {
    device_id: String,
}

async fn create_device(State(relay): State<Relay>, Json(d): Json<NewDevice>) -> impl IntoResponse {
    relay.device(&d.device_id);
    (StatusCode::CREATED, Json(json!({"device_id": d.device_id, "device_secret": random_hex()})))
}

async fn ws_app(State(relay): State<Relay>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER).on_upgrade(move |socket| app_socket(relay, socket))
}

async fn ws_device(State(relay): State<Relay>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let Some(id) = headers.get("x-device-id").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "x-device-id required").into_response();
    };
    let dev = relay.device(id);
    let id_json = serde_json::to_string(id).expect("a str always serialises");
    ws.read_buffer_size(READ_BUFFER).on_upgrade(move |socket| device_socket(dev, id_json, socket))
}

/// Robot socket: read events, stamp each with the next seq, fan the one frame out.
async fn device_socket(dev: DeviceRef, id_json: String, mut ws: WebSocket) {
    while let Some(Ok(msg)) = ws.recv().await {
        let Message::Text(text) = msg else { continue };
        let Ok(m) = serde_json::from_str::<RobotMsg>(&text) else { continue };
        if m.kind != "event" {
            continue;
        }
        let Some(event) = m.event else { continue };
        let data = m.data.map_or("{}", |d| d.get());
        publish(&dev, &id_json, event.get(), data);
    }
}

fn publish(dev: &Mutex<Device>, id_json: &str, event: &str, data: &str) {
    let ts = now_ms();
    let mut d = dev.lock().unwrap();
    d.seq += 1;
    if d.subs.is_empty() {
        return;
    }
    let frame = Utf8Bytes::from(format!(
        r#"{{"type":"event","device_id":{id_json},"epoch":1,"seq":{},"ts_ms":{ts},"event":{event},"data":{data}}}"#,
        d.seq
    ));
    // cloning Utf8Bytes is a refcount bump; a closed app drops out of the list here
    d.subs.retain(|tx| tx.send(frame.clone()).is_ok());
}

/// App socket: one task that both reads subscribes and writes queued frames, in batches.
async fn app_socket(relay: Relay, mut ws: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let mut subscribed: Vec<DeviceRef> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(frame) = rx.recv() => {
                if ws.feed(Message::Text(frame)).await.is_err() {
                    break;
                }
                let mut n = 1;
                while n < WRITE_BATCH {
                    let Ok(frame) = rx.try_recv() else { break };
                    if ws.feed(Message::Text(frame)).await.is_err() {
                        break;
                    }
                    n += 1;
                }
                if ws.flush().await.is_err() {
                    break;
                }
            }
            msg = ws.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(AppMsg { kind, device_id: Some(id) }) = serde_json::from_str(&text) else { continue };
                if kind != "subscribe" {
                    continue;
                }
                let dev = relay.device(&id);
                let new = !subscribed.iter().any(|s| Arc::ptr_eq(s, &dev));
                let seq = {
                    let mut d = dev.lock().unwrap();
                    if new {
                        d.subs.push(tx.clone());
                    }
                    d.seq
                };
                if new {
                    subscribed.push(dev);
                }
                // written before this task drains any event queued for it, so it always comes first
                let reply = json!({"type": "subscribed", "device_id": id, "epoch": 1, "seq": seq});
                if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    for dev in subscribed {
        dev.lock().unwrap().subs.retain(|t| !t.same_channel(&tx));
    }
}
