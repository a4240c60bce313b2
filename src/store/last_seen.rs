//! `LastSeenWriter`: records robots' `last_seen` off the socket actors.
//!
//! Socket actors only `note()` a device (never await the database); one task
//! owns the writes, coalescing repeats, and is drained on shutdown so no
//! write is cut off mid-query when the runtime stops.

use super::Store;
use crate::ids::{unix_now, DeviceId};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Handle the socket actors hold.
#[derive(Clone)]
pub struct LastSeenWriter {
    tx: mpsc::UnboundedSender<(DeviceId, i64)>,
}

/// Owned by the application: stops and drains the writer.
pub struct LastSeenTask {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

impl LastSeenWriter {
    /// Starts the writer on the current runtime.
    pub fn start(store: Store) -> (LastSeenWriter, LastSeenTask) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(DeviceId, i64)>();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        actix_rt::spawn(async move {
            let mut stopping = false;
            loop {
                let first = if stopping {
                    match rx.try_recv() {
                        Ok(item) => item,
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        item = rx.recv() => match item { Some(i) => i, None => break },
                        _ = &mut stop_rx => { stopping = true; rx.close(); continue; }
                    }
                };
                // Coalesce whatever else is queued: one write per device.
                let mut batch: HashMap<DeviceId, i64> = HashMap::new();
                batch.insert(first.0, first.1);
                while let Ok((d, t)) = rx.try_recv() {
                    batch.insert(d, t);
                }
                for (device, at) in batch {
                    if let Err(e) = store.touch_device(&device, at).await {
                        tracing::warn!(device_id = %device, error = %e, "recording last_seen failed");
                    }
                }
            }
            let _ = done_tx.send(());
        });
        (
            LastSeenWriter { tx },
            LastSeenTask {
                stop: stop_tx,
                done: done_rx,
            },
        )
    }

    /// The robot of `device` was seen now.
    pub fn note(&self, device: &DeviceId) {
        let _ = self.tx.send((device.clone(), unix_now()));
    }
}

impl LastSeenTask {
    /// Writes what is queued, then ends.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}
