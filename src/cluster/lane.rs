//! The lane: a home room appends its events to Redis itself, over a
//! connection of its own worker thread, instead of through the bridge's
//! mailbox and the bridge's connection (two cross-thread hops each way and
//! the bridge's thread in every event's way).
//!
//! The bridge still decides *when* that is safe. A room takes the lane
//! only with a [`Ticket`] the bridge gave with its last good [`Append`]
//! answer (the device's proven term, the bridge link's generation then, and
//! the lane's invalidation count then), and only while nothing has changed
//! since: Redis is live (`connected`), the bridge's link has not
//! reconnected, and the bridge has not bumped [`Lane::invalidate`] (it does
//! whenever it forgets the homes' terms — Redis went down or came back —
//! and when it hands the devices off on shutdown). A worker connection
//! bumps it too when it is new and when it reconnects during an append, as
//! the bridge's own reconnecting link makes its next append prove the
//! stream again. The bridge's fast path ([`super::events`]) requires the
//! same count, so after any invalidation its next append of each device
//! runs the script that proves the stream. Anything else — a refusal, no
//! answer, a stale ticket — and the room hands that same event (same seq)
//! to the bridge, which fences, proves or degrades as before.
//!
//! Correctness does not rest on the ticket alone: the `XADD` id
//! `<term>-<seq>` is refused by Redis itself once another instance claimed
//! the device (its marker's term is higher).
//!
//! A room also leaves its changed snapshot here ([`Lane::save_snapshot`])
//! for the bridge's next flush, instead of a message to the bridge per
//! event: a message would wake the bridge's thread once per snapshot event
//! only for it to file the snapshot until the flush.

use super::events::{fast_append, Fast};
use super::link::{Link, Topology};
use super::messages::Append;
use crate::ids::DeviceId;
use crate::wire::Snapshot;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a room needs to append on its own worker's connection (one
/// allocation, shared: a room clones it per event).
#[derive(Clone)]
pub struct Lane(Arc<Shared>);

pub struct Shared {
    /// Which lane this is, for [`WORKER_LINKS`] (unique in the process).
    id: usize,
    topology: Topology,
    /// The bridge's link, for its generation.
    bridge_link: Link,
    connected: Arc<AtomicBool>,
    invalidations: AtomicU64,
    history_size: usize,
    metrics: Arc<crate::metrics::Metrics>,
    /// Snapshots changed since the bridge's last flush, by device, each
    /// with the term it was numbered under.
    dirty_snapshots: Mutex<HashMap<DeviceId, TermSnapshot>>,
}

impl std::ops::Deref for Lane {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A snapshot and the term of the append after which it was taken: its
/// write is refused once a newer home (a higher term) wrote the device's.
pub(super) type TermSnapshot = (Snapshot, u64);

/// The bridge's word that `term` is proven for a device, and as of when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    term: u64,
    generation: u64,
    invalidations: u64,
}

/// How a lane append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneResult {
    /// Appended and published.
    Ok,
    /// Not tried: the ticket went stale, this worker has no connection,
    /// or its connection is new (made since the term was proven). The
    /// bridge takes the same event.
    Stale,
    /// Redis refused the id (another instance claimed the device, or the
    /// stream moved on), or this connection got no answer (it may be dead
    /// while Redis is fine). The bridge takes the same event, after it
    /// forgets the term ([`Unprove`](super::messages::Unprove)): it fences,
    /// proves the stream, or finds Redis down and delivers locally.
    Failed,
}

/// A worker's connection, and whether it was made just now.
struct WorkerLink {
    link: Link,
    fresh: bool,
}

thread_local! {
    /// This worker thread's connection of each lane (its driver runs on
    /// this thread), by lane: relays sharing a process never share one.
    static WORKER_LINKS: RefCell<Vec<(usize, Link)>> = const { RefCell::new(Vec::new()) };
}

impl Lane {
    pub fn new(
        topology: Topology,
        bridge_link: Link,
        connected: Arc<AtomicBool>,
        history_size: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Lane {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        Lane(Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            topology,
            bridge_link,
            connected,
            invalidations: AtomicU64::new(0),
            history_size: history_size.max(1),
            metrics,
            dirty_snapshots: Mutex::new(HashMap::new()),
        }))
    }

    /// `device`'s snapshot changed, after an append under `ticket`:
    /// written at the bridge's next flush (the latest one per device).
    pub fn save_snapshot(&self, device: DeviceId, snapshot: Snapshot, ticket: Ticket) {
        self.snapshots().insert(device, (snapshot, ticket.term));
    }

    /// A snapshot whose write failed, back for the next flush, unless the
    /// room left a newer one since it was taken.
    pub(super) fn restore_snapshot(&self, device: DeviceId, snapshot: TermSnapshot) {
        self.snapshots().entry(device).or_insert(snapshot);
    }

    /// The snapshots changed since the last call, for the bridge to write.
    pub(super) fn take_snapshots(&self) -> HashMap<DeviceId, TermSnapshot> {
        std::mem::take(&mut *self.snapshots())
    }

    /// True when a snapshot changed since the last take.
    pub(super) fn has_snapshots(&self) -> bool {
        !self.snapshots().is_empty()
    }

    /// The map, even if a thread panicked holding it (it holds whole
    /// snapshots only: nothing half-written).
    fn snapshots(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, TermSnapshot>> {
        self.dirty_snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every ticket given so far goes stale.
    pub(super) fn invalidate(&self) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times tickets were made stale so far.
    pub(super) fn count(&self) -> u64 {
        self.invalidations.load(Ordering::Acquire)
    }

    /// A ticket for `term`, proven on the bridge's link at `generation`,
    /// by an append (or claim) that began at invalidation count
    /// `invalidations`.
    pub(super) fn ticket(&self, term: u64, generation: u64, invalidations: u64) -> Ticket {
        Ticket {
            term,
            generation,
            invalidations,
        }
    }

    /// True while `ticket` still stands (what the bridge would check before
    /// its own fast path, plus the invalidations).
    pub fn holds(&self, ticket: Ticket) -> bool {
        self.connected.load(Ordering::Relaxed)
            && self.invalidations.load(Ordering::Acquire) == ticket.invalidations
            && self.bridge_link.generation() == ticket.generation
    }

    /// Appends `msg` under the ticket's term on this worker's connection.
    /// Timed and counted as the bridge's appends are.
    pub async fn append(&self, msg: &Append, ticket: Ticket) -> LaneResult {
        let Some(link) = self.worker_link().await else {
            return LaneResult::Stale;
        };
        if link.fresh {
            // A new connection: the term was proven before it existed.
            self.invalidate();
            return LaneResult::Stale;
        }
        let mut link = link.link;
        // Checked after the connection exists, so the append below runs on
        // a connection made before the check (as the bridge's does).
        if !self.holds(ticket) {
            return LaneResult::Stale;
        }
        let started = std::time::Instant::now();
        let before = link.generation();
        let fast = fast_append(&mut link, msg, ticket.term, self.history_size).await;
        if link.generation() != before {
            // Reconnected on the way: Redis may not be the one the term was
            // proven on; the next append proves it again through the bridge.
            self.invalidate();
        }
        match fast {
            Fast::Ok => {
                self.metrics.redis_published(started, true);
                self.metrics
                    .redis_appended(crate::metrics::AppendPath::Lane);
                LaneResult::Ok
            }
            // Not timed nor counted here: the bridge takes the event over
            // and times and counts how it ends.
            Fast::Refused | Fast::Down => LaneResult::Failed,
        }
    }

    /// This thread's connection, made on first use (then `fresh`).
    async fn worker_link(&self) -> Option<WorkerLink> {
        let id = self.id;
        let mine = |links: &Vec<(usize, Link)>| {
            links
                .iter()
                .find(|(l, _)| *l == id)
                .map(|(_, link)| link.clone())
        };
        if let Some(link) = WORKER_LINKS.with(|l| mine(&l.borrow())) {
            return Some(WorkerLink { link, fresh: false });
        }
        // Boxed, as it runs once per thread: the append's future (moved
        // into the room's context per event) would carry its size.
        let link = match Box::pin(Link::connect(&self.topology)).await {
            Ok(link) => link,
            Err(e) => {
                tracing::debug!(error = %e, "lane: no worker connection to Redis");
                return None;
            }
        };
        // Another room of this thread may have connected meanwhile: one
        // connection per thread, the first one kept.
        let link = WORKER_LINKS.with(|l| {
            let mut links = l.borrow_mut();
            mine(&links).unwrap_or_else(|| {
                links.push((id, link.clone()));
                link
            })
        });
        Some(WorkerLink { link, fresh: true })
    }
}
