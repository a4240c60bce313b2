//! Events across instances: `Append` (number an event through Redis), the
//! mirror side (`Watch` / `Unwatch`: subscribe, then read the device's
//! state), and the device snapshot kept in Redis (left by the rooms in the
//! [`Lane`](super::Lane), written in batches by
//! [`ClusterBridge::flush_snapshots`]; `DeviceStatus`).
//!
//! The hot path is one pipeline, one round trip, no Lua: `XADD` of the
//! event under the id `<term>-<seq>` (so Redis itself refuses it if another
//! instance claimed the device since: its marker's term is higher) and
//! `PUBLISH` (`SPUBLISH` on a Redis Cluster) to the device's channel. Only
//! when the `XADD` is refused, or the home's term is not proven (its claim
//! failed, Redis was unreachable, the link reconnected), does the event go
//! through the [`scripts::append`] script, which fences, proves continuity
//! and mints a new term.

use super::keys;
use super::messages::*;
use super::stream_ids::{Position, Published, StreamId};
use super::subscriber::{read_stream, Entry, SubCmd};
use super::{ClusterBridge, Term};
use crate::wire::Snapshot;
use actix::prelude::*;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// How the fast path ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Fast {
    Ok,
    /// Redis refused the id: someone wrote above us (a claim elsewhere, a
    /// reserved epoch after Redis lost the stream), or Redis said no.
    Refused,
    Down,
}

impl Handler<Append> for ClusterBridge {
    type Result = ResponseActFuture<Self, AppendResult>;

    // The term read, the attempt and the bookkeeping of its answer stay in
    // one function: they share what was read before the append began
    // (generation, invalidation count). The script's slow path is apart
    // (`slow_append`).
    fn handle(&mut self, msg: Append, _ctx: &mut Context<Self>) -> Self::Result {
        if self.closing {
            // Handed off: the device may be another instance's already, and
            // an event numbered here now could take a seq it gives out too.
            return Box::pin(fut::ready(AppendResult::Fenced));
        }
        if !self.connected.load(Ordering::Relaxed) {
            // Known down: don't make the room wait out connection attempts;
            // it delivers locally, and the next append proves the stream.
            if let Some(home) = self.homes.get_mut(&msg.device) {
                home.term = None;
            }
            self.metrics.redis_publish_skipped();
            return Box::pin(fut::ready(AppendResult::Down));
        }
        let generation = self.redis.generation();
        // Read before the attempt: an invalidation while it is in flight (a
        // hand-off, a worker's new connection) leaves its ticket stale.
        let invalidations = self.lane.count();
        let proven = match self.homes.get(&msg.device).and_then(|h| h.term) {
            Some(t) if t.generation == generation && t.invalidations == invalidations => {
                Some(t.term)
            }
            _ => None,
        };
        let mut redis = self.redis.clone();
        let (instance, ttl, maxlen) = (
            self.instance.to_string(),
            self.presence_ttl_s,
            self.history_size,
        );
        let slow = self.scripts.append.clone();
        let device = msg.device.clone();
        let metrics = self.metrics.clone();
        let attempt = async move {
            if let Some(term) = proven {
                match fast_append(&mut redis, &msg, term, maxlen).await {
                    Fast::Ok => return Ok(term),
                    Fast::Down => return Err(AppendResult::Down),
                    Fast::Refused => {}
                }
            }
            slow_append(&mut redis, &slow, &msg, &instance, ttl, maxlen).await
        };
        // Timed once per event, whichever way it went (the pipeline, or the
        // script that proves the stream first).
        let work = async move {
            let started = std::time::Instant::now();
            let result = attempt.await;
            metrics.redis_published(started, !matches!(result, Err(AppendResult::Down)));
            if result.is_ok() {
                metrics.redis_appended(crate::metrics::AppendPath::Bridge);
            }
            result
        };
        Box::pin(work.into_actor(self).map(move |result, bridge, _ctx| {
            let term = result.ok();
            // The generation after the request: a slow append proved the
            // stream on whatever connection it went over.
            let generation = match proven {
                Some(_) if term == proven => generation,
                _ => bridge.redis.generation(),
            };
            if let Some(home) = bridge.homes.get_mut(&device) {
                home.term = term.map(|term| Term {
                    term,
                    generation,
                    invalidations,
                });
                home.claimed |= term.is_some();
            }
            match result {
                Ok(term) => AppendResult::Ok(bridge.lane.ticket(term, generation, invalidations)),
                Err(other) => other,
            }
        }))
    }
}

/// The slow way: the [`append`](super::scripts::append) script fences,
/// proves where the stream stands and mints a term, then appends. Its
/// answer as the bridge uses it: the term, or how the append ended.
async fn slow_append(
    redis: &mut super::link::Link,
    script: &redis::Script,
    msg: &Append,
    instance: &str,
    ttl: u64,
    maxlen: usize,
) -> Result<u64, AppendResult> {
    let expected = msg
        .expected
        .map(|(e, s)| format!("{e}:{s}"))
        .unwrap_or_default();
    let publish = redis.publish_name();
    let r: Result<Vec<redis::Value>, _> = script
        .key(keys::presence(&msg.device))
        .key(keys::stream(&msg.device))
        .key(keys::device_channel(&msg.device))
        .arg(instance)
        .arg(ttl)
        .arg(expected)
        .arg(msg.epoch)
        .arg(msg.seq)
        .arg(&*msg.frame)
        .arg(crate::ids::unix_now_ms())
        .arg(maxlen)
        .arg(publish)
        .invoke_async(redis)
        .await;
    let answer = r.ok().and_then(|v| {
        let word: String = redis::from_redis_value_ref(v.first()?).ok()?;
        let term: Option<u64> = v.get(1).and_then(|t| redis::from_redis_value_ref(t).ok());
        Some((word, term))
    });
    match answer {
        Some((w, Some(term))) if w == "ok" => Ok(term),
        Some((w, _)) if w == "fenced" => Err(AppendResult::Fenced),
        Some((w, _)) if w == "broken" => Err(AppendResult::Broken),
        _ => Err(AppendResult::Down),
    }
}

impl Handler<Unprove> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Unprove, _ctx: &mut Context<Self>) {
        if let Some(home) = self.homes.get_mut(&msg.device) {
            home.term = None;
        }
    }
}

/// `XADD <stream> MAXLEN ~ n <term>-<seq> e <epoch> f <frame>` and
/// `(S)PUBLISH <channel> "<term>-<seq> <epoch> <frame>"` in one pipeline.
/// The `PUBLISH` runs even when the `XADD` is refused; subscribers drop it
/// (its id is not above what the refusing entry's writer announced).
pub async fn fast_append(
    redis: &mut super::link::Link,
    msg: &Append,
    term: u64,
    maxlen: usize,
) -> Fast {
    let id = StreamId { term, seq: msg.seq };
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(keys::stream(&msg.device))
        .arg("MAXLEN")
        .arg("~")
        .arg(maxlen)
        .arg(id.to_string())
        .arg("e")
        .arg(msg.epoch)
        .arg("f")
        .arg(&*msg.frame);
    pipe.add_command(redis.publish_cmd(
        &keys::device_channel(&msg.device),
        &Published::event(id, msg.epoch, &msg.frame),
    ))
    .ignore();
    let r: redis::RedisResult<(String,)> = pipe.query_async(redis).await;
    match r {
        Ok(_) => Fast::Ok,
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Fast::Down,
        Err(e) if e.is_connection_refusal() => Fast::Down,
        Err(_) => Fast::Refused,
    }
}

impl Handler<Watch> for ClusterBridge {
    type Result = ResponseFuture<Option<SyncState>>;

    fn handle(&mut self, msg: Watch, _ctx: &mut Context<Self>) -> Self::Result {
        self.mirrors.insert(msg.device.clone(), msg.mirror.clone());
        let sub = self.sub.clone();
        let mut redis = self.redis.clone();
        let instance = self.instance.to_string();
        Box::pin(async move {
            // The subscriber subscribes, then reads (or reserves) where the
            // stream stands: what it forwards from then on is above that.
            let (ack_tx, ack_rx) = oneshot::channel();
            sub?.send(SubCmd::Watch {
                device: msg.device.clone(),
                epoch: msg.epoch,
                mirror: msg.mirror,
                ack: ack_tx,
            })
            .ok()?;
            let start = ack_rx.await.ok().flatten()?;
            let entries = read_stream(&mut redis, &msg.device, None).await?;
            let holder: Option<String> = redis.get(keys::presence(&msg.device)).await.ok()?;
            let snap: HashMap<String, String> = redis
                .hgetall(keys::snapshot(&msg.device))
                .await
                .unwrap_or_default();
            let last = entries
                .last()
                .map(|e| e.at)
                .filter(|at| at.id > start.id)
                .unwrap_or(start);
            Some(SyncState {
                last: Some(last.numbered()),
                frames: contiguous_tail(entries),
                holder: holder.filter(|h| *h != instance),
                snapshot: snapshot_from_hash(&snap),
            })
        })
    }
}

/// The events a mirror may keep for recovery: the last run without a hole
/// (a stream with a hole — its tail lost in a failover, say — must not make
/// a recovery across the hole look complete).
fn contiguous_tail(entries: Vec<Entry>) -> Vec<(i64, u64, bytestring::ByteString)> {
    let mut run: Vec<(i64, u64, bytestring::ByteString)> = Vec::new();
    let mut prev: Option<Position> = None;
    for e in entries {
        let follows = prev.is_some_and(|p| {
            p.epoch == e.at.epoch
                && (e.at.id.seq == p.id.seq + 1 || (e.frame.is_none() && e.at.id.seq == p.id.seq))
        });
        if !follows {
            run.clear();
        }
        if let Some(f) = e.frame {
            run.push((e.at.epoch, e.at.id.seq, f));
        }
        prev = Some(e.at);
    }
    run
}

fn snapshot_from_hash(h: &HashMap<String, String>) -> Snapshot {
    fn get<T: serde::de::DeserializeOwned>(h: &HashMap<String, String>, k: &str) -> Option<T> {
        h.get(k).and_then(|v| serde_json::from_str(v).ok())
    }
    Snapshot {
        online: false,
        mode: get(h, "mode"),
        mission: get(h, "mission"),
        battery: get(h, "battery"),
        last_seen: h.get("last_seen").and_then(|v| v.parse().ok()),
    }
}

impl Handler<Unwatch> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _ctx: &mut Context<Self>) {
        if self.mirrors.get(&msg.device) == Some(&msg.mirror) {
            self.mirrors.remove(&msg.device);
            if let Some(sub) = &self.sub {
                let _ = sub.send(SubCmd::Unwatch(msg.device));
            }
        }
    }
}

impl ClusterBridge {
    /// Writes the snapshots changed since the last flush, one
    /// [`SNAPSHOT`](super::scripts::SNAPSHOT) each (concurrently, each to
    /// its device's shard): an `HSET` unless a newer home wrote it.
    pub(super) fn flush_snapshots(&mut self, ctx: &mut Context<Self>) {
        if let Some(writes) = self.snapshot_writes() {
            ctx.spawn(writes.into_actor(self));
        }
    }

    /// The writes of the snapshots changed since the last flush (taken from
    /// the lane), or `None` when there are none or Redis is down (then they
    /// wait for a later flush). A write that fails puts its snapshot back
    /// for the next flush, unless the room left a newer one meanwhile.
    pub(super) fn snapshot_writes(
        &mut self,
    ) -> Option<impl std::future::Future<Output = ()> + 'static> {
        if !self.connected.load(Ordering::Relaxed) || !self.lane.has_snapshots() {
            return None;
        }
        let dirty = self.lane.take_snapshots();
        let (redis, lane) = (self.redis.clone(), self.lane.clone());
        let script = self.scripts.snapshot.clone();
        Some(async move {
            let writes = dirty.into_iter().filter_map(|(device, (s, term))| {
                let fields = snapshot_fields(&s);
                let (mut redis, lane, script) = (redis.clone(), lane.clone(), script.clone());
                (!fields.is_empty()).then_some(async move {
                    let mut call = script.key(keys::snapshot(&device));
                    call.arg(term);
                    for (k, v) in &fields {
                        call.arg(*k).arg(v);
                    }
                    let written: Result<i64, _> = call.invoke_async(&mut redis).await;
                    if let Err(e) = written {
                        tracing::debug!(device_id = %device, error = %e, "snapshot not written; kept for the next flush");
                        lane.restore_snapshot(device, (s, term));
                    }
                })
            });
            futures_util::future::join_all(writes).await;
        })
    }
}

fn snapshot_fields(s: &Snapshot) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(v) = &s.mode {
        fields.push(("mode", v.to_string()));
    }
    for (k, v) in [("mission", &s.mission), ("battery", &s.battery)] {
        if let Some(v) = v {
            fields.push((k, v.get().to_string()));
        }
    }
    if let Some(t) = s.last_seen {
        fields.push(("last_seen", t.to_string()));
    }
    fields
}

impl Handler<DeviceStatus> for ClusterBridge {
    type Result = ResponseFuture<Option<Snapshot>>;

    fn handle(&mut self, msg: DeviceStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let mut redis = self.redis.clone();
        Box::pin(async move {
            let holder: Option<String> = redis.get(keys::presence(&msg.device)).await.ok()?;
            let snap: HashMap<String, String> =
                redis.hgetall(keys::snapshot(&msg.device)).await.ok()?;
            let mut s = snapshot_from_hash(&snap);
            s.online = holder.is_some();
            Some(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, seq: u64, epoch: i64, frame: bool) -> Entry {
        Entry {
            at: Position {
                id: StreamId { term, seq },
                epoch,
            },
            frame: frame.then(|| bytestring::ByteString::from(format!("f{seq}"))),
        }
    }

    #[test]
    fn a_mirror_keeps_only_the_run_after_the_last_hole() {
        let seqs = |v: Vec<(i64, u64, bytestring::ByteString)>| {
            v.into_iter().map(|(_, s, _)| s).collect::<Vec<_>>()
        };
        // A claim marker continues the run; a lost tail (4, 5) breaks it.
        let entries = vec![
            entry(1, 0, 7, false),
            entry(1, 1, 7, true),
            entry(1, 2, 7, true),
            entry(2, 2, 7, false),
            entry(2, 3, 7, true),
            entry(2, 6, 7, true),
            entry(2, 7, 7, true),
        ];
        assert_eq!(seqs(contiguous_tail(entries)), vec![6, 7]);
        let whole = vec![
            entry(1, 0, 7, false),
            entry(1, 1, 7, true),
            entry(3, 1, 7, false),
            entry(3, 2, 7, true),
        ];
        assert_eq!(seqs(contiguous_tail(whole)), vec![1, 2]);
        // A new epoch starts a new run.
        let epochs = vec![
            entry(1, 1, 7, true),
            entry(2, 0, 9, false),
            entry(2, 1, 9, true),
        ];
        assert_eq!(seqs(contiguous_tail(epochs)), vec![1]);
    }
}
