//! The library's own Tokio runtime, on which every client's background work runs.
//!
//! A client's connections, subscription hub, lease watchdog and background releases must not die
//! with the runtime that happened to create the client. A client kept in a `static` (the default
//! client) is used from many runtimes over its life: every `#[tokio::test]` builds and drops its
//! own. A task spawned on the creating runtime would stop with it, silently: waiters would then
//! sleep to the holder's TTL and held locks would stop being renewed.
//!
//! So the library keeps one small multi-threaded runtime per process (one worker thread, named
//! `lock-runtime`), built on first use and never shut down, and everything that must outlive a
//! caller runs there:
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

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use once_cell::sync::OnceCell;
use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::LockError;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// The background runtime, built on first use.
///
/// # Errors
///
/// [`LockError::Config`] if the operating system refuses the runtime its thread.
pub(crate) fn handle() -> Result<&'static Handle, LockError> {
    RUNTIME
        .get_or_try_init(|| {
            Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("lock-runtime")
                .enable_all()
                .build()
        })
        .map(Runtime::handle)
        .map_err(|err| {
            LockError::config(format!(
                "cannot start the lock runtime's background thread: {err}"
            ))
        })
}

pin_project_lite::pin_project! {
    /// A future polled inside the background runtime's context; see [`in_context`].
    #[derive(Debug)]
    pub(crate) struct InContext<F> {
        runtime: &'static Handle,
        #[pin]
        future: F,
    }
}

/// Polls `future` inside the background runtime's context, so that whatever it spawns (redis-rs's
/// connection drivers and reconnections) and the timers it creates belong to that runtime.
pub(crate) fn in_context<F: Future>(runtime: &'static Handle, future: F) -> InContext<F> {
    InContext { runtime, future }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.runtime.enter();
        this.future.poll(cx)
    }
}
