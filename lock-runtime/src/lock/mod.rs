//! [`Lock`]: the reentrant lock, a thin layer over the family's engine.
//!
//! What is the lock's own: its acquire script (`scripts.rs`, `scripts/acquire.lua`), which lets
//! newcomers barge, and its [`Flavor`]. It keeps its holds in the family's one-owner layout,
//! shared with the fair lock; the acquisition, re-entry, release and undos are the family's
//! (`family/`); waiting, holding, renewing, releasing on drop and finishing cancelled releases
//! are the core's.
//!
//! Waiters queue in Redis, in the lock's hash slot, so that a release wakes exactly one of them
//! (the longest-queued live one), by name, in whichever process it waits; a free lock still goes
//! to whoever asks first, so newcomers may barge. Each try renews the waiter's liveness, and a
//! waiter tries again at least every third of the watchdog timeout, so one whose process died
//! stops being woken one watchdog timeout after its last try.

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

/// The reentrant lock: a free lock goes to whoever asks (barging allowed); waiters queue only so
/// that a release wakes one of them, by name, across every process.
pub(crate) static REENTRANT: Flavor = Flavor {
    kind: HoldKind::Reentrant,
    primitive: "lock",
    noun: "lock",
    acquire: &ACQUIRE,
    hand_over: false,
    layout: &ONE_OWNER,
    fresh: nothing_alongside,
    refused: no_refusal,
};

/// A handle to one reentrant lock, made by [`LockClient::lock`](crate::LockClient::lock). Cheap
/// to clone; holds nothing.
///
/// The lock is exclusive across every process using the same Redis and key prefix, reentrant
/// within one [scope](crate::LockGuard::scope), and hands out a strictly increasing
/// [fencing token](crate::LockGuard::fencing_token) with every fresh acquisition.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let lock = client.lock("stock:42");
/// // Wait up to 5 s; hold for at most 3 s.
/// let guard = lock
///     .try_acquire(Duration::from_secs(5), Some(Duration::from_secs(3)))
///     .await?;
/// // ... read, decide, write ...
/// guard.unlock().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    handle: Handle,
}

impl Lock {
    handle_methods! {
        new;
        metrics_label;
        /// The lock's name.
        name;

        /// Waits as long as it takes for the lock, then holds it in watchdog mode: the lease is
        /// renewed while the guard lives.
        ///
        /// # Errors
        ///
        /// [`LockError::InvalidName`] for an empty name or one with braces,
        /// [`LockError::WrongType`] if the lock's key holds something else,
        /// [`LockError::LeaseLost`] when re-entering a lock whose lease the scope has lost, or
        /// for a fresh hold whose lease ran out before Redis's reply came (nothing stays held),
        /// [`LockError::NotReplicated`] if the client waits for replicas
        /// ([`LockClientBuilder::wait_for_replicas`](crate::LockClientBuilder::wait_for_replicas))
        /// and too few confirmed the fresh hold (it was released),
        /// [`LockError::Redis`] if Redis stays unreachable for the retry timeout.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped while a request is in flight, a background task
        /// undoes whatever that request may have acquired.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let guard = client.lock("report:daily").acquire().await?;
        /// // ... held, and renewed by the watchdog, until the guard goes ...
        /// guard.unlock().await?;
        /// # Ok(()) });
        /// ```
        acquire(REENTRANT);

        /// Waits at most `wait` for the lock. With `lease = Some(d)` the lock is held for at most
        /// `d` (never renewed); with `None` it is held in watchdog mode, renewed while the guard
        /// lives.
        ///
        /// Any `wait` is valid: `Duration::ZERO` tries once, `Duration::MAX` (or any wait too far
        /// away for the clock) waits without limit. A lease must lie between 1 ms and a year.
        ///
        /// # Errors
        ///
        /// [`LockError::Timeout`] if another owner held the lock for the whole wait, and the errors
        /// of [`Lock::acquire`]. A lease out of range is a [`LockError::Config`]
        /// ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error. A lease too short
        /// to outlast the round trip that set it is a [`LockError::LeaseLost`], and nothing stays
        /// held.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`Lock::acquire`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.lock("stock:42");
        /// let held = lock.try_acquire(Duration::from_secs(1), Some(Duration::from_secs(3))).await?;
        /// let err = lock
        ///     .try_acquire(Duration::from_millis(50), None)
        ///     .await
        ///     .expect_err("held above");
        /// assert!(err.is_timeout());
        /// held.unlock().await?;
        /// # Ok(()) });
        /// ```
        try_acquire(REENTRANT);

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
        /// let lock = client.lock("nightly-import");
        /// assert!(!lock.is_locked().await?);
        /// let guard = lock.acquire().await?;
        /// assert!(lock.is_locked().await?);
        /// # guard.unlock().await?;
        /// # Ok(()) });
        /// ```
        is_locked(ONE_OWNER);

        /// Deletes the lock whoever holds it, and wakes its waiters. Returns whether it deleted a
        /// hold.
        ///
        /// For operators and tests: the holder is not told until its next renewal (watchdog mode)
        /// or its deadline (fixed lease), and may go on believing it holds the lock until then (a
        /// [lock-checked write](crate::LockGuard::exec) of it is refused at once).
        ///
        /// It deletes the hold that is there when it asks, never a later one. It reads who holds
        /// the lock, then deletes that owner's hold only, in a second atomic script: a lock
        /// released and taken again in between is left to its new holder (it then returns
        /// `false`), and so is the lock of a newer holder when a copy of the request, resent after
        /// a timeout, reaches Redis minutes later.
        ///
        /// # Errors
        ///
        /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped before the deletion was sent, nothing is deleted;
        /// the deletion is one atomic script, sent or not.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let lock = client.lock("stuck-job");
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
        /// let lock = client.lock("stuck-report");
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

    /// A snapshot of the lock: whether it is held, by whom (client name, owner id), for how long,
    /// how often re-entered, how long its lease has left, how many wait and who (in queue order),
    /// and the last fencing token handed out. Read in one read-only script, so its parts agree.
    ///
    /// For operators and diagnostics: by the time it returns, the lock may have changed hands,
    /// so never decide to take or release the lock from it.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`] if the lock's key holds something
    /// else, or [`LockError::Redis`] if Redis stays unreachable.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// let client = lock_runtime::LockClient::builder()
    ///     .url(url)
    ///     .client_name("orders-api@host-3")
    ///     .build()
    ///     .await?;
    /// let lock = client.lock("stock:42");
    /// assert!(!lock.info().await?.is_held());
    ///
    /// let guard = lock.acquire().await?;
    /// let info = lock.info().await?;
    /// let holder = info.holder().expect("held above");
    /// assert_eq!(holder.client_name(), Some("orders-api@host-3"));
    /// assert_eq!(holder.hold_count(), 1);
    /// assert_eq!(info.waiters(), 0);
    /// assert_eq!(info.last_fencing_token(), Some(guard.fencing_token()));
    /// guard.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<LockInfo, LockError> {
        info::info(&self.handle).await
    }

    /// This lock as a member of a multi-lock, which is measured as a whole.
    pub(crate) fn member(self) -> Self {
        let handle = self.handle.member();
        Self { handle }
    }
}
