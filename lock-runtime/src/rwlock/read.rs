//! [`ReadLock`]: the shared side of a [`ReadWriteLock`](crate::ReadWriteLock).

use super::READ;
use crate::family::handle::{Handle, handle_methods};

/// The read lock of a [`ReadWriteLock`](crate::ReadWriteLock), made by
/// [`ReadWriteLock::read`](crate::ReadWriteLock::read). Cheap to clone; holds nothing.
///
/// Any number of tasks, in any process, hold it at once while nobody holds the write lock and no
/// writer waits ahead of them.
#[derive(Debug, Clone)]
pub struct ReadLock {
    pub(super) handle: Handle,
}

impl ReadLock {
    handle_methods! {
        /// Waits as long as it takes for a read hold, then holds it in watchdog mode: its lease is
        /// renewed while the guard lives. Inside the scope of a write guard of the same lock it is
        /// granted at once (a downgrade); inside the scope of a read guard it re-enters that hold.
        ///
        /// # Errors
        ///
        /// As [`Lock::acquire`](crate::Lock::acquire).
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped, the waiter leaves the queue and whatever a
        /// request in flight may have taken is given back, in the background.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let doc = client.read_write_lock("doc:2");
        /// let one = doc.read().acquire().await?;
        /// let two = doc.read().acquire().await?; // readers share it
        /// one.unlock().await?;
        /// two.unlock().await?;
        /// # Ok(()) });
        /// ```
        acquire(READ);

        /// Waits at most `wait` for a read hold; with `lease = Some(d)` holds it for at most `d`
        /// (never renewed), with `None` in watchdog mode. Any `wait` is valid, as for
        /// [`Lock::try_acquire`](crate::Lock::try_acquire).
        ///
        /// # Errors
        ///
        /// [`LockError::Timeout`](crate::LockError::Timeout) if a writer held the lock, or waited
        /// ahead, for the whole wait (the waiter then leaves the queue), and the errors of
        /// [`ReadLock::acquire`]. A lease out of range is a
        /// [`LockError::Config`](crate::LockError::Config)
        /// ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error. A lease too short
        /// to outlast the round trip that set it is a
        /// [`LockError::LeaseLost`](crate::LockError::LeaseLost), and nothing stays held.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`ReadLock::acquire`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let doc = client.read_write_lock("doc:3");
        /// let writing = doc.write().acquire().await?;
        /// let err = doc
        ///     .read()
        ///     .try_acquire(Duration::from_millis(50), None)
        ///     .await
        ///     .expect_err("a writer holds it");
        /// assert!(err.is_timeout());
        /// writing.unlock().await?;
        /// # Ok(()) });
        /// ```
        try_acquire(READ);
    }
}
