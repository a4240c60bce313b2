//! Rolling restarts (docs/DEPLOY.md): relay processes on one Redis and one
//! store, behind a real nginx, stopped with SIGTERM one after another while
//! simulated robots and apps run; they reconnect through nginx by
//! themselves, as PROTOCOL.md C says (1012: at once, with jitter; apps with
//! `since_seq`).

use crate::cluster::Redis;
use crate::helpers::*;
use crate::instances::{device_token, shared_store, Instance, BUDGET_S};
use crate::nginx::Nginx;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// What a simulated robot saw.
#[derive(Default, Debug)]
struct RobotLog {
    /// Events sent (`data.n` = 0..sent), each accepted by its socket.
    sent: u64,
    close_codes: Vec<u16>,
    /// Connections that ended without a close frame, or sends that failed.
    abrupt: Vec<String>,
}

/// What a simulated app saw.
#[derive(Default, Debug)]
struct AppLog {
    /// `data.n` of every robot event received, in order.
    ns: Vec<u64>,
    /// Every numbered event's (epoch, seq), in order.
    seqs: Vec<(i64, u64)>,
    recovered: Vec<Value>,
    close_codes: Vec<u16>,
    unnumbered: Vec<Value>,
    abrupt: Vec<String>,
    /// (ms since start, what happened): connections, subscriptions, closes.
    timeline: Vec<(u128, String)>,
}

fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis(rand::random::<u64>() % (max_ms + 1))
}

async fn connect(url: &str, token: &str) -> Option<Ws> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let t = Instant::now();
    let r = tokio_tungstenite::connect_async(req).await;
    if t.elapsed() > Duration::from_secs(1) || r.is_err() {
        eprintln!(
            "connect {url}: {:?} after {:?}",
            r.as_ref().err().map(|e| e.to_string()),
            t.elapsed()
        );
    }
    r.ok().map(|w| w.0)
}

/// Connects until it works (through nginx, whichever instance answers).
async fn reconnect(url: &str, token: &str) -> Ws {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        if let Some(ws) = connect(url, token).await {
            return ws;
        }
        assert!(Instant::now() < deadline, "could not reconnect to {url}");
        tokio::time::sleep(Duration::from_millis(50) + jitter(50)).await;
    }
}

/// A robot sending `progress{n}` every `every` until `stop`; on a close it
/// reads to the end of the handshake and reconnects at once (with jitter).
async fn run_robot(url: String, token: String, every: Duration, stop: Arc<AtomicBool>) -> RobotLog {
    let mut log = RobotLog::default();
    let mut ws = reconnect(&url, &token).await;
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(frame))) => {
                    log.close_codes.push(frame.map(|f| u16::from(f.code)).unwrap_or(0));
                    // The relay ends the connection once it has read what we sent.
                    let _ = tokio::time::timeout(PATIENCE, async { while ws.next().await.is_some() {} }).await;
                    tokio::time::sleep(jitter(30)).await;
                    ws = reconnect(&url, &token).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    log.abrupt.push(format!("read: {e}"));
                    ws = reconnect(&url, &token).await;
                }
                None => {
                    log.abrupt.push("ended without a close".into());
                    ws = reconnect(&url, &token).await;
                }
            },
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    let _ = ws.close(None).await;
                    return log;
                }
                let ev = json!({"type": "event", "event": "progress", "data": {"n": log.sent}});
                match ws.send(Message::Text(ev.to_string().into())).await {
                    Ok(()) => log.sent += 1,
                    Err(e) => {
                        log.abrupt.push(format!("send: {e}"));
                        ws = reconnect(&url, &token).await;
                    }
                }
            }
        }
    }
}

/// An app subscribed to `device`; on a close it reconnects at once (with
/// jitter) and subscribes with `since_seq` and `epoch`.
async fn run_app(
    url: String,
    token: String,
    device: String,
    log: Arc<Mutex<AppLog>>,
    stop: Arc<AtomicBool>,
) {
    let mut last: Option<(i64, u64)> = None;
    let t0 = Instant::now();
    loop {
        let mut ws = reconnect(&url, &token).await;
        log.lock().unwrap().timeline.push((
            t0.elapsed().as_millis(),
            format!("connected, since {last:?}"),
        ));
        let sub = match last {
            Some((epoch, seq)) => {
                json!({"type": "subscribe", "device_id": device, "since_seq": seq, "epoch": epoch})
            }
            None => json!({"type": "subscribe", "device_id": device, "since_seq": 0}),
        };
        if ws
            .send(Message::Text(sub.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if stop.load(Ordering::Relaxed) {
                        let _ = ws.close(None).await;
                        return;
                    }
                    continue;
                }
            };
            let mut log = log.lock().unwrap();
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("event") if v["unnumbered"] == true => log.unnumbered.push(v),
                        Some("event") => {
                            let (epoch, seq) =
                                (v["epoch"].as_i64().unwrap(), v["seq"].as_u64().unwrap());
                            log.seqs.push((epoch, seq));
                            last = Some((epoch, seq));
                            if v["event"] == "progress" {
                                log.ns.push(v["data"]["n"].as_u64().unwrap());
                            }
                        }
                        Some("recovered") => {
                            log.timeline.push((t0.elapsed().as_millis(), v.to_string()));
                            log.recovered.push(v)
                        }
                        Some("subscribed") => {
                            log.timeline.push((
                                t0.elapsed().as_millis(),
                                format!(
                                    "subscribed epoch {} seq {} online {}",
                                    v["epoch"], v["seq"], v["robot_online"]
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let frame_code = frame
                        .as_ref()
                        .map(|f| (u16::from(f.code), f.reason.to_string()));
                    log.close_codes
                        .push(frame.map(|f| u16::from(f.code)).unwrap_or(0));
                    log.timeline.push((
                        t0.elapsed().as_millis(),
                        format!("closed {:?} at {last:?}", frame_code),
                    ));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    log.abrupt.push(format!("read: {e}"));
                    break;
                }
                None => {
                    log.abrupt.push("ended without a close".into());
                    break;
                }
            }
        }
        tokio::time::sleep(jitter(30)).await;
    }
}

/// Waits until every app has `n` more robot events than `from[i]`.
async fn wait_for_progress(apps: &[Arc<Mutex<AppLog>>], more: usize, what: &str) {
    let from: Vec<usize> = apps.iter().map(|a| a.lock().unwrap().ns.len()).collect();
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        let behind = apps
            .iter()
            .zip(&from)
            .filter(|(a, f)| a.lock().unwrap().ns.len() < **f + more)
            .count();
        if behind == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} apps stopped receiving events {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three instances behind nginx, each stopped with SIGTERM and started
/// again in turn while six robots (an event every 20 ms) and twelve apps
/// run and reconnect through nginx by themselves: every app gets every
/// event once, in order, in one epoch; every close is 1012; every
/// resubscription says `recovered{complete:true}`; each instance exits
/// (within a hang guard) with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_nginx_loses_nothing() {
    const ROBOTS: usize = 6;
    const APPS_PER_ROBOT: usize = 2;
    let redis = Redis::start();
    let store = shared_store().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instances: Vec<Instance> = ["A", "B", "C"]
        .into_iter()
        .map(|n| Instance::new(n, &redis, &store.url, &[]))
        .collect();
    for i in &mut instances {
        i.start(dir.path()).await;
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let nginx = Nginx::start(&ports);
    let front = RelayClient::new(nginx.port);
    let ws_base = front.ws_base.clone();

    let user = front.user("roller").await;
    // Robots stop first; apps only once they have had every event sent (or
    // patience ran out), so an app never quits while the last one is on its
    // way (an app that stopped at the robots' stop, after 50 ms of quiet,
    // missed a last event that took longer across instances).
    let stop = Arc::new(AtomicBool::new(false));
    let apps_stop = Arc::new(AtomicBool::new(false));
    let mut robots = Vec::new();
    let mut apps = Vec::new();
    let mut app_tasks = Vec::new();
    for r in 0..ROBOTS {
        let device = format!("wimz-roll-{r}");
        let secret = front.device(&user, &device).await;
        for _ in 0..APPS_PER_ROBOT {
            let log = Arc::new(Mutex::new(AppLog::default()));
            apps.push((r, log.clone()));
            app_tasks.push(tokio::spawn(run_app(
                format!("{ws_base}/ws/app"),
                user.token.clone(),
                device.clone(),
                log,
                apps_stop.clone(),
            )));
        }
        let token = device_token(&front, &device, &secret).await;
        robots.push(tokio::spawn(run_robot(
            format!("{ws_base}/ws/device"),
            token,
            Duration::from_millis(20),
            stop.clone(),
        )));
    }
    let app_logs: Vec<_> = apps.iter().map(|(_, l)| l.clone()).collect();
    wait_for_progress(&app_logs, 20, "before the restarts").await;

    // One instance at a time: SIGTERM, wait for it to exit, start it again,
    // wait for its health and for events to flow everywhere again.
    for i in &mut instances {
        let (took, status) = i.terminate();
        assert!(status.success(), "{} exited with {status}", i.name);
        eprintln!("{} stopped in {took:?} (budget {BUDGET_S} s)", i.name);
        i.start(dir.path()).await;
        wait_for_progress(&app_logs, 20, &format!("after {} restarted", i.name)).await;
    }

    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for r in robots {
        let log = tokio::time::timeout(PATIENCE, r).await.unwrap().unwrap();
        assert!(log.abrupt.is_empty(), "robot connections broke: {log:?}");
        assert!(
            !log.close_codes.is_empty(),
            "every robot was moved at least once"
        );
        assert!(
            log.close_codes.iter().all(|c| *c == 1012),
            "robots are closed with 1012: {:?}",
            log.close_codes
        );
        sent.push(log.sent);
    }
    // Every app gets every event its robot sent: wait for the last ones.
    let deadline = Instant::now() + PATIENCE;
    while apps
        .iter()
        .any(|(r, l)| l.lock().unwrap().ns.last().map(|n| n + 1) != Some(sent[*r]))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    apps_stop.store(true, Ordering::Relaxed);
    for t in app_tasks {
        let _ = tokio::time::timeout(PATIENCE, t).await;
    }
    eprintln!("nginx error log:\n{}", nginx.error_log_summary());
    for (r, log) in &apps {
        let log = log.lock().unwrap();
        let want: Vec<u64> = (0..sent[*r]).collect();
        let first = log.ns.iter().zip(&want).position(|(a, b)| a != b);
        let around = first.map(|i| &log.ns[i.saturating_sub(3)..(i + 3).min(log.ns.len())]);
        assert!(
            log.ns == want,
            "app of robot {r}: got {} events for {} sent; first difference at {first:?}: {around:?}; log {:?}",
            log.ns.len(),
            sent[*r],
            (&log.close_codes, &log.abrupt, &log.unnumbered, &log.timeline)
        );
        assert!(
            log.seqs
                .windows(2)
                .all(|w| w[1].0 == w[0].0 && w[1].1 == w[0].1 + 1),
            "app of robot {r}: numbered events in one epoch, no gap or repeat"
        );
        assert!(
            log.abrupt.is_empty(),
            "app connections broke: {:?}",
            log.abrupt
        );
        assert!(
            log.close_codes.iter().all(|c| *c == 1012),
            "apps are closed with 1012: {:?}",
            log.close_codes
        );
        // One `recovered` per subscribe (the first, and one per reconnect).
        assert_eq!(
            log.recovered.len(),
            log.close_codes.len() + 1,
            "{:?}",
            log.timeline
        );
        assert!(
            log.recovered.iter().all(|v| v["complete"] == true),
            "every app recovers completely: {:?}",
            log.recovered
        );
        assert!(
            log.unnumbered.is_empty(),
            "a robot's move is told with numbered events, not a lost instance: {:?}",
            log.unnumbered
        );
    }
    assert!(
        apps.iter()
            .any(|(_, l)| !l.lock().unwrap().close_codes.is_empty()),
        "apps were moved too"
    );
}
