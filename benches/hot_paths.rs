//! criterion benches for the relay's hot paths (issue 6): parsing and
//! enveloping an event, fanning it out to K subscribers' outboxes (and the
//! same with each delivery timed into `wimz_event_routing_seconds`, as the
//! room does), JWT verification, device-signature verification, TURN
//! credential math.
//!
//! Run: `cargo bench --bench hot_paths` (add a filter, e.g. `fanout`).

use base64::Engine;
use bytestring::ByteString;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use metrics::Counter;
use std::time::Instant;
use wimz_relay::auth::{signature, Role, TokenService};
use wimz_relay::ids::DeviceId;
use wimz_relay::metrics::Metrics;
use wimz_relay::room::history::History;
use wimz_relay::secret::Secret;
use wimz_relay::wire::encode::{self, DeviceJson, RelayKeys};
use wimz_relay::wire::frames::{self, RobotFrame};
use wimz_relay::wire::outbox;

/// A realistic ~300-byte `mission_progress` event, as the load generator sends.
const EVENT: &str = r#"{"type":"event","event":"mission_progress","data":{"mission":"sit_training","status":"watching","stage":3,"total_stages":5,"dog":"rex","confidence":0.91,"treats_left":12,"lg":{"n":1234,"t":1732250000000000},"note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;

/// What `DeviceRoom::publish` does to one event before fanning it out.
fn envelope(raw: &str, envelope_keys: RelayKeys, seq: u64) -> ByteString {
    thread_local! {
        static DEVICE: DeviceJson = DeviceJson::new(&DeviceId::parse("wimz-000001").expect("a valid id"));
    }
    DEVICE.with(|d| {
        encode::event(
            raw,
            envelope_keys,
            d,
            1_732_250_000_123,
            seq,
            wimz_relay::ids::unix_now_ms(),
        )
    })
}

fn parse_and_envelope(c: &mut Criterion) {
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_robot", |b| {
        b.iter(|| frames::parse_robot(black_box(EVENT)).is_ok())
    });
    g.bench_function("parse_robot+envelope", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            match frames::parse_robot(black_box(EVENT)) {
                Ok(p) => match p.frame {
                    RobotFrame::Event(e) => envelope(&e.raw, e.envelope_keys, seq),
                    _ => ByteString::new(),
                },
                Err(_) => ByteString::new(),
            }
        })
    });
    let spoofed = EVENT.replacen(r#""type":"event","#, r#""type":"event","seq":99,"#, 1);
    g.bench_function("envelope_rebuild_spoofed", |b| {
        b.iter(|| envelope(black_box(&spoofed), RelayKeys::Present, 7))
    });
    g.finish();
}

/// The room's fan-out: envelope once, `try_send` a clone into each of K
/// subscribers' bounded outboxes, keep it in the recovery history. The
/// outboxes are drained in the loop (the writers' side, minus the socket).
fn fanout(c: &mut Criterion) {
    // `fanout_timed`: as the room does, one `wimz_event_routing_seconds`
    // sample per delivery, into a real `Metrics` (the exporter's handle),
    // with the relay's upkeep folding samples into buckets every second.
    let metrics = std::sync::Arc::new(Metrics::new("bench", false));
    let upkeep = {
        let m = std::sync::Arc::downgrade(&metrics);
        std::thread::spawn(move || {
            while let Some(m) = m.upgrade() {
                m.run_upkeep();
                drop(m);
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
    };
    for (group, timed) in [("fanout", false), ("fanout_timed", true)] {
        let mut g = c.benchmark_group(group);
        for k in [1usize, 2, 10, 100] {
            g.throughput(Throughput::Elements(k as u64));
            g.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
                let (boxes, mut rxs): (Vec<_>, Vec<_>) = (0..k)
                    .map(|_| outbox::detached(1024, Counter::noop()))
                    .unzip();
                let mut history = History::new(512);
                let mut seq = 0;
                b.iter(|| {
                    // The relay reads this clock anyway (the socket's
                    // last_seen); only the timed run pays for it here.
                    let received = timed.then(Instant::now);
                    seq += 1;
                    let frame = envelope(EVENT, RelayKeys::Absent, seq);
                    let mut delivered = 0;
                    for o in &boxes {
                        if o.send(frame.clone()) {
                            delivered += 1;
                            if let Some(t) = received {
                                metrics.event_routed(t);
                            }
                        }
                    }
                    history.push(seq, frame);
                    for rx in rxs.iter_mut() {
                        while rx.try_recv().is_ok() {}
                    }
                    delivered
                })
            });
        }
        g.finish();
    }
    drop(metrics);
    let _ = upkeep.join();
}

fn auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth");
    let tokens = TokenService::new(
        &Secret::new("bench-secret-bench-secret-bench-secret-01"),
        86_400,
    );
    // Issuing with a valid secret and claims cannot fail.
    let token = tokens.issue("user-1", Role::User).expect("token issues");
    g.bench_function("jwt_verify", |b| {
        b.iter(|| tokens.verify(black_box(&token)).is_ok())
    });
    let secret = Secret::new("3f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e");
    let ts = wimz_relay::ids::unix_now();
    let sig = signature::sign(&secret, "wimz-000001", ts);
    g.bench_function("signature_verify", |b| {
        b.iter(|| signature::verify(&secret, black_box("wimz-000001"), ts, black_box(&sig)))
    });
    g.bench_function("turn_credentials_hmac_sha1", |b| {
        b.iter(|| {
            turn_credential(
                black_box(b"coturn-static-auth-secret"),
                1_732_336_400,
                "wimz-000001",
            )
        })
    });
    g.finish();
}

/// TURN REST credentials (PROTOCOL.md §4): username `<expiry>:<device>`,
/// credential base64(HMAC-SHA1(secret, username)).
fn turn_credential(secret: &[u8], expires_at: i64, device: &str) -> (String, String) {
    let username = format!("{expires_at}:{device}");
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

criterion_group!(benches, parse_and_envelope, fanout, auth);
criterion_main!(benches);
