//! Graceful stop (SIGTERM in `serve`): [`AppHandle::shutdown`] takes an
//! instance out of a running cluster without losing what it received, and
//! is over within `server.shutdown_timeout_s` (the budget, `T`).
//!
//! In order, each step bounded by its share of `T`:
//! 1. Stop accepting, and close the listening socket itself, so a client
//!    (or nginx) reconnecting now is refused at once and goes elsewhere
//!    instead of waiting in this instance's accept queue.
//! 2. Clustered: mark every device whose robot is here as being handed off
//!    (`wimz:{<device>}:handoff`), so another instance that the robot reaches
//!    next waits for our last events before it takes the device over.
//! 3. Robots ([`Phase::Closing`], until 0.4 T): each gets a close frame
//!    1012 and is read until it answers the close (or, at 0.4 T,
//!    [`Phase::Now`], is dropped): an event it sent before it saw our close
//!    still reaches its room. Each robot socket then detaches; its room
//!    appends and delivers its last events and `robot_disconnected`, and
//!    releases the device in Redis.
//! 4. Rooms drain (until 0.8 T): every room handles what it was sent.
//! 5. Clustered: hand off what is left: claims still ours are deleted and
//!    every instance is told we are gone (mirrors say the robot left at
//!    once, not after `cluster.presence_ttl_s`); from here no event is
//!    appended for this instance.
//! 6. Apps get 1012 after every event already queued to them (until T).
//! 7. The HTTP server stops; [`crate::startup::Application::run_until_stopped`]
//!    returns at T at the latest, whatever is still open.

use crate::config::secs;
use crate::metrics::{get_i, Metrics};
use crate::room::messages::DrainRooms;
use crate::startup::AppHandle;
use std::time::{Duration, Instant};

pub use crate::state::Phase;

/// The close code of a relay going away to come back (1012).
pub use crate::wire::close::RESTART;

impl AppHandle {
    /// Graceful stop, losing nothing already received (module docs).
    pub async fn shutdown(&self) {
        let metrics: &Metrics = &self.state.metrics;
        let budget = secs(self.state.settings.server.shutdown_timeout_s);
        let started = Instant::now();
        let at = |share: f64| started + budget.mul_f64(share);

        self.server.pause().await;
        self.close_listener();
        if let Some(bridge) = &self.state.cluster {
            let mark = bridge.send(crate::cluster::messages::BeginHandOff { ttl: budget });
            let _ = tokio::time::timeout_at(at(0.1).into(), mark).await;
        }

        let _ = self.robots_down.send(Phase::Closing);
        wait_until(|| get_i(&metrics.robots_online) == 0, at(0.4)).await;
        let _ = self.robots_down.send(Phase::Now);
        wait_until(|| get_i(&metrics.robots_online) == 0, at(0.5)).await;

        let drained = self.state.directory.send(DrainRooms);
        if tokio::time::timeout_at(at(0.8).into(), drained)
            .await
            .is_err()
        {
            tracing::warn!("rooms did not drain within the shutdown budget");
        }
        if let Some(bridge) = &self.state.cluster {
            let finish = bridge.send(crate::cluster::messages::FinishHandOff);
            let _ = tokio::time::timeout_at(at(0.9).into(), finish).await;
        }

        let _ = self.apps_down.send(Phase::Closing);
        wait_until(|| get_i(&metrics.apps_connected) == 0, at(0.95)).await;
        // Let the dispatchers put the close frames on the wire.
        tokio::time::sleep_until(
            at(1.0)
                .min(Instant::now() + Duration::from_millis(100))
                .into(),
        )
        .await;
        let _ = self.robots_down.send(Phase::Now);
        let _ = self.apps_down.send(Phase::Now);
        // Whatever is still open (a request in flight, an idle keep-alive
        // connection) is not waited for past the budget.
        let stop = self.server.stop(true);
        if tokio::time::timeout_at(at(1.0).into(), stop).await.is_err() {
            tracing::warn!("HTTP server did not stop within the shutdown budget");
        }
        self.stopped.notify_one();
    }

    /// New connections are refused from now on rather than queued: the
    /// accept loop is paused (the caller did that first), and a listening
    /// socket that is shut down stops listening (Linux), while this
    /// process still holds it.
    fn close_listener(&self) {
        if let Some(listener) = &self.listener {
            if let Err(e) =
                socket2::SockRef::from(listener.as_ref()).shutdown(std::net::Shutdown::Read)
            {
                tracing::debug!(error = %e, "could not shut the listening socket down");
            }
        }
    }
}

async fn wait_until(done: impl Fn() -> bool, deadline: Instant) {
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
