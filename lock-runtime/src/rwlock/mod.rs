//! [`ReadWriteLock`]: many readers or one writer, across processes, with no writer starved.
//!
//! What is the read-write lock's own: its Lua scripts (`scripts.rs`, `scripts/*.lua`), one
//! [`Layout`] (a lease per hold) and two [`Flavor`]s (read and write). Acquiring, re-entering,
//! releasing, undoing, waiting and renewing are the family's (`family/`) and the core's.
//!
//! How it behaves, and how it is kept in Redis, is documented on the handle itself.

use std::sync::Arc;

use crate::{
    core::{
        keys::Keys,
        scope::{self, HoldKind},
    },
    error::LockError,
    family::{
        flavor::{Alongside, Flavor, Layout, no_refusal},
        handle::{Handle, handle_methods},
        info::describe,
    },
};

mod info;
mod read;
pub(crate) mod scripts;
mod write;

pub use info::{ReadWriteLockInfo, ReadWriteWaiter};
pub use read::ReadLock;
pub use write::WriteLock;

use scripts::{
    ACQUIRE_READ, ACQUIRE_WRITE, FORCE_UNLOCK, INFO, LEAVE, REENTER, RELEASE, RENEW, UNDO_REENTER,
};

/// How the read-write lock keeps its holds: a hash at `{prefix:name}:rw`, and a lease per hold.
pub(crate) static RW: Layout = Layout {
    part: Some("rw"),
    reenter: Some(&REENTER),
    release: &RELEASE,
    leave: &LEAVE,
    undo_reenter: Some(&UNDO_REENTER),
    renew: &RENEW,
    force_unlock: Some(&FORCE_UNLOCK),
    leases: true,
    lone: false,
};

/// A read hold: shared, granted alongside the scope's own write hold (a downgrade).
pub(crate) static READ: Flavor = Flavor {
    kind: HoldKind::Read,
    primitive: "read_lock",
    noun: "read lock",
    acquire: &ACQUIRE_READ,
    hand_over: false,
    layout: &RW,
    fresh: under_own_write,
    refused: no_refusal,
};

/// The write hold: refused at once under the scope's own read hold (an upgrade).
pub(crate) static WRITE: Flavor = Flavor {
    kind: HoldKind::Write,
    primitive: "write_lock",
    noun: "write lock",
    acquire: &ACQUIRE_WRITE,
    hand_over: false,
    layout: &RW,
    fresh: no_upgrade,
    refused: no_refusal,
};

/// A fresh read hold may be granted alongside the current scope's write hold of the same lock.
fn under_own_write(client_id: &str, keys: &Keys) -> Result<Alongside, LockError> {
    Ok(scope::find(client_id, &keys.main, HoldKind::Write)
        .map(|held| Arc::clone(&held.holder.owner)))
}

/// A write hold asked under the current scope's read hold of the same lock would wait for that
/// read hold forever: refused.
fn no_upgrade(client_id: &str, keys: &Keys) -> Result<Alongside, LockError> {
    if scope::find(client_id, &keys.main, HoldKind::Read).is_some() {
        return Err(LockError::misuse(format!(
            "the write lock of `{}` was asked for where the read lock of it is held: an upgrade \
             would wait for its own read hold forever. Release the read lock first, or take the \
             write lock first and the read lock under it (a downgrade)",
            keys.name
        )));
    }
    Ok(None)
}

/// A handle to one read-write lock, made by
/// [`LockClient::read_write_lock`](crate::LockClient::read_write_lock). Cheap to clone;
/// holds nothing.
///
/// Many readers or one writer, across every process; a waiting writer blocks new readers, so
/// writers are never starved; reentrant within a [scope](crate::LockGuard::scope) in both modes, with
/// downgrade (write, then read under it) and no upgrade. Each hold has its own lease (the
/// watchdog's or a fixed one) and releases on every exit path, like [`Lock`](crate::Lock)'s.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let doc = client.read_write_lock("doc:7");
/// let reading = doc.read().try_acquire(Duration::from_secs(5), None).await?;
/// // ... other readers may read too; writers wait ...
/// reading.unlock().await?;
///
/// let writing = doc.write().try_acquire(Duration::from_secs(5), None).await?;
/// // ... alone ...
/// writing.unlock().await?;
/// # Ok(()) }
/// ```
///
/// # In Redis
///
/// The lock is a hash at `{prefix:name}:rw`: per hold, its owner id -> hold count,
/// `~who:<owner id>` -> its client's name and the server time it was taken (what a
/// [`LockError::Timeout`] and [`info`](Self::info) tell) and, once the hold was re-entered,
/// `~r:<owner id>`, which counts it has (every re-entry, release and undo names the count it adds
/// or takes, so a copy of it landing late, on a connection the client retired, counts nothing),
/// all deleted with the hold; and `writer`, the owner id of the write hold while there is one.
/// Every hold has a lease of its own, in `{prefix:name}:rw:leases` (owner id -> the server
/// time its lease ends): a reader whose process crashed frees its share when *its* lease ends,
/// and the next script to look drops it. Both keys expire with the last lease. A hold taken on
/// a lock nobody holds or waits for is *lone*: the lock keeps no leases, its own TTL is that
/// hold's lease, so taking and releasing an uncontended lock costs Redis as few commands as
/// the reentrant lock's; the next hold to come writes the lone one's lease into the leases
/// first, so the release of a hold that finds no leases (and nobody queued) knows it is the
/// lock's only one without reading them. The read-write lock's keys are its own: it does not
/// exclude the reentrant lock of the same name.
///
/// # Who gets in
///
/// Waiters queue in Redis by their first try, as the fair lock's do, each marked `read` or
/// `write`. A write is granted to the head of the queue, on a lock nobody holds; a read to
/// anyone while no write is held and no live writer queues ahead of it. So a waiting writer
/// blocks new readers (a stream of readers cannot starve it, as it can Redisson's), and the
/// readers that queued behind it enter together after it. Releases wake whom they let in: the
/// last read hold leaving wakes the writer at the head, by name; a write hold leaving wakes every
/// waiter if the head wants to read (the readers enter together; writers behind them sleep
/// again), or the writer at the head.
///
/// # Scopes: re-entry, downgrade, no upgrade
///
/// Inside a guard's [scope](crate::LockGuard::scope), taking the same kind again re-enters it (one more
/// count, the same lease and token). A scope holding the write lock may take the read lock: it
/// is granted at once, alongside (a *downgrade*: release the write guard and keep reading, with
/// no writer slipping in between). If the write hold's lease was lost meanwhile, the read is
/// asked for as any other: granted unless another writer holds the lock or queues ahead. A
/// scope holding only the read lock that asks for the write lock gets [`LockError::Config`]
/// ([`Mistake::Misuse`](crate::Mistake::Misuse)) at once: it would wait for its own read hold
/// forever (Redisson blocks there, by design, issue 4796).
///
/// # Fencing tokens
///
/// A hold that takes the lock while no hold is left, write or read, gets a fresh token, strictly
/// greater than every token handed out before for this name; a write always does, as it is
/// granted on a free lock only. A read hold that joins others carries the token of the hold that
/// took the lock, so readers at the same time share one, and a write's token is above every
/// token readers carried before it. (The release that frees the lock counts the fencing state
/// one past that token: how a resent release learns, with no key per request, what its first
/// copy did.)
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    handle: Handle,
}

impl ReadWriteLock {
    handle_methods! {
        new;
        metrics_label;
        /// The lock's name.
        name;
    }

    /// The read lock: shared with other readers.
    pub fn read(&self) -> ReadLock {
        let handle = self.handle.clone();
        ReadLock { handle }
    }

    /// The write lock: exclusive.
    pub fn write(&self) -> WriteLock {
        let handle = self.handle.clone();
        WriteLock { handle }
    }

    handle_methods! {
        /// Whether anyone holds the lock now, to read or to write.
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
        /// let doc = client.read_write_lock("doc:1");
        /// assert!(!doc.is_locked().await?);
        /// let reading = doc.read().acquire().await?;
        /// assert!(doc.is_locked().await?);
        /// reading.unlock().await?;
        /// # Ok(()) });
        /// ```
        is_locked(RW);

        /// Deletes every hold, read and write, whoever holds them, and wakes every waiter. Returns
        /// whether it deleted a hold. For operators and tests, as
        /// [`Lock::force_unlock`](crate::Lock::force_unlock): the holders learn it at their next
        /// renewal, re-entry or release.
        ///
        /// It deletes the holds that are there when it asks, never a later one: it reads the owner
        /// id of every hold, then deletes the holds of those owners only, in a second atomic
        /// script. A reader that joins in between keeps its hold, and a copy of the request that
        /// reaches Redis minutes later (resent after a timeout) deletes nothing taken since. (A
        /// reader takes no new fencing token, so the fencing state could not tell such a reader
        /// apart; every hold's owner id can.)
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
        /// let doc = client.read_write_lock("doc:stuck");
        /// let writing = doc.write().acquire().await?;
        /// assert!(doc.force_unlock().await?);
        /// assert!(writing.unlock().await.expect_err("taken away").is_not_held());
        /// # Ok(()) });
        /// ```
        force_unlock(RW);

        /// Deletes the hold, read or write, of the owner `owner` if it still holds it, and wakes
        /// every waiter as [`force_unlock`](Self::force_unlock) does; the other holds stay.
        /// Returns whether it deleted the hold: `false` when `owner` holds nothing here any more,
        /// whoever holds the lock now.
        ///
        /// For an operator who decided on one holder: read the lock with [`info`](Self::info)
        /// and delete a [`writer`](crate::ReadWriteLockInfo::writer)'s or a
        /// [`reader`](crate::ReadWriteLockInfo::readers)'s hold by its
        /// [`owner`](crate::LockHolder::owner) id. A hold taken after the look is never deleted,
        /// and neither by a copy of the request that reaches Redis late.
        ///
        /// # Errors
        ///
        /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument))
        /// if `owner` is not an owner id (`<client id>:<number>`), [`LockError::InvalidName`],
        /// [`LockError::WrongType`], or [`LockError::Redis`].
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
        /// let doc = client.read_write_lock("doc:two-readers");
        /// let first = doc.read().acquire().await?;
        /// let second = doc.read().acquire().await?;
        /// let info = doc.info().await?;
        /// let stuck = info.readers()[0].owner().to_owned();
        /// assert!(doc.force_unlock_held_by(&stuck).await?);
        /// assert_eq!(doc.info().await?.readers().len(), 1, "the other reader stays");
        /// let (first, second) = (first.unlock().await, second.unlock().await);
        /// assert!(first.is_ok() != second.is_ok(), "one of the two was taken away");
        /// # Ok(()) });
        /// ```
        force_unlock_held_by(RW);
    }

    /// A snapshot of the lock: its write hold and its read holds (each with its owner id, hold
    /// count and lease left), how many wait and who (in queue order, each marked read or
    /// write), and the last fencing token. Read in one read-only script, so its parts agree.
    ///
    /// Each hold names its client
    /// ([`LockClientBuilder::client_name`](crate::LockClientBuilder::client_name)) and how long
    /// it has been held, as the reentrant lock's [`info`](crate::Lock::info) does. For operators
    /// and diagnostics: by the time it returns, the lock may have changed hands.
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
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let doc = client.read_write_lock("doc:info");
    /// let (a, b) = (doc.read().acquire().await?, doc.read().acquire().await?);
    /// let info = doc.info().await?;
    /// assert!(info.writer().is_none());
    /// assert_eq!(info.read_holds(), 2);
    /// a.unlock().await?;
    /// b.unlock().await?;
    /// assert!(!doc.info().await?.is_locked());
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<ReadWriteLockInfo, LockError> {
        describe(&INFO, &RW, &self.handle).await
    }
}
