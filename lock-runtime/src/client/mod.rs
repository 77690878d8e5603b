//! [`LockClient`]: the handle from which every lock is made, and how a client is started.
//!
//! The client's state is the core's `Backend` (`core/backend.rs`); this module connects it and
//! wraps it in the public handle.
//!
//! # Connections
//!
//! A client keeps few connections to Redis, whatever the number of locks and waiters:
//!
//! - one multiplexed command connection (redis-rs `ConnectionManager`): every task's scripts are
//!   pipelined on it, and it reconnects by itself after a failure, or is replaced when it stops
//!   answering (see the `connection` module);
//! - one dedicated RESP2 pub/sub connection owned by the subscription hub (`core/hub`), opened
//!   the first time a task has to wait; on a Redis Cluster (Redis 7 or newer), one RESP3
//!   connection to each primary a waited-on lock lives on, for sharded pub/sub;
//! - with [`LockClientBuilder::wait_for_replicas`] only, a third connection for the acquisitions
//!   that `WAIT` for replicas;
//! - behind Sentinels ([`LockClientBuilder::sentinel`]), a pub/sub connection to one Sentinel
//!   for its failover announcements, and the connections redis-rs keeps to the Sentinels it
//!   asks (see the `sentinel` module).
//!
//! Every connection carries the client's name (`CLIENT SETNAME`; see the `naming` module), so
//! `CLIENT LIST` on the server tells which service each connection belongs to.
//!
//! Pub/sub lives on its own connection rather than as RESP3 pushes on the command connection so
//! that the hub sees the connection drop (its message stream ends) and can resubscribe and wake
//! every waiter, and so that a slow subscriber never holds up lock commands. It also works with
//! Redis servers older than 6.

use std::sync::Arc;

use crate::{
    client::builder::LockClientBuilder,
    core::{
        backend::Backend, commands::CommandTable, hub::Hub, ids::Ids, script_path::ScriptPath,
        watchdog::Watchdog,
    },
    error::LockError,
    fair_lock::FairLock,
    family::listing::{self, PrimitiveKind},
    latch::CountDownLatch,
    lock::Lock,
    multi::multi_lock::MultiLock,
    rwlock::ReadWriteLock,
    semaphore::Semaphore,
    transport::{
        background,
        config::Config,
        connect::{self, Connected},
    },
};

pub(crate) mod builder;
pub(crate) mod default;

/// A handle to one Redis deployment, from which locks are made.
///
/// Cheap to clone: clones share the connections, the subscription hub and the lease watchdog.
/// The background tasks stop when the last clone (and the last guard made from it) is dropped.
/// A client may be used from any Tokio runtime, not only the one that built it.
///
/// ```no_run
/// # async fn example() -> Result<(), lock_runtime::LockError> {
/// let client = lock_runtime::LockClient::connect("redis://127.0.0.1:6379").await?;
/// let guard = client.lock("stock:42").acquire().await?;
/// // ... the critical section ...
/// guard.unlock().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockClient {
    pub(crate) backend: Arc<Backend>,
}

impl std::fmt::Debug for LockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockClient")
            .field("id", self.backend.ids.client())
            .field("redis", &self.backend.config.deployment)
            .field("key_prefix", &self.backend.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl LockClient {
    /// Connects to the Redis at `url` with default settings.
    ///
    /// Use [`LockClient::builder`] to change a setting.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] if the URL does not parse, [`LockError::Redis`] if Redis cannot be
    /// reached within the connect timeout (5 seconds by default).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), lock_runtime::LockError> {
    /// let client = lock_runtime::LockClient::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder().url(url).build().await
    }

    /// Starts a [`LockClientBuilder`] to configure every setting.
    pub fn builder() -> LockClientBuilder {
        LockClientBuilder::default()
    }

    /// A handle to the reentrant lock called `name`.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn lock(&self, name: impl Into<String>) -> Lock {
        Lock::new(&self.backend, name.into())
    }

    /// A handle to the fair lock called `name`: like [`lock`](Self::lock), and first come first
    /// served across every process. It shares the Redis key of the reentrant lock of the same
    /// name, so the two exclude each other.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn fair_lock(&self, name: impl Into<String>) -> FairLock {
        FairLock::new(&self.backend, name.into())
    }

    /// A handle to the read-write lock called `name`: many readers or one writer, across every
    /// process, with no writer starved. Its Redis keys are its own: it does not exclude the
    /// reentrant lock of the same name.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn read_write_lock(&self, name: impl Into<String>) -> ReadWriteLock {
        ReadWriteLock::new(&self.backend, name.into())
    }

    /// A handle to the semaphore called `name`: permits shared by every process, each
    /// acquisition leased like a lock, so a crashed holder's permits come back when its lease
    /// ends. Set its permits once with [`Semaphore::try_set_permits`].
    ///
    /// Making a handle does not talk to Redis; the name is checked when the semaphore is used.
    pub fn semaphore(&self, name: impl Into<String>) -> Semaphore {
        Semaphore::new(&self.backend, name.into())
    }

    /// A handle to the count-down latch called `name`: a count set once, counted down from any
    /// process, and every waiter released together at zero. Its Redis keys are its own: it does
    /// not touch the locks of the same name.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the latch is used.
    pub fn count_down_latch(&self, name: impl Into<String>) -> CountDownLatch {
        CountDownLatch::new(&self.backend, name.into())
    }

    /// A handle to the multi-lock of the reentrant locks `names`: all of them, or none, taken in
    /// the order of their names whatever order they are given in, so multi-locks over the same
    /// names never deadlock. A name given twice is taken once.
    ///
    /// Making a handle does not talk to Redis; the names are checked when the lock is used.
    pub fn multi_lock<I>(&self, names: I) -> MultiLock
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        MultiLock::new(&self.backend, names.into_iter().map(Into::into).collect())
    }

    /// The random id of this client, the first part of every owner id it hands out.
    pub fn id(&self) -> &str {
        self.backend.ids.client()
    }

    /// The key prefix this client's locks live under ([`LockClientBuilder::key_prefix`]).
    pub fn key_prefix(&self) -> &str {
        &self.backend.config.key_prefix
    }

    /// Waits until the work this client runs in the background has finished: the releases of
    /// guards and permits dropped rather than released with `unlock().await` or
    /// `release().await`, of `#[distribute_lock]` calls cancelled (their futures dropped) and
    /// of `unlock()` futures dropped before they completed, the undos of acquisitions given up
    /// while their request was on its way, the count-downs of
    /// [`CountDownLatch::count_down`](crate::CountDownLatch::count_down) futures dropped after
    /// their first poll, and the spends of [`LockGuard::exec`](crate::LockGuard::exec) calls
    /// dropped while their request was on its way.
    ///
    /// Dropping a guard releases its lock at once, but from the library's background thread. A
    /// process that exits right after may exit before the release reaches Redis, and the lock
    /// then stays held until its lease runs out: the watchdog timeout (30 seconds by default)
    /// for a lock taken without a fixed lease. So at shutdown, once the service stopped taking
    /// requests, call this before the process exits (for the default client:
    /// `lock_runtime::default_client().await?.flush().await`).
    ///
    /// It waits for the work started before the call and for any started while it waits; the
    /// client stays usable. A release gives up once Redis stayed unreachable for the
    /// [retry timeout](LockClientBuilder::retry_timeout) (10 seconds by default), but an undo
    /// keeps trying for as long as a copy of its request may still reach Redis (about 15
    /// minutes): where Redis may be down, bound the wait with `tokio::time::timeout`. On a
    /// client given a [`background_runtime`](LockClientBuilder::background_runtime) that has
    /// since shut down, the work that runtime was running was dropped with it, unfinished:
    /// `flush` returns without it, and those locks stay held until their leases run out.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it stops the waiting, not the work.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client.lock("nightly-report").acquire().await?;
    /// drop(guard); // released in the background
    /// client.flush().await; // the release has reached Redis
    /// assert!(!client.lock("nightly-report").is_locked().await?);
    /// # Ok(()) });
    /// ```
    pub async fn flush(&self) {
        self.backend.flushed().await;
    }

    /// The names of the reentrant and fair locks held now under this client's key prefix whose
    /// name matches the glob `pattern` (Redis glob syntax: `*` any run of characters, `?` one,
    /// `[abc]` one of them, `\` escapes; `"*"` for every lock), at most `limit` of them, sorted.
    /// Describe each with [`Lock::info`].
    ///
    /// Walks the keyspace with `SCAN` (never `KEYS`): each call looks at a thousand keys and
    /// Redis answers it at once, so listing never stalls the server, however many keys it
    /// holds; it costs one round trip per thousand keys. On a Redis Cluster it walks every
    /// primary in turn (found with `CLUSTER SLOTS`, each reached through a slot it serves),
    /// and stops as soon as it has `limit` names. As with any `SCAN`, a lock taken or released
    /// while the walk runs (or whose slot moves to another node meanwhile) may or may not be
    /// listed. Read-write locks, semaphores and latches are not listed.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a pattern with `{` or `}` (no lock name has them);
    /// [`LockError::Redis`] if Redis (any primary of a cluster) stays unreachable.
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
    /// let a = client.lock("stock:1").acquire().await?;
    /// let b = client.lock("stock:2").acquire().await?;
    /// let c = client.lock("orders:7").acquire().await?;
    /// assert_eq!(client.held_locks("stock:*", 100).await?, ["stock:1", "stock:2"]);
    /// assert_eq!(client.held_locks("*", 1).await?.len(), 1);
    /// # for guard in [a, b, c] { guard.unlock().await?; }
    /// # Ok(()) });
    /// ```
    pub async fn held_locks(&self, pattern: &str, limit: usize) -> Result<Vec<String>, LockError> {
        listing::held_locks(&self.backend, pattern, limit).await
    }

    /// The primitives of every kind under this client's key prefix whose name matches the glob
    /// `pattern` (as for [`held_locks`](Self::held_locks)): the reentrant and fair locks held,
    /// the read-write locks held, the semaphores whose permits were set (held or not) and the
    /// latches set, at most `limit` of them, sorted by name (one name may have several kinds).
    /// Describe each with its handle's `info()`. A semaphore deleted by
    /// [`Semaphore::delete_if_unused`](crate::Semaphore::delete_if_unused) is still listed for
    /// about 15 minutes (its `info()` then has no total): the count that answers late copies of
    /// its releases outlives it that long.
    ///
    /// Walks the keyspace with `SCAN` as [`held_locks`](Self::held_locks) does, twice (once for
    /// the kinds kept in hashes, once for the latches, kept in strings).
    ///
    /// # Errors
    ///
    /// As [`held_locks`](Self::held_locks).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_runtime::PrimitiveKind;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let read = client.read_write_lock("doc:1").read().acquire().await?;
    /// client.semaphore("pool:cli").try_set_permits(3).await?;
    /// assert_eq!(
    ///     client.primitives("*", 100).await?,
    ///     [
    ///         (PrimitiveKind::ReadWriteLock, "doc:1".to_owned()),
    ///         (PrimitiveKind::Semaphore, "pool:cli".to_owned()),
    ///     ]
    /// );
    /// # read.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn primitives(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<(PrimitiveKind, String)>, LockError> {
        listing::primitives(&self.backend, pattern, limit).await
    }

    pub(crate) async fn from_config(config: Config) -> Result<Self, LockError> {
        // Started whichever runtime the client runs on: it sweeps every request's deadline.
        let library = background::library()?;
        let (runtime, runtime_watch) = match config.background_runtime.clone() {
            Some(given) => {
                let (runtime, watch) = background::given(given);
                (runtime, Some(watch))
            }
            None => (library, None),
        };
        runtime.check()?;
        let Connected {
            pubsub,
            commands,
            replicated,
            server,
        } = connect::open(&config, runtime).await?;
        let scripts = Arc::new(ScriptPath::new(
            runtime, commands, replicated, server, &config,
        ));
        let ids = Ids::new();
        let hub = Hub::start(runtime, pubsub, &config, ids.client());
        let watchdog = Watchdog::start(runtime, Arc::clone(&scripts), config.renew_interval());
        tracing::debug!(client = %ids.client(), redis = %config.deployment, "lock client connected");
        Ok(Self {
            backend: Arc::new(Backend {
                ids,
                config,
                runtime,
                scripts,
                hub,
                watchdog,
                commands: CommandTable::default(),
                _runtime_watch: runtime_watch,
                running: tokio::sync::watch::Sender::new(0),
            }),
        })
    }
}
