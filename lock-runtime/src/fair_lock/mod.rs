//! [`FairLock`]: the reentrant lock, first come first served across every process.
//!
//! What is the fair lock's own: one Lua script (`scripts/acquire.lua`: take the lock if it is
//! free and this owner heads the queue, else queue) and its [`Flavor`], which asks for direct
//! hand-over. Everything else (the release passing the lock on, leaving the queue, re-entry) is
//! the family's (`family/`: its engine and the one-owner layout's scripts, shared with the
//! reentrant lock) and the core's.
//!
//! How it behaves, and how it is kept in Redis, is documented on the handle itself.

use crate::{
    core::scope::HoldKind,
    error::LockError,
    family::{
        flavor::{Flavor, ONE_OWNER, no_refusal, nothing_alongside},
        handle::{Handle, handle_methods},
        info::{self, LockInfo},
    },
};

pub(crate) mod scripts;

use scripts::ACQUIRE;

/// The fair lock: a free lock goes to the head of the queue only.
pub(crate) static FAIR: Flavor = Flavor {
    kind: HoldKind::Fair,
    primitive: "fair_lock",
    noun: "fair lock",
    acquire: &ACQUIRE,
    hand_over: true,
    layout: &ONE_OWNER,
    fresh: nothing_alongside,
    refused: no_refusal,
};

/// A handle to one fair lock, made by
/// [`LockClient::fair_lock`](crate::LockClient::fair_lock). Cheap to clone; holds nothing.
///
/// Like [`Lock`](crate::Lock) (exclusive across processes, reentrant within a
/// [scope](crate::LockGuard::scope), fencing tokens, watchdog or fixed lease, release on every exit
/// path), and first come first served: waiters get the lock in the order of their first try,
/// whatever process or task they run in, and a newcomer never overtakes a waiter. The fair lock
/// and the reentrant lock of the same name share one Redis key, so they exclude each other (but
/// only the fair lock's waiters keep to the queue).
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let jobs = client.fair_lock("jobs");
/// let guard = jobs.try_acquire(Duration::from_secs(30), None).await?;
/// // ... the critical section, entered in turn ...
/// guard.unlock().await?;
/// # Ok(()) }
/// ```
///
/// # The queue
///
/// Waiters queue in Redis, in the lock's hash slot, under their owner id, in the order of their
/// first try. A free lock goes to the head of the queue only (no barging by newcomers). Each
/// waiter has a liveness deadline in Redis, renewed by each of its tries; a waiter tries again
/// at least every third of the client's `watchdog_timeout` (10 s by default), so a waiter whose
/// process died (or whose task was cancelled and whose undo was lost) drops out of the queue
/// one `watchdog_timeout` after its last try. A waiter that gives up (its wait ran out, its
/// future dropped) leaves the queue at once, passing the lock on if it was free or its own. A
/// waiter taken out at the head of the queue while it still waits (dropped as gone while its
/// process stalled, or handed the lock without seeing it, below) goes back to the head at its
/// next try: everyone still queued came after it.
///
/// # Direct hand-over
///
/// The release does not wake the head to try: in the same script it makes the first live
/// waiter the owner (its own owner id, the lease it asked for, the next fencing token), takes it
/// out of the queue, and publishes `to:<owner id> <token> <server time>`. Only that waiter's
/// process acts on the message, and the waiting task returns its guard without another request:
/// a hand-off costs one pub/sub delivery, an acquisition under contention about two client
/// commands (the try that queued, the release).
///
/// - **The lease of a hold handed over** runs from the hand-over, which the waiter did not see.
///   Its last try that found the lock busy was sent at a known instant and ran at a known server
///   time; the hand-over ran a known server time later; so the hand-over came at least that much
///   later than the send, by a local clock that may drift 1 % from the server's. The guard's
///   deadline is timed from there, never later than the key's expiry in Redis (a server whose
///   wall clock jumps forward breaks this, as it breaks every lease in Redis, whose expiries run
///   on that clock).
/// - **A message that goes astray** (pub/sub is at-most-once) costs one timer, never the
///   waiter's turn. A waiter that takes a direct hand-over sleeps at most a third of the lease
///   it would be handed (as the watchdog renews every third of its lease), and at most the
///   holder's remaining lease: its next try lands long before the lease it was handed runs out
///   unused, finds the hold its own and re-arms it. In watchdog mode that is a third of the
///   watchdog timeout, as for every waiter; a waiter with a shorter fixed lease tries more often
///   while it waits (three tries per lease, one script call each). Should the try come too late
///   all the same (Redis or the waiter's process stalled for two thirds of the lease), the hold
///   has run out and the waiter is out of the queue (the release took it out as the head): it
///   then takes its place back at the head of the queue, not the back, so it is served next,
///   after at most the waiters that took the lock while it was out.
/// - **A head that is gone** (its process died) holds the lock it was handed until the lease it
///   asked for runs out. So only a waiter whose lease is at most its liveness period
///   (`watchdog_timeout`; watchdog mode always is) takes a direct hand-over: a dead head costs at
///   most one liveness period. A waiter with a longer fixed lease, or one whose client waits for
///   replicas (the `WAIT` must follow the request that took the lock), is woken by name and takes
///   the lock with a try, as the reentrant lock's waiters are.
/// - **A head whose future is dropped** as the lock is handed to it gives it back in its undo,
///   which passes it on to the next waiter at once.
///
/// What Redisson's fair lock gets wrong, and this one does not: a live waiter is never purged for
/// waiting long (its tries keep it live; Redisson issue 3004); the queue keys carry TTLs, so
/// neither expired leases nor timed-out waits leave stale keys (issues 3730, 5019); every wait is
/// bounded by Redis's answer, never negative (issues 4705, 5503).
#[derive(Debug, Clone)]
pub struct FairLock {
    handle: Handle,
}

impl FairLock {
    handle_methods! {
        new;
        metrics_label;
        /// The lock's name.
        name;

        /// Waits, in turn, as long as it takes for the lock, then holds it in watchdog mode: the
        /// lease is renewed while the guard lives.
        ///
        /// # Errors
        ///
        /// As [`Lock::acquire`](crate::Lock::acquire).
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped, the waiter leaves the queue (and whatever a
        /// request in flight may have taken is given back) in the background.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let guard = client.fair_lock("nightly-report").acquire().await?;
        /// // ... held, and renewed by the watchdog, until the guard goes ...
        /// guard.unlock().await?;
        /// # Ok(()) });
        /// ```
        acquire(FAIR);

        /// Waits, in turn, at most `wait` for the lock; with `lease = Some(d)` holds it for at most
        /// `d` (never renewed), with `None` in watchdog mode. Any `wait` is valid, as for
        /// [`Lock::try_acquire`](crate::Lock::try_acquire).
        ///
        /// # Errors
        ///
        /// [`LockError::Timeout`] if the lock did not come to this waiter's turn within the wait
        /// (the waiter then leaves the queue), and the errors of [`FairLock::acquire`]. A lease out
        /// of range is a [`LockError::Config`]
        /// ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error. A lease too short
        /// to outlast the round trip that set it is a [`LockError::LeaseLost`], and nothing stays
        /// held.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`FairLock::acquire`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.fair_lock("printer");
        /// let held = lock.try_acquire(Duration::from_secs(1), Some(Duration::from_secs(3))).await?;
        /// let err = lock
        ///     .try_acquire(Duration::from_millis(50), None)
        ///     .await
        ///     .expect_err("held above");
        /// assert!(err.is_timeout());
        /// held.unlock().await?;
        /// # Ok(()) });
        /// ```
        try_acquire(FAIR);

        /// Whether anyone holds the lock now.
        ///
        /// # Errors
        ///
        /// [`LockError::InvalidName`], or [`LockError::Redis`] if Redis stays unreachable.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: it only reads.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.fair_lock("queue-runner");
        /// assert!(!lock.is_locked().await?);
        /// # Ok(()) });
        /// ```
        is_locked(ONE_OWNER);

        /// Deletes the lock whoever holds it, and wakes its waiters (the head of the queue takes
        /// it). Returns whether it deleted a hold. For operators and tests, as
        /// [`Lock::force_unlock`](crate::Lock::force_unlock): it deletes the hold that is there
        /// when it asks, never one taken after, even when a copy of its request reaches Redis late.
        ///
        /// # Errors
        ///
        /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`Lock::force_unlock`](crate::Lock::force_unlock).
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.fair_lock("stuck");
        /// let guard = lock.acquire().await?;
        /// assert!(lock.force_unlock().await?);
        /// assert!(guard.unlock().await.expect_err("taken away").is_not_held());
        /// # Ok(()) });
        /// ```
        force_unlock(ONE_OWNER);

        /// Deletes the lock if the owner `owner` still holds it, and wakes its waiters as
        /// [`force_unlock`](Self::force_unlock) does. Returns whether it deleted the hold:
        /// `false` when `owner` holds nothing here any more (it released, its lease ran out, or
        /// the lock was force-unlocked already), whoever holds the lock now.
        ///
        /// For an operator who decided on one holder, as `lock-cli force-unlock` asks: read the
        /// lock with [`info`](Self::info), show its [`holder`](crate::LockInfo::holder), and
        /// delete that holder's hold by its [`owner`](crate::LockHolder::owner) id. A lock
        /// released and taken again after the look is left to its new holder, which nobody
        /// decided on. One atomic script, so a copy of it that reaches Redis late deletes
        /// nothing taken since either.
        ///
        /// # Errors
        ///
        /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument))
        /// if `owner` is not an owner id (`<client id>:<number>`), [`LockError::InvalidName`],
        /// [`LockError::WrongType`], or [`LockError::Redis`].
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`force_unlock`](Self::force_unlock).
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.fair_lock("stuck-report");
        /// let guard = lock.acquire().await?;
        /// let info = lock.info().await?;
        /// let shown = info.holder().expect("held").owner().to_owned();
        /// guard.unlock().await?;
        /// let next = lock.acquire().await?;
        /// // The holder shown is gone: the new one keeps the lock.
        /// assert!(!lock.force_unlock_held_by(&shown).await?);
        /// let owner = lock.info().await?.holder().expect("held").owner().to_owned();
        /// assert!(lock.force_unlock_held_by(&owner).await?);
        /// assert!(next.unlock().await.expect_err("taken away").is_not_held());
        /// # Ok(()) });
        /// ```
        force_unlock_held_by(ONE_OWNER);
    }

    /// A snapshot of the lock, as [`Lock::info`](crate::Lock::info) (the fair lock and the
    /// reentrant lock of one name share their keys, so either describes both). Its
    /// [`queue`](LockInfo::queue) is the order in which the lock will be handed on.
    ///
    /// # Errors
    ///
    /// As [`Lock::info`](crate::Lock::info).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let lock = client.fair_lock("printer");
    /// let guard = lock.acquire().await?;
    /// let waiter = {
    ///     let lock = lock.clone();
    ///     tokio::spawn(async move { lock.acquire().await?.unlock().await })
    /// };
    /// while lock.info().await?.waiters() == 0 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    /// }
    /// let info = lock.info().await?;
    /// assert_eq!(info.queue().len(), 1); // the waiter's owner id: the next to get the lock
    /// guard.unlock().await?;
    /// waiter.await.expect("the waiter ran")?;
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<LockInfo, LockError> {
        info::info(&self.handle).await
    }
}
