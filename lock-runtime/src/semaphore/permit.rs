//! [`SemaphorePermit`]: proof of permits held, and their release on every exit path.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    core::{hold::ReleaseOnDrop, lease::Lease},
    error::LockError,
    family::acquisition::Taken,
    transport::background::{Background, in_context},
};

/// Permits of a [`Semaphore`](crate::Semaphore), held until this is released or dropped.
///
/// Made by [`Semaphore::acquire`](crate::Semaphore::acquire) and
/// [`Semaphore::try_acquire`](crate::Semaphore::try_acquire). The permits are leased like a
/// lock: renewed by the watchdog while this lives (or held for a fixed lease), so a holder that
/// crashes gives them back when its lease ends. Each acquisition has an [`id`](Self::id) of its
/// own, which any process can release with [`Semaphore::release_by_id`](crate::Semaphore::release_by_id).
///
/// Dropping it releases the permits in the background, as a [`LockGuard`](crate::LockGuard) does
/// (before a process exits, wait for that with [`LockClient::flush`](crate::LockClient::flush)).
#[must_use = "dropping the permit releases it at once"]
#[derive(Debug)]
pub struct SemaphorePermit {
    hold: ReleaseOnDrop,
    name: Arc<str>,
    id: Arc<str>,
    permits: u32,
    lease: Arc<Lease>,
    runtime: &'static Background,
}

impl SemaphorePermit {
    pub(super) fn new(
        taken: Taken,
        name: Arc<str>,
        permits: u32,
        runtime: &'static Background,
    ) -> Self {
        Self {
            hold: ReleaseOnDrop::new(taken.hold),
            name,
            id: taken.holder.owner,
            permits,
            lease: taken.holder.lease,
            runtime,
        }
    }

    /// The semaphore's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of this acquisition, unique to it: what
    /// [`Semaphore::release_by_id`](crate::Semaphore::release_by_id) takes, from any process.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many permits this holds.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Resolves when the lease is known lost: the watchdog found the permits gone (their lease
    /// ended, or another process released them by id), Redis stayed unreachable past the
    /// lease's deadline, or a fixed lease's deadline passed. It never resolves while the lease
    /// is intact.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes the lease.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:lease-lost");
    /// pool.try_set_permits(1).await?;
    /// let permit = pool
    ///     .try_acquire(1, Duration::from_secs(1), Some(Duration::from_millis(200)))
    ///     .await?;
    /// permit.lease_lost().await; // 200 ms later
    /// assert!(permit.is_lease_lost());
    /// # Ok(()) });
    /// ```
    pub async fn lease_lost(&self) {
        in_context(self.runtime.timers(), self.lease.lost()).await;
    }

    /// Whether the lease is known lost right now.
    pub fn is_lease_lost(&self) -> bool {
        self.lease.is_lost()
    }

    /// How much of the lease is left, by the local clock and with the drift margin taken off.
    pub fn remaining_lease(&self) -> Duration {
        self.lease
            .deadline()
            .saturating_duration_since(Instant::now())
    }

    /// Gives the permits back now, and wakes the waiters they let in.
    ///
    /// # Errors
    ///
    /// [`LockError::NotHeld`] if the permits were no longer this acquisition's (their lease
    /// ended, or they were released by id): they are free either way. [`LockError::Redis`] if
    /// Redis stays unreachable for the retry timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a release once started finishes in the background if this future is
    /// dropped (wait for it with [`LockClient::flush`](crate::LockClient::flush)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:release");
    /// pool.try_set_permits(3).await?;
    /// let permit = pool.acquire(2).await?;
    /// assert_eq!(pool.available_permits().await?, 1);
    /// permit.release().await?;
    /// assert_eq!(pool.available_permits().await?, 3);
    /// # Ok(()) });
    /// ```
    #[doc(alias = "unlock")]
    pub fn release(self) -> impl Future<Output = Result<(), LockError>> + Send + 'static {
        // Not an `async fn`, which would keep the whole permit twice in the future: only its
        // hold goes on, and the rest of the permit is dropped here.
        self.hold.release()
    }
}
