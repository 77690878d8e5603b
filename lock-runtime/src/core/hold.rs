//! Holds: giving back what a request took, on every path, whoever stops waiting.
//!
//! Three rules, the same for every primitive:
//!
//! 1. **A request in flight is undone if its caller gives up.** While an acquire (or a re-entry)
//!    is on the wire, an [`InFlight`] guard is armed with the [`GiveBack`] that would undo it.
//!    If the caller's future is dropped before the reply arrives (a timeout, a `select!`, a
//!    dropped task), the undo runs on the background runtime, tried again while Redis cannot be
//!    reached until a copy of the request can no longer land. The undo scripts also leave a mark
//!    (an abandoned owner id; a re-entry's number spent in its owner's record, in the lock's own
//!    hash), so a copy of the request still queued on a retired connection, arriving later,
//!    takes nothing.
//! 2. **A hold is released when its guard goes**, from the background runtime, so that works in
//!    any `Drop`: a panic unwinding, a cancelled future, even outside a runtime.
//! 3. **A release once started finishes.** [`Hold::release_now`] runs the release inline and,
//!    if its caller stops waiting half-way (`timeout(…, guard.unlock())`), hands the rest to the
//!    background runtime ([`RunToEnd`]) instead of dropping it. So does any request that must
//!    take effect once started, though it gives nothing back (a latch's count-down).
//!
//! Renewal stops synchronously when a release starts, before anything is sent, so the watchdog
//! never renews a hold that is being given back.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use tokio::{sync::OwnedMutexGuard, time::Instant};

use crate::{
    core::{
        backend::Backend,
        meter::{Holding, Meter},
        watchdog::RenewalId,
    },
    error::LockError,
    transport::failure::is_transient,
};

/// A script call that gives back what a hold (or a request in flight) took: a primitive's
/// release or undo. Sent through the backend's script path, so it is resent on transient errors.
pub(crate) trait GiveBack: Send + Sync + 'static {
    /// The resource's name, for errors and logs.
    fn name(&self) -> &str;

    /// Sends the give-back and says how it went.
    fn give_back<'a>(&'a self, backend: &'a Backend) -> BoxFuture<'a, Result<(), LockError>>;

    /// The fencing state of the hold may now count from `token` (a Redlock raised it to the
    /// quorum's token): a give-back that names its hold by token names this one from now on.
    fn fence_raised(&self, _token: u64) {}
}

/// A watchdog registration, shared by a hold and the re-entries of it: the owner's holds are
/// renewed until the last of them starts its release. An outer guard released before a
/// re-entry guard that outlived its scope leaves the re-entry renewed (the owner id and its lease
/// are the same).
#[derive(Debug)]
pub(crate) struct Renewal {
    backend: Arc<Backend>,
    id: RenewalId,
}

impl Renewal {
    pub(crate) fn new(backend: Arc<Backend>, id: RenewalId) -> Self {
        Self { backend, id }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.backend.watchdog.unregister(self.id);
    }
}

/// What a guard owns: a hold in Redis and how to give it back.
pub(crate) struct Hold {
    backend: Arc<Backend>,
    release: Box<dyn GiveBack>,
    /// The watchdog registration of a renewed hold, shared with its re-entries; a fixed lease
    /// has none.
    renewal: Option<Arc<Renewal>>,
    /// A re-entry's turn in its scope (see `core/scope.rs`), given up when the release starts.
    reentry: Option<OwnedMutexGuard<()>>,
    /// The hold's time being measured, recorded when the release starts; a re-entry's and a
    /// give-back's are not.
    holding: Option<Holding>,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("name", &self.release.name())
            .field("renewed", &self.renewal.is_some())
            .finish_non_exhaustive()
    }
}

impl Hold {
    pub(crate) fn new(
        backend: Arc<Backend>,
        release: Box<dyn GiveBack>,
        renewal: Option<Arc<Renewal>>,
        reentry: Option<OwnedMutexGuard<()>>,
    ) -> Self {
        Self {
            backend,
            release,
            renewal,
            reentry,
            holding: None,
        }
    }

    /// Measures this hold's time in `meter`'s series, from now until its release starts.
    pub(crate) fn measured(mut self, meter: &Meter) -> Self {
        self.holding = Some(meter.holding());
        self
    }

    /// See [`GiveBack::fence_raised`].
    pub(crate) fn fence_raised(&self, token: u64) {
        self.release.fence_raised(token);
    }

    /// Stops renewing (unless another hold of the owner still shares the renewal) and leaves the
    /// scope's re-entry turn: the release is starting.
    fn start_release(&mut self) {
        self.holding = None;
        self.renewal = None;
        self.reentry = None;
    }

    /// Releases now and says how it went. If the returned future is dropped before it completes,
    /// the release goes on in the background.
    pub(crate) fn release_now(mut self) -> RunToEnd {
        self.start_release();
        RunToEnd::new(
            Arc::clone(&self.backend),
            Box::pin(async move {
                let Self {
                    backend, release, ..
                } = &self;
                backend.in_context(release.give_back(backend)).await
            }),
        )
    }

    /// Releases from the background runtime, without waiting; failures are logged.
    pub(crate) fn release_in_background(mut self) {
        self.start_release();
        let backend = Arc::clone(&self.backend);
        backend.spawn(async move {
            if let Err(err) = self.release.give_back(&self.backend).await {
                log_background_failure(&err);
            }
        });
    }
}

/// A guard's hold: released in the background when dropped, unless released before. What
/// every guard of the family owns ([`LockGuard`](crate::LockGuard),
/// [`SemaphorePermit`](crate::SemaphorePermit)).
#[derive(Debug)]
pub(crate) struct ReleaseOnDrop(Option<Hold>);

impl ReleaseOnDrop {
    pub(crate) fn new(hold: Hold) -> Self {
        Self(Some(hold))
    }

    /// Releases once polled and says how it went (see [`Hold::release_now`]); dropped before,
    /// the release goes out in the background, as this guard's drop sends it.
    ///
    /// Not an `async fn`, which would keep this guard twice in the future (as its argument and
    /// as the local it is moved into), and the future a caller's task holds while the release
    /// is on its way is that much larger.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps its argument twice"
    )]
    pub(crate) fn release(
        mut self,
    ) -> impl Future<Output = Result<(), LockError>> + Send + 'static {
        async move {
            // A statement of its own: the `Option` taken from the guard is gone before the
            // await, instead of living in the future beside the release.
            let release = match self.0.take() {
                Some(hold) => hold.release_now(),
                None => return Ok(()),
            };
            release.await
        }
    }
}

impl ReleaseOnDrop {
    /// See [`GiveBack::fence_raised`].
    pub(crate) fn fence_raised(&self, token: u64) {
        if let Some(hold) = &self.0 {
            hold.fence_raised(token);
        }
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some(hold) = self.0.take() {
            hold.release_in_background();
        }
    }
}

/// A release that finishes even if its caller stops waiting: polled inline, and handed to the
/// background runtime if dropped half-way. Any request that must take effect once started runs
/// this way too (a latch's count-down).
#[must_use = "a release does nothing until awaited (or dropped, which finishes it in the background)"]
pub(crate) struct RunToEnd {
    backend: Arc<Backend>,
    release: Option<BoxFuture<'static, Result<(), LockError>>>,
}

impl RunToEnd {
    /// Wraps `release`; dropped, even before its first poll, it runs on the background runtime.
    /// Create it where the work is to start (inside an `async fn`'s body, which runs only once
    /// polled), not where a lazy future would be expected.
    pub(crate) fn new(
        backend: Arc<Backend>,
        release: BoxFuture<'static, Result<(), LockError>>,
    ) -> Self {
        Self {
            backend,
            release: Some(release),
        }
    }
}

impl Future for RunToEnd {
    type Output = Result<(), LockError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(release) = self.release.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let output = std::task::ready!(release.as_mut().poll(cx));
        self.release = None;
        Poll::Ready(output)
    }
}

impl Drop for RunToEnd {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            self.backend.spawn(async move {
                if let Err(err) = release.await {
                    log_background_failure(&err);
                }
            });
        }
    }
}

/// Logs a request that failed where nobody awaits it (a release, or a count-down, left to finish
/// in the background): at `warn`, as a lock it was releasing stays held until its lease runs
/// out; at `debug` when the hold was gone already (its lease ran out, warned of when noticed).
/// The error names the lock.
fn log_background_failure(err: &LockError) {
    if err.is_not_held() {
        tracing::debug!(error = %err, "a release in the background found the hold gone");
    } else {
        tracing::warn!(
            error = %err,
            "a request left to finish in the background failed; a lock it was releasing stays held until its lease runs out"
        );
    }
}

/// Armed while a request that may take something is on the wire; if dropped armed, gives back
/// in the background whatever the request may have taken. The undo is kept in place, and boxed
/// only if it has to run: nearly every request gets its reply.
pub(crate) struct InFlight<U: GiveBack> {
    backend: Arc<Backend>,
    undo: Option<U>,
}

impl<U: GiveBack> InFlight<U> {
    /// Arms the undo of a request about to be sent.
    pub(crate) fn arm(backend: &Arc<Backend>, undo: U) -> Self {
        Self {
            backend: Arc::clone(backend),
            undo: Some(undo),
        }
    }

    /// The reply arrived: nothing to undo (the caller now owns whatever was taken).
    pub(crate) fn disarm(mut self) {
        self.undo = None;
    }
}

impl<U: GiveBack> Drop for InFlight<U> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            undo_in_background(&self.backend, Box::new(undo));
        }
    }
}

/// Runs `undo` on the background runtime, for a caller that gave up: what an [`InFlight`]
/// dropped armed does, and what an acquisition still queued does when it ends without a guard.
pub(crate) fn undo_in_background(backend: &Arc<Backend>, undo: Box<dyn GiveBack>) {
    backend.spawn(undo_until_it_lands(Arc::clone(backend), undo));
}

/// The first pause before an undo that failed is tried again; doubled after each failure.
const FIRST_UNDO_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause between two tries of an undo.
const MAX_UNDO_PAUSE: Duration = Duration::from_secs(30);

/// Undoes a request whose caller gave up, trying again while Redis cannot be reached, until the
/// undo lands or no copy of the request can reach Redis any more (`Config::abandoned_ttl` from
/// now: every copy was sent before). An undo given up after its retry timeout would leave the
/// request's copy, still on its way, free to take a hold for an owner that is gone, held until its
/// lease runs out (a re-entry's would keep the lock held after its outer guard's release). The
/// undo scripts count once however often they run, so a late try is harmless.
async fn undo_until_it_lands(backend: Arc<Backend>, undo: Box<dyn GiveBack>) {
    tracing::debug!(lock = undo.name(), "undoing a request whose caller gave up");
    let horizon = Instant::now().checked_add(backend.config.abandoned_ttl());
    let mut pause = FIRST_UNDO_PAUSE;
    loop {
        let err = match undo.give_back(&backend).await {
            Ok(()) => return,
            Err(err) => err,
        };
        let unreachable = matches!(&err, LockError::Redis { source, .. } if is_transient(source));
        let in_time = horizon.is_none_or(|horizon| Instant::now() + pause < horizon);
        if !unreachable || !in_time {
            tracing::debug!(lock = undo.name(), error = %err, "undo failed");
            return;
        }
        tracing::debug!(lock = undo.name(), error = %err, ?pause, "undo failed; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_UNDO_PAUSE);
    }
}
