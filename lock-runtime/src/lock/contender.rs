//! What a lock made of reentrant locks asks of each: a [`Redlock`](crate::Redlock) (one per
//! client) a [`Contender`] tried when the Redlock says, and [`raise_fence`]; a
//! [`MultiLock`](crate::MultiLock) (one per name) [`rearm`].
//!
//! A Redlock cannot leave its waiting to the wait engine of each client: it must hold a quorum
//! of them at once or none, so it tries all of them together, gives back what it took when it
//! missed the quorum, and waits for a release on any. Its contender on each client stays queued
//! between those tries, as a waiting task does, so a release on that client wakes it by name
//! (an acquisition that left the queue after each miss would be woken by nothing but its
//! timer: a release publishes only to a queued waiter).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    LockClient, LockError, LockGuard,
    core::{
        backend::Backend,
        keys::{FENCE_TTL, Keys},
        lease::{redis_millis, valid_until},
        meter::{Label, Meter},
        wait::{Attempt, Outcome},
        watchdog::Renewal,
    },
    lock::{
        REENTRANT,
        acquisition::Acquire,
        scripts::{FenceRaised, RAISE_FENCE},
    },
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
    /// The keys of the reentrant lock `name` on `client`, for [`Contender::new`]: made once per
    /// acquisition, however many contenders it makes.
    pub(crate) fn keys(client: &LockClient, name: &Arc<str>) -> Result<Arc<Keys>, LockError> {
        Ok(Arc::new(REENTRANT.layout.keys(&client.backend, name)?))
    }

    /// A contender for the lock of `keys` ([`Contender::keys`]) on `client`, asking for a fixed
    /// `lease` (checked by the caller) or the client's watchdog lease. Not measured on its own:
    /// the Redlock is, as a whole.
    pub(crate) fn new(client: &LockClient, keys: &Arc<Keys>, lease: Option<Duration>) -> Self {
        let backend = &client.backend;
        let member = Meter::new(REENTRANT.primitive, &Label::Member);
        Self {
            acquire: Acquire::new(&REENTRANT, backend, keys, lease, None, &member),
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
        self.keys.channel()
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
    let mut raise = RAISE_FENCE.prepare_invoke();
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

/// Re-arms the lease of `guard`'s hold to a full `lease` from now, provided `guard` still holds
/// the lock (the renewal script, as the watchdog sends it): `Ok(false)` when it does not (its
/// lease ran out, or it was taken away), and nothing changed. The guard's deadline is then timed
/// from the send of the request whose reply came back: that request set the TTL, or a later
/// copy of it did, so the deadline is never later than the key's expiry. Re-arming twice is
/// harmless, so a late copy needs no memo: it finds the hold gone, or extends it further.
///
/// # Errors
///
/// [`LockError::Redis`] if Redis could not be reached within the retry timeout.
pub(crate) async fn rearm(guard: &LockGuard, lease: Duration) -> Result<bool, LockError> {
    let holder = guard.holder();
    let backend = &holder.backend;
    let mut renew = REENTRANT.layout.renew.prepare_invoke();
    renew
        .key(&holder.key)
        .arg(holder.owner.as_ref())
        .arg(redis_millis(lease));
    let context = || format!("re-arming the lease of lock `{}`", guard.name());
    let rearmed = backend
        .in_context(backend.scripts.eval::<Renewal>(&renew, None, context))
        .await?;
    match rearmed.reply {
        Renewal::Renewed => {
            holder.lease.extend_to(valid_until(rearmed.sent, lease));
            Ok(true)
        }
        Renewal::Lost => Ok(false),
    }
}
