//! Futures and streams a socket actor spawns, polled only when they asked
//! to be.
//!
//! actix's context polls every future an actor spawned on *every* poll of
//! the actor (actix 0.13 `ContextFut::poll`: mailbox, then each item), so a
//! robot's socket actor polled its heartbeat `Sleep`, its slow-consumer
//! `Notified` and its two shutdown `watch` waits once per frame the robot
//! sent; each of the watch waits locks one of the mutexes of a `Notify`
//! every socket of the relay shares (profile at 20k/40k, docs/BENCHMARKS.md
//! "Where the CPU goes, after fixes 2–4": `Sleep::poll` 1.6 %,
//! `poll_notified` 1.0 % of the relay's samples). Wrapped in a [`Gated`],
//! such a future is polled by the context only when its own waker fired
//! since its last poll (or the actor's waker changed): one atomic load
//! otherwise. One [`Gate`] serves all of a socket's wrapped futures; a wake
//! of any one polls each of them once.

use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// What the wrapped futures wake: it counts the wakes and passes each on to
/// the actor's waker.
#[derive(Default)]
pub struct Gate {
    wakes: AtomicU64,
    actor: Mutex<Option<Waker>>,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// `inner`, polled only once its waker fired.
    pub fn wrap<F>(self: &Arc<Self>, inner: F) -> Gated<F> {
        Gated {
            inner,
            gate: self.clone(),
            seen: None,
            registered: None,
        }
    }
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Counted before the actor is woken: its next poll sees the count.
        self.wakes.fetch_add(1, Ordering::AcqRel);
        if let Some(actor) = self
            .actor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            actor.wake_by_ref();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future or stream behind a [`Gate`].
    pub struct Gated<F> {
        #[pin]
        inner: F,
        gate: Arc<Gate>,
        // the wake count at the last poll of `inner` (None: never polled)
        seen: Option<u64>,
        // the actor's waker the gate holds
        registered: Option<Waker>,
    }
}

impl<F> Gated<F> {
    /// The waker to poll `inner` with, if it is to be polled now.
    fn open(self: Pin<&mut Self>, cx: &Context<'_>) -> Option<(Pin<&mut F>, Waker)> {
        let this = self.project();
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            // A new actor waker (the first poll): hand it to the gate, and
            // poll `inner` so that nothing woken before is missed.
            *this.gate.actor.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            *this.registered = Some(cx.waker().clone());
            *this.seen = None;
        }
        let wakes = this.gate.wakes.load(Ordering::Acquire);
        if *this.seen == Some(wakes) {
            return None;
        }
        *this.seen = Some(wakes);
        Some((this.inner, Waker::from(this.gate.clone())))
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.open(cx) {
            Some((inner, waker)) => inner.poll(&mut Context::from_waker(&waker)),
            None => Poll::Pending,
        }
    }
}

impl<S: Stream> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let Some((inner, waker)) = self.as_mut().open(cx) else {
            return Poll::Pending;
        };
        let next = inner.poll_next(&mut Context::from_waker(&waker));
        if next.is_ready() {
            // A stream that yielded has not asked to be woken for its next
            // item (a tick's timer is set by the poll after it): poll again.
            *self.project().seen = None;
        }
        next
    }
}

/// A tick every `period`, the first one `period` from now (as actix's
/// `run_interval`); a late tick delays the next rather than bursting.
pub struct Ticks(tokio::time::Interval);

impl Ticks {
    pub fn every(period: std::time::Duration) -> Ticks {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks(interval)
    }
}

impl Stream for Ticks {
    type Item = ();

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.0.poll_tick(cx).map(|_| Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// An actor's waker that counts its wakes.
    struct Count(Arc<AtomicUsize>);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts its polls; ready once notified.
    struct Probe {
        polls: Arc<AtomicUsize>,
        notify: Arc<tokio::sync::Notify>,
    }

    fn probe(
        gate: &Arc<Gate>,
    ) -> (
        impl Future<Output = ()>,
        Arc<AtomicUsize>,
        Arc<tokio::sync::Notify>,
    ) {
        let p = Probe {
            polls: Arc::new(AtomicUsize::new(0)),
            notify: Arc::new(tokio::sync::Notify::new()),
        };
        let (polls, notify) = (p.polls.clone(), p.notify.clone());
        let fut = gate.wrap(async move {
            let notified = p.notify.notified();
            tokio::pin!(notified);
            std::future::poll_fn(|cx| {
                p.polls.fetch_add(1, Ordering::Relaxed);
                notified.as_mut().poll(cx)
            })
            .await
        });
        (fut, polls, notify)
    }

    #[tokio::test]
    async fn a_gated_future_is_polled_once_then_only_when_woken() {
        let gate = Gate::new();
        let (fut, polls, notify) = probe(&gate);
        let mut fut = Box::pin(fut);
        let actor_wakes = Arc::new(AtomicUsize::new(0));
        let waker = Waker::from(Arc::new(Count(actor_wakes.clone())));
        let mut cx = Context::from_waker(&waker);
        // The actor is polled a hundred times (frames): the future once.
        for _ in 0..100 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        assert_eq!(actor_wakes.load(Ordering::Relaxed), 0);
        // Its own wake-up reaches the actor, and the next poll polls it.
        notify.notify_one();
        assert_eq!(actor_wakes.load(Ordering::Relaxed), 1);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_new_actor_waker_polls_it_again_and_is_the_one_woken() {
        let gate = Gate::new();
        let (fut, polls, notify) = probe(&gate);
        let mut fut = Box::pin(fut);
        let first = futures_util::task::noop_waker();
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        let woken = Arc::new(AtomicUsize::new(0));
        let second = Waker::from(Arc::new(Count(woken.clone())));
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&second))
            .is_pending());
        assert_eq!(
            polls.load(Ordering::Relaxed),
            2,
            "polled again for the new waker"
        );
        notify.notify_one();
        assert_eq!(woken.load(Ordering::Relaxed), 1, "the new waker is woken");
    }

    #[tokio::test]
    async fn a_gated_stream_goes_on_yielding() {
        use futures_util::StreamExt;
        let gate = Gate::new();
        let mut ticks = gate.wrap(Ticks::every(std::time::Duration::from_millis(10)));
        for _ in 0..3 {
            // a hang guard only: without a poll after each item, the second
            // tick is never asked for and this times out
            tokio::time::timeout(std::time::Duration::from_secs(10), ticks.next())
                .await
                .expect("the next tick");
        }
    }

    #[tokio::test]
    async fn ticks_start_one_period_from_now_not_at_once() {
        use futures_util::StreamExt;
        let period = std::time::Duration::from_millis(50);
        let start = tokio::time::Instant::now();
        let mut ticks = Ticks::every(period);
        ticks.next().await;
        assert!(
            start.elapsed() >= period,
            "the first tick is one period away"
        );
        ticks.next().await;
        assert!(start.elapsed() >= 2 * period);
    }
}
