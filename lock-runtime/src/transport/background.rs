//! The runtime on which a client's background work runs: the library's own, or one the client
//! was given.
//!
//! A client's connections, subscription hub, lease watchdog and background releases must not die
//! with the runtime that happened to create the client. A client kept in a `static` (the default
//! client) is used from many runtimes over its life: every `#[tokio::test]` builds and drops its
//! own. A task spawned on the creating runtime would stop with it, silently: waiters would then
//! sleep to the holder's TTL and held locks would stop being renewed.
//!
//! So the library keeps one small multi-threaded runtime per process (one worker thread, named
//! `lock-runtime`), built on first use and never shut down, and by default everything that must
//! outlive a caller runs there:
//!
//! - the hub's listener and the watchdog's renewal task;
//! - releases and undos that must finish whoever stops waiting for them;
//! - the command connection's I/O: redis-rs spawns its connection driver and its reconnections
//!   on the *current* runtime, so requests are polled inside this runtime's context
//!   ([`in_context`]). The caller still awaits them on its own runtime, with no extra hop: only
//!   what redis-rs spawns lands here.
//!
//! The alternative, noticing a dead task and restarting it on the caller's runtime, would leave a
//! held lock unrenewed until someone happens to call into the client again.
//!
//! # A runtime of the application's
//!
//! The price is a thread between the application and Redis: every reply and every message is
//! read on the library's thread, which then wakes the task waiting for it on another thread,
//! and a request crosses the same way out. Where both threads sleep between requests, as they
//! do while a lock is held, each crossing is a thread woken up, which a contended hand-off pays
//! several times over. A service whose one runtime lives as long as its client can give the
//! client that runtime instead (`LockClientBuilder::background_runtime`, [`given`]): the
//! client's connections, listener, watchdog and releases then run on it, beside the tasks they
//! serve. Such a runtime may shut down while the client is still referenced; [`Background`]
//! notices (a task of its own on that runtime is dropped with every other), and the client's
//! requests are refused from then on rather than sent on connections nobody drives. The
//! library's own runtime is still started: it sweeps the deadlines of every client's requests
//! (`transport/deadline.rs`), and keeps the timers callers wait on ([`Background::timers`]),
//! which Tokio would panic on, were they the given runtime's, when a caller on another
//! runtime polls them after it shut down.

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll},
};

use once_cell::sync::OnceCell;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio_util::task::AbortOnDropHandle;

use crate::error::LockError;

/// A runtime a client's background work runs on (see the module's docs).
#[derive(Debug)]
pub(crate) struct Background {
    handle: Handle,
    /// Set when the runtime shut down (never for the library's own).
    stopped: AtomicBool,
}

impl Background {
    /// The runtime's handle, to spawn on and to create timers in: once it stopped, the
    /// library's own, so that a timer made afterwards (a guard's lease still runs out, see
    /// `Lease::lost`) works rather than panics, and a task spawned afterwards runs, finds the
    /// client's requests refused ([`check`](Self::check)), and ends.
    pub(crate) fn handle(&self) -> &Handle {
        match LIBRARY.get() {
            Some((_, library)) if self.is_stopped() => &library.handle,
            _ => &self.handle,
        }
    }

    /// The runtime the timers of this runtime's clients belong to: the library's own, which
    /// never shuts down. Tokio panics when a timer of a runtime that has shut down is polled,
    /// and a task waiting for a lock of a client given a runtime of the application's may be
    /// polled elsewhere when that runtime shuts down: its timers are the library's, so it wakes
    /// at its time, tries, and is refused ([`check`](Self::check)). What the client spawns, and
    /// its connections, stay on `self`. On the library's own runtime, `self`.
    pub(crate) fn timers(&'static self) -> &'static Background {
        LIBRARY.get().map_or(self, |(_, library)| library)
    }

    /// Whether the runtime shut down: nothing spawned there runs any more, and the connections
    /// it drove are closed.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Refuses a request once the runtime shut down (see the module's docs).
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] ([`Mistake::Misuse`](crate::error::Mistake::Misuse)) once the
    /// runtime shut down.
    pub(crate) fn check(&self) -> Result<(), LockError> {
        if self.is_stopped() {
            return Err(LockError::misuse(
                "the runtime this client was given (`LockClientBuilder::background_runtime`) \
                 has shut down, and with it the client's connections: build another client",
            ));
        }
        Ok(())
    }
}

static LIBRARY: OnceCell<(Runtime, Background)> = OnceCell::new();

/// The library's own runtime, built on first use.
///
/// # Errors
///
/// [`LockError::Config`] if the operating system refuses the runtime its thread.
pub(crate) fn library() -> Result<&'static Background, LockError> {
    LIBRARY
        .get_or_try_init(|| {
            let runtime = Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("lock-runtime")
                .enable_all()
                .build()?;
            let background = Background {
                handle: runtime.handle().clone(),
                stopped: AtomicBool::new(false),
            };
            Ok::<_, std::io::Error>((runtime, background))
        })
        .map(|(_, background)| background)
        .map_err(|err| {
            LockError::config(format!(
                "cannot start the lock runtime's background thread: {err}"
            ))
        })
}

/// A runtime of the application's, for one client: its handle is kept for the rest of the
/// process, as the library's own runtime is (the futures of the client's requests refer to it
/// by a `'static` reference, as they do to the library's, so none of them grows), and with it
/// the runtime's shared state once the runtime has shut down (its drivers' tables: kilobytes).
/// A task on the runtime marks it stopped when the runtime drops it at shutdown; the task ends
/// with the returned handle, which the client keeps.
pub(crate) fn given(handle: Handle) -> (&'static Background, AbortOnDropHandle<()>) {
    let background: &'static Background = Box::leak(Box::new(Background {
        handle,
        stopped: AtomicBool::new(false),
    }));
    let watch = StopWatch(&background.stopped);
    let watching = background.handle.spawn(async move {
        let _watch = watch;
        std::future::pending::<()>().await;
    });
    (background, AbortOnDropHandle::new(watching))
}

/// Marks its runtime stopped when dropped: held by a task that never ends, so dropped only with
/// the runtime (or with the client, when nothing reads the mark any more).
struct StopWatch(&'static AtomicBool);

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

pin_project_lite::pin_project! {
    /// A future polled inside the background runtime's context; see [`in_context`].
    #[derive(Debug)]
    pub(crate) struct InContext<F> {
        runtime: &'static Background,
        #[pin]
        future: F,
    }
}

/// Polls `future` inside the background runtime's context, so that whatever it spawns (redis-rs's
/// connection drivers and reconnections) and the timers it creates belong to that runtime.
pub(crate) fn in_context<F: Future>(runtime: &'static Background, future: F) -> InContext<F> {
    InContext { runtime, future }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.runtime.handle().enter();
        this.future.poll(cx)
    }
}
