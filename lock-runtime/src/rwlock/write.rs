//! [`WriteLock`]: the exclusive side of a [`ReadWriteLock`](crate::ReadWriteLock).

use super::WRITE;
use crate::family::handle::{Handle, handle_methods};

/// The write lock of a [`ReadWriteLock`](crate::ReadWriteLock), made by
/// [`ReadWriteLock::write`](crate::ReadWriteLock::write). Cheap to clone; holds nothing.
///
/// One task at a time holds it, in any process, while nobody holds the read lock; a writer that
/// waits blocks new readers, and waiting writers are served in the order they came.
#[derive(Debug, Clone)]
pub struct WriteLock {
    pub(super) handle: Handle,
}

impl WriteLock {
    handle_methods! {
        /// Waits as long as it takes for the write hold, then holds it in watchdog mode: its lease
        /// is renewed while the guard lives. Inside the scope of a write guard of the same lock it
        /// re-enters that hold.
        ///
        /// # Errors
        ///
        /// [`LockError::Config`](crate::LockError::Config)
        /// ([`Mistake::Misuse`](crate::Mistake::Misuse)) at once inside the scope of a read guard
        /// of the same lock (an upgrade, which would wait for that read hold forever), and the
        /// errors of [`Lock::acquire`](crate::Lock::acquire).
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped, the waiter leaves the queue (letting in the
        /// readers it held back) and whatever a request in flight may have taken is given back, in
        /// the background.
        ///
        /// # Examples
        ///
        /// ```
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let doc = client.read_write_lock("doc:4");
        /// let writing = doc.write().acquire().await?;
        /// // Downgrade: read under the write hold, then let the write go.
        /// let reading = writing.scope(doc.read().acquire()).await?;
        /// writing.unlock().await?;
        /// reading.unlock().await?;
        /// # Ok(()) });
        /// ```
        acquire(WRITE);

        /// Waits at most `wait` for the write hold; with `lease = Some(d)` holds it for at most `d`
        /// (never renewed), with `None` in watchdog mode. Any `wait` is valid, as for
        /// [`Lock::try_acquire`](crate::Lock::try_acquire).
        ///
        /// # Errors
        ///
        /// [`LockError::Timeout`](crate::LockError::Timeout) if the lock did not come free, with
        /// this writer at the head of the queue, within the wait (the waiter then leaves the
        /// queue), and the errors of [`WriteLock::acquire`]. A lease out of range is a
        /// [`LockError::Config`](crate::LockError::Config)
        /// ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error. A lease too short
        /// to outlast the round trip that set it is a
        /// [`LockError::LeaseLost`](crate::LockError::LeaseLost), and nothing stays held.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`WriteLock::acquire`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// # lock_tests::locks::run_with_redis(|url| async move {
        /// # let client = lock_runtime::LockClient::connect(&url).await?;
        /// let doc = client.read_write_lock("doc:5");
        /// let reading = doc.read().acquire().await?;
        /// let err = doc
        ///     .write()
        ///     .try_acquire(Duration::from_millis(50), Some(Duration::from_secs(2)))
        ///     .await
        ///     .expect_err("a reader holds it");
        /// assert!(err.is_timeout());
        /// reading.unlock().await?;
        /// # Ok(()) });
        /// ```
        try_acquire(WRITE);
    }
}
