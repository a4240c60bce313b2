//! Supervision that survives panics.
//!
//! actix's `Supervisor` restarts an actor that *stops*. A panic inside a
//! handler is another matter: it unwinds out of the actor's task, the task
//! is dropped with the actor's mailbox, and every `Addr` of the actor is dead
//! for good. [`start`] and [`start_in_arbiter`] run the same future actix
//! runs for an actor (its `ContextFut`), but poll it inside `catch_unwind`.
//!
//! After a caught panic the actor is restarted the way actix restarts a
//! stopped one: `ContextFut::restart` drops the context's spawned and
//! waited-on futures (one of them may be the half-run future that panicked),
//! resets the context to running, calls the actor's
//! [`Supervised::restarting`], and on the next poll its `started` again. The
//! mailbox is kept, so every existing `Addr` stays valid and messages queued
//! behind the one that panicked are handled next; the message that panicked
//! is lost (a `send` waiting on it gets `MailboxError::Closed`).
//!
//! What happens next is the actor's [`OnStop`] policy:
//! - [`OnStop::Restart`] (long-lived actors: the directory, the session
//!   supervisor, the cluster bridge): restarted after a panic and also after
//!   stopping by itself, keeping its state; `restarting` repairs what a
//!   half-run handler may have left.
//! - [`OnStop::End`] (device rooms): an actor that stops is done. After a
//!   panic it is restarted once only so that its `restarting` can end it
//!   cleanly (it must call `ctx.stop()` there); a panic while ending drops it.
//!
//! Restarts are immediate for the first few failures; a failure loop backs
//! off exponentially (up to [`MAX_BACKOFF`]) so it cannot spin a core. Every
//! caught panic is logged at error level with the actor's name and, if it
//! is a literal in the code, the panic's message (a formatted one may quote
//! runtime data, such as a frame's payload), and counted in
//! `actor_panics`; restarts are counted in `actor_restarts` (`/stats`,
//! `/metrics`). The process's panic hook still prints the panic to stderr.
//!
//! An actor stops being supervised when its mailbox has no sender left
//! (nobody can reach it), exactly as with actix's `Supervisor`.
//!
//! All of this needs panics to unwind (Rust's default; Cargo.toml must not
//! set `panic = "abort"`). A panic while already unwinding still aborts.

use crate::metrics::{inc, Metrics};
use actix::dev::ContextFut;
use actix::prelude::*;
use actix::ArbiterHandle;
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

/// Failures restarted at once before backing off.
const FREE_RESTARTS: u32 = 3;
/// First back-off delay; doubled per further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest back-off delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A failure this long after the previous one starts the count afresh.
const CALM: Duration = Duration::from_secs(60);
/// Panic messages are logged up to this many bytes.
const MAX_MESSAGE: usize = 200;

/// What the supervisor does when the actor stops by itself (not a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// Restart it (long-lived actors).
    Restart,
    /// It is done; after a panic, restart it once so it can end cleanly.
    End,
}

/// Makes a test panic inside the handler of the actor it is sent to. Only
/// tests send it (no route or socket frame does); it exists to prove that a
/// panic is caught and what follows it.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Starts `f`'s actor in the current arbiter under panic-catching supervision.
pub fn start<A, F>(name: &'static str, metrics: Arc<Metrics>, on_stop: OnStop, f: F) -> Addr<A>
where
    A: Actor<Context = Context<A>> + Supervised,
    F: FnOnce(&mut Context<A>) -> A,
{
    let mut mailbox = Mailbox::new();
    let act = f(&mut mailbox.0);
    mailbox.start(name, metrics, on_stop, act)
}

/// An actor's mailbox (its context), made before the actor: its address
/// can be handed to another actor this one needs at construction. Start-up
/// builds the directory's and the session supervisor's first, so the
/// cluster bridge gets their recipients when it is made and they get the
/// bridge's address when they are (no second, "set it later" phase).
/// Messages sent before [`Mailbox::start`] wait in the mailbox.
pub struct Mailbox<A: Actor<Context = Context<A>>>(Context<A>);

impl<A> Mailbox<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Mailbox(Context::new())
    }

    pub fn address(&self) -> Addr<A> {
        self.0.address()
    }

    /// Runs `act` in this mailbox, in the current arbiter, under
    /// panic-catching supervision.
    pub fn start(
        self,
        name: &'static str,
        metrics: Arc<Metrics>,
        on_stop: OnStop,
        act: A,
    ) -> Addr<A> {
        let addr = self.0.address();
        let fut = self.0.into_future(act);
        actix_rt::spawn(Guard::new(fut, name, metrics, on_stop));
        addr
    }
}

/// Starts `f`'s actor in `arbiter` under panic-catching supervision.
pub fn start_in_arbiter<A, F>(
    arbiter: &ArbiterHandle,
    name: &'static str,
    metrics: Arc<Metrics>,
    on_stop: OnStop,
    f: F,
) -> Addr<A>
where
    A: Actor<Context = Context<A>> + Supervised,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    // actix's default mailbox capacity; actors raise it in `started`.
    let (tx, rx) = actix::dev::channel::channel(16);
    arbiter.spawn_fn(move || {
        let mut ctx = Context::with_receiver(rx);
        let act = f(&mut ctx);
        let fut = ctx.into_future(act);
        actix_rt::spawn(Guard::new(fut, name, metrics, on_stop));
    });
    Addr::new(tx)
}

/// Counts recent failures and says how long to wait before the next restart.
#[derive(Debug, Default)]
struct Backoff {
    recent: u32,
    last: Option<Instant>,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) > CALM) {
            self.recent = 0;
        }
        self.last = Some(now);
        self.recent = self.recent.saturating_add(1);
        if self.recent <= FREE_RESTARTS {
            return Duration::ZERO;
        }
        let doublings = (self.recent - FREE_RESTARTS - 1).min(16);
        (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
    }
}

/// What the log says about a panic. A message written as a literal in the
/// code (`panic!("...")`, `expect("...")`, `Option::unwrap`) is logged,
/// shortened. A formatted one may carry runtime data (a slicing panic quotes
/// the string it sliced, which may be a frame's payload), so it is withheld,
/// here and in the process's panic report (`telemetry::install_panic_hook`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let Some(text) = payload.downcast_ref::<&'static str>() else {
        return "(formatted message withheld: it may quote input)".into();
    };
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The future that runs one supervised actor.
struct Guard<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    /// `None` once given up (dropped inside `catch_unwind`).
    fut: Option<ContextFut<A, Context<A>>>,
    name: &'static str,
    metrics: Arc<Metrics>,
    on_stop: OnStop,
    backoff: Backoff,
    /// Set while waiting out a back-off before restarting.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `OnStop::End`: the actor panicked and is being ended.
    ending: bool,
}

/// What one step of the guard decided.
enum Next {
    /// Poll the actor again.
    Run,
    /// Waiting (the actor's own futures, or a back-off).
    Pending,
    /// Supervision is over.
    Done,
}

impl<A> Guard<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    fn new(
        fut: ContextFut<A, Context<A>>,
        name: &'static str,
        metrics: Arc<Metrics>,
        on_stop: OnStop,
    ) -> Self {
        Guard {
            fut: Some(fut),
            name,
            metrics,
            on_stop,
            backoff: Backoff::default(),
            pause: None,
            ending: false,
        }
    }

    /// Drops the actor (its context, then its mailbox) without letting a
    /// panic in its `stopping`/`stopped` escape.
    fn give_up(&mut self) -> Next {
        if let Some(fut) = self.fut.take() {
            if catch_unwind(AssertUnwindSafe(move || drop(fut))).is_err() {
                inc(&self.metrics.actor_panics);
                tracing::error!(actor = self.name, "actor panicked while being dropped");
            }
        }
        Next::Done
    }

    /// The actor panicked (`payload`) or stopped by itself (`None`).
    fn failed(&mut self, payload: Option<Box<dyn Any + Send>>) -> Next {
        let Some(payload) = payload else {
            return match self.on_stop {
                OnStop::End => self.give_up(), // stopped: done
                OnStop::Restart => self.restart_later(),
            };
        };
        inc(&self.metrics.actor_panics);
        let message = panic_message(payload.as_ref());
        match self.on_stop {
            OnStop::Restart => {
                tracing::error!(actor = self.name, panic = %message, "actor panicked; restarting it");
                self.restart_later()
            }
            OnStop::End if self.ending => {
                tracing::error!(actor = self.name, panic = %message, "actor panicked again while ending; dropping it");
                self.give_up()
            }
            OnStop::End => {
                tracing::error!(actor = self.name, panic = %message, "actor panicked; ending it");
                self.ending = true;
                self.restart()
            }
        }
    }

    /// Restarts now, or after a pause if the actor keeps failing.
    fn restart_later(&mut self) -> Next {
        let delay = self.backoff.next();
        if delay.is_zero() {
            return self.restart();
        }
        tracing::error!(
            actor = self.name,
            delay_ms = delay.as_millis() as u64,
            "actor keeps failing; restarting it after a pause"
        );
        self.pause = Some(Box::pin(tokio::time::sleep(delay)));
        Next::Run
    }

    /// Restarts the actor in its mailbox (see the module doc).
    fn restart(&mut self) -> Next {
        let Some(fut) = self.fut.as_mut() else {
            return Next::Done;
        };
        match catch_unwind(AssertUnwindSafe(|| fut.restart())) {
            Ok(true) => {
                if self.on_stop == OnStop::Restart {
                    inc(&self.metrics.actor_restarts);
                    tracing::warn!(actor = self.name, "actor restarted");
                }
                Next::Run
            }
            // Nobody holds an address: stopping was the right end.
            Ok(false) => self.give_up(),
            Err(p) => self.failed(Some(p)),
        }
    }

    fn step(&mut self, cx: &mut TaskContext<'_>) -> Next {
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Next::Pending;
            }
            self.pause = None;
            return self.restart();
        }
        let Some(fut) = self.fut.as_mut() else {
            return Next::Done;
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *fut).poll(cx))) {
            Ok(Poll::Pending) => Next::Pending,
            Ok(Poll::Ready(())) => self.failed(None),
            Err(p) => self.failed(Some(p)),
        }
    }
}

impl<A> Future for Guard<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this.step(cx) {
                Next::Run => continue,
                Next::Pending => return Poll::Pending,
                Next::Done => return Poll::Ready(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A counter that can be made to panic, in a handler or (while
    /// `broken`) in `started`.
    struct Toy {
        count: u32,
        starts: Arc<AtomicU32>,
        restarts: Arc<AtomicU32>,
        broken: Arc<AtomicBool>,
        /// Stops itself in `restarting` (the room's way of ending).
        end_on_restart: bool,
    }

    impl Actor for Toy {
        type Context = Context<Self>;
        fn started(&mut self, _ctx: &mut Context<Self>) {
            self.starts.fetch_add(1, Ordering::SeqCst);
            if self.broken.load(Ordering::SeqCst) {
                panic!("broken start");
            }
        }
    }

    impl Supervised for Toy {
        fn restarting(&mut self, ctx: &mut Context<Self>) {
            self.restarts.fetch_add(1, Ordering::SeqCst);
            if self.end_on_restart {
                ctx.stop();
            }
        }
    }

    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Bump;

    impl Handler<Bump> for Toy {
        type Result = u32;
        fn handle(&mut self, _: Bump, _ctx: &mut Context<Self>) -> u32 {
            self.count += 1;
            self.count
        }
    }

    impl Handler<InjectPanic> for Toy {
        type Result = ();
        fn handle(&mut self, _: InjectPanic, _ctx: &mut Context<Self>) {
            panic!("injected panic (test)");
        }
    }

    struct Probe {
        metrics: Arc<Metrics>,
        starts: Arc<AtomicU32>,
        restarts: Arc<AtomicU32>,
        broken: Arc<AtomicBool>,
    }

    fn toy(on_stop: OnStop) -> (Addr<Toy>, Probe) {
        let probe = Probe {
            metrics: Arc::new(Metrics::default()),
            starts: Arc::default(),
            restarts: Arc::default(),
            broken: Arc::default(),
        };
        let (starts, restarts, broken) = (
            probe.starts.clone(),
            probe.restarts.clone(),
            probe.broken.clone(),
        );
        let addr = start("toy", probe.metrics.clone(), on_stop, move |_| Toy {
            count: 0,
            starts,
            restarts,
            broken,
            end_on_restart: on_stop == OnStop::End,
        });
        (addr, probe)
    }

    #[actix_rt::test]
    async fn a_panic_in_a_handler_restarts_the_actor_in_its_mailbox_with_its_state() {
        let (addr, probe) = toy(OnStop::Restart);
        assert_eq!(addr.send(Bump).await.unwrap(), 1);
        assert!(addr.send(InjectPanic).await.is_err());
        // Same address, same state, handled after the restart.
        assert_eq!(addr.send(Bump).await.unwrap(), 2);
        assert_eq!(probe.restarts.load(Ordering::SeqCst), 1);
        assert_eq!(probe.starts.load(Ordering::SeqCst), 2);
        assert_eq!(probe.metrics.actor_panics.load(Ordering::SeqCst), 1);
        assert_eq!(probe.metrics.actor_restarts.load(Ordering::SeqCst), 1);
    }

    #[actix_rt::test]
    async fn a_panic_loop_backs_off_and_recovers_when_the_fault_goes() {
        let (addr, probe) = toy(OnStop::Restart);
        assert_eq!(addr.send(Bump).await.unwrap(), 1);
        probe.broken.store(true, Ordering::SeqCst);
        assert!(addr.send(InjectPanic).await.is_err());
        // Every restart panics in `started`. A hot loop would restart
        // thousands of times here; the back-off allows a handful.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let starts = probe.starts.load(Ordering::SeqCst);
        assert!((3..=10).contains(&starts), "{starts} starts");
        probe.broken.store(false, Ordering::SeqCst);
        // The next restart succeeds and the queued message is handled.
        let answer = tokio::time::timeout(MAX_BACKOFF * 2, addr.send(Bump)).await;
        assert_eq!(answer.expect("recovers within a back-off").unwrap(), 2);
    }

    #[actix_rt::test]
    async fn an_ending_actor_gets_one_restarting_call_and_is_dropped() {
        let (addr, probe) = toy(OnStop::End);
        assert!(addr.send(InjectPanic).await.is_err());
        assert!(addr.send(Bump).await.is_err(), "it ended");
        assert!(!addr.connected());
        assert_eq!(probe.restarts.load(Ordering::SeqCst), 1);
        assert_eq!(probe.metrics.actor_panics.load(Ordering::SeqCst), 1);
        assert_eq!(probe.metrics.actor_restarts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn backoff_is_free_then_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        for _ in 0..FREE_RESTARTS {
            assert_eq!(b.next(), Duration::ZERO);
        }
        assert_eq!(b.next(), FIRST_BACKOFF);
        assert_eq!(b.next(), FIRST_BACKOFF * 2);
        for _ in 0..40 {
            b.next();
        }
        assert_eq!(b.next(), MAX_BACKOFF);
    }

    #[test]
    fn only_literal_panic_messages_are_logged_and_shortened_on_a_char_boundary() {
        let long: &'static str = Box::leak("é".repeat(300).into_boxed_str());
        let long: Box<dyn Any + Send> = Box::new(long);
        let m = panic_message(long.as_ref());
        assert!(m.len() <= MAX_MESSAGE && m.chars().all(|c| c == 'é'));
        let literal: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(panic_message(literal.as_ref()), "boom");
        for formatted in [
            Box::new(String::from(
                "byte index 3 is not a char boundary of `payload`",
            )) as Box<dyn Any + Send>,
            Box::new(7u8),
        ] {
            assert!(!panic_message(formatted.as_ref()).contains("payload"));
        }
        // What std hands over for a literal and for a formatted panic.
        let caught = catch_unwind(|| panic!("literal")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "literal");
        let secret = "payload";
        let caught = catch_unwind(|| panic!("formatted {secret}")).unwrap_err();
        assert!(!panic_message(caught.as_ref()).contains(secret));
    }
}
