//! What a [`Redlock`](crate::Redlock) asks of the reentrant lock on each of its clients: a
//! [`Contender`] tried when the Redlock says, and [`raise_fence`] once a quorum agreed on a
//! token.
//!
//! A Redlock cannot leave its waiting to the wait engine of each client: it must hold a quorum
//! of them at once or none, so it tries all of them together, gives back what it took when it
//! missed the quorum, and waits for a release on any. Its contender on each client stays queued
//! between those tries, as a waiting task does, so a release on that client wakes it by name
//! (an acquisition that left the queue after each miss would be woken by nothing but its
//! timer: a release publishes only to a queued waiter).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::scripts::{FenceRaised, RAISE_FENCE};
use crate::{
    core::{
        backend::Backend,
        keys::{FENCE_TTL, Keys},
        lease::redis_millis,
        meter::Label,
        wait::{Attempt, Outcome},
    },
    error::LockError,
    family::{acquisition::Acquire, guard::LockGuard},
    lock::REENTRANT,
};

/// One owner's fresh acquisition of the reentrant lock `name` on one client, tried one request
/// at a time. Between tries that find the lock busy it stays queued in Redis (its liveness
/// refreshed by each try), so a release wakes it by [name](Contender::id) through the client's
/// hub. Dropped while queued, it leaves the queue in the background; dropped with a request in
/// flight, it undoes that request, as any acquisition does.
///
/// A contender that took the lock is spent: the guard carries its owner id, and the next try
/// needs a new contender.
pub(crate) struct Contender {
    acquire: Acquire,
    backend: Arc<Backend>,
    keys: Arc<Keys>,
}

impl Contender {
    /// The keys of the reentrant lock `name` on the client whose state is `backend`, for
    /// [`Contender::new`]: made once per acquisition, however many contenders it makes.
    pub(crate) fn keys(backend: &Backend, name: &Arc<str>) -> Result<Arc<Keys>, LockError> {
        Ok(Arc::new(REENTRANT.layout.keys(backend, name)?))
    }

    /// A contender for the lock of `keys` ([`Contender::keys`]) on the client whose state is
    /// `backend`, asking for a fixed `lease` (checked by the caller) or the client's watchdog
    /// lease. Not measured on its own: the Redlock is, as a whole.
    pub(crate) fn new(backend: &Arc<Backend>, keys: &Arc<Keys>, lease: Option<Duration>) -> Self {
        Self {
            acquire: Acquire::new(
                &REENTRANT,
                backend,
                Arc::clone(keys),
                lease,
                None,
                &Label::Member,
            ),
            backend: Arc::clone(backend),
            keys: Arc::clone(keys),
        }
    }

    /// Its owner id, which is also its waiter id: a release on this client that names it wakes
    /// it.
    pub(crate) fn id(&self) -> &Arc<str> {
        self.acquire.owner()
    }

    /// The channel its client's releases of this lock publish on.
    pub(crate) fn channel(&self) -> String {
        self.keys.channel().to_string()
    }

    /// Who held the lock at the last try that found it busy, in words, if known.
    pub(crate) fn holder(&self) -> Option<String> {
        self.acquire.holder()
    }

    /// Tries once: the guard, or `Busy` with the holder's remaining TTL (the contender is then
    /// queued). `deadline` bounds the resends of the request.
    ///
    /// # Cancel safety
    ///
    /// Dropped in flight, the request is undone in the background; the contender must then be
    /// dropped too (its owner id is marked abandoned).
    pub(crate) async fn try_once(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Outcome<LockGuard>, LockError> {
        Ok(match self.acquire.attempt(deadline).await? {
            Outcome::Done(taken) => Outcome::Done(taken.guard(&self.backend, &self.keys.name)),
            Outcome::Busy { ttl } => Outcome::Busy { ttl },
        })
    }
}

/// Raises the fencing state of `guard`'s lock to `token`, with the full fence TTL, so every
/// later token of that lock is above it, provided `guard` still holds the lock (see
/// `scripts/raise_fence.lua` for the clock condition this leaves). `Ok(false)` when it does not
/// (nothing changed). `deadline` bounds the resends.
///
/// # Errors
///
/// [`LockError::Redis`] if Redis could not be reached in time.
pub(crate) async fn raise_fence(
    guard: &LockGuard,
    token: u64,
    deadline: Option<Instant>,
) -> Result<bool, LockError> {
    let holder = guard.holder();
    let backend = &holder.backend;
    let keys = backend.keys(&Arc::from(guard.name()))?;
    let mut raise = RAISE_FENCE.prepare_invoke(backend.scripts.calls());
    raise
        .key(&keys.main)
        .key(keys.fence())
        .arg(holder.owner.as_ref())
        .arg(token.to_string())
        .arg(redis_millis(FENCE_TTL));
    let context = || format!("raising the fencing state of lock `{}`", keys.name);
    let raised = backend
        .in_context(
            backend
                .scripts
                .eval::<FenceRaised>(&raise, deadline, context),
        )
        .await?;
    Ok(raised.reply == FenceRaised::Raised)
}
