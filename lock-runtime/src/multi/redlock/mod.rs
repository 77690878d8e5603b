//! [`Redlock`]: one lock over several independent Redis masters, held by a quorum of them.

use std::{borrow::Cow, sync::Arc, time::Duration};

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::{
    client::LockClient,
    core::{
        lease::{MAX_LEASE, MIN_LEASE, ShownWait},
        meter::{Label, Meter},
    },
    error::LockError,
    transport::deadline::timed_out,
};

mod acquire;
mod contender;
mod guard;
mod info;
pub(crate) mod scripts;

pub use guard::RedlockGuard;
pub use info::RedlockInfo;

/// A lock over independent Redis masters (Redis's Redlock algorithm), made by [`Redlock::new`]
/// from one [`LockClient`] per master. Cheap to clone; holds nothing.
///
/// A lock is held once a majority of the masters (the quorum, `n / 2 + 1` of `n`) hold it for
/// the same owner, so it survives the loss of any minority of masters. Each master keeps the
/// reentrant lock of the same name ([`LockClient::lock`]) under its client's key prefix.
///
/// ```no_run
/// # async fn example(
/// #     a: lock_runtime::LockClient,
/// #     b: lock_runtime::LockClient,
/// #     c: lock_runtime::LockClient,
/// # ) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let redlock = lock_runtime::Redlock::new([a, b, c])?;
/// let held = redlock
///     .lock("report")
///     .try_acquire(Duration::from_secs(5), Some(Duration::from_secs(10)))
///     .await?;
/// let token = held.fencing_token(); // send it with every write the lock protects
/// held.unlock().await?;
/// # Ok(()) }
/// ```
///
/// # How it acquires
///
/// Each round asks every master at once, each within the [node
/// timeout](RedlockBuilder::node_timeout). Once a quorum took the lock, the masters still to
/// answer get as long again as the quorum took, and no longer: a master that is down or slow
/// costs a round about one more round trip, not a node timeout (its request is undone in the
/// background). If a quorum took the lock and there is time left of the lease (the validity:
/// lease − time since the round began − a drift margin of 1 % + 2 ms, on the monotonic clock),
/// the lock is held; otherwise every master taken is given back. Between rounds the caller
/// waits, through each master's subscription hub, for a release on a master where the lock was
/// held (its request stays queued there, so the release wakes it by name, as a waiter of
/// [`Lock`](crate::Lock) is woken), or for the holder's lease to run out. A round that took
/// some masters but not a quorum (two callers splitting the masters between them) is followed
/// by a [random delay](RedlockBuilder::retry_delay), so the callers do not split again.
///
/// # Fencing tokens that stay strictly increasing
///
/// Each master counts tokens on its own, so the token of one master says nothing about another's.
/// A Redlock's token is the largest of its quorum's, and before the acquisition returns, every
/// master of the quorum has its count raised to that token (a script that first checks the
/// hold is still there). Any later acquisition holds a quorum too, and two quorums of the same
/// masters share at least one master: that master's count is at or above this token and it
/// was raised before the later acquisition took it, so the later token, the largest of its
/// quorum's, is greater. This costs one more round trip per acquisition, to the masters whose
/// own token was lower.
///
/// The argument needs the shared master to have kept its count, or to restart it above the
/// token. A master's fencing state (see the crate docs) lives 10 minutes (the fence TTL) from
/// when it was created or last raised, then restarts from that master's clock in microseconds.
/// A raise gives the state the full fence TTL again, so the shared master keeps the token for
/// 10 minutes after the raise, and restarts from a clock that has moved 10 minutes past it,
/// while the token was read from some master's clock at or before the raise. **Tokens stay
/// strictly increasing as long as no master's clock runs 10 minutes (the fence TTL) or more
/// behind another master's, and no master's clock steps back by that much.** A few seconds of
/// skew, as NTP keeps, is far inside it; a master whose clock is hours off (a host that booted
/// with a wrong clock, a VM restored from a snapshot) can hand out a token below one of the
/// fastest master's.
///
/// # What it does not promise
///
/// - **Process pauses.** A holder stalled (a GC pause, a swapped-out process, a long `await`)
///   past its lease holds a guard it no longer owns. No lock can prevent this; the fencing
///   token can: a store that refuses tokens lower than the highest it has seen refuses the
///   stalled holder's writes.
/// - **Clock jumps.** The lease is timed by the masters' clocks. A master whose clock jumps
///   forward expires the lock early, and a second owner can take the quorum. Run the masters
///   with a slewing time daemon, never stepping the clock.
/// - **Masters restarted empty.** A master that restarts without its data (no persistence, or
///   `appendfsync` less than `always`) forgets the lock: if it rejoins while the lease is still
///   running, another owner can count it towards a second quorum. Restart a crashed master only
///   after the longest lease has passed (Redis's advice for Redlock), or persist with
///   `appendfsync always`. A master without a count starts from its server time in
///   microseconds, so tokens stay increasing across such a restart if the master stays down
///   longer than its clock lags the fastest master's (waiting out the longest lease covers a
///   lag shorter than that lease).
/// - **Masters that are not independent.** The clients must reach different Redis masters; two
///   clients of the same server, or a primary and its replica, count twice.
#[derive(Debug, Clone)]
pub struct Redlock {
    inner: Arc<Settings>,
}

/// What every handle of one [`Redlock`] shares.
#[derive(Debug)]
struct Settings {
    clients: Vec<LockClient>,
    quorum: usize,
    node_timeout: Duration,
    retry_delay: Duration,
}

impl Redlock {
    /// A Redlock over `clients`, one per independent master, with the default settings of
    /// [`RedlockBuilder`].
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for no clients, or the same client given twice.
    pub fn new(clients: impl IntoIterator<Item = LockClient>) -> Result<Self, LockError> {
        Self::builder(clients).build()
    }

    /// Starts a [`RedlockBuilder`] over `clients`, one per independent master.
    pub fn builder(clients: impl IntoIterator<Item = LockClient>) -> RedlockBuilder {
        RedlockBuilder {
            clients: clients.into_iter().collect(),
            node_timeout: RedlockBuilder::DEFAULT_NODE_TIMEOUT,
            retry_delay: RedlockBuilder::DEFAULT_RETRY_DELAY,
        }
    }

    /// A handle to the lock called `name` on every master.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn lock(&self, name: impl Into<String>) -> RedlockLock {
        RedlockLock {
            redlock: self.clone(),
            name: Arc::from(name.into()),
            label: Label::Unlabeled,
        }
    }

    /// How many masters must hold a lock: a majority, `n / 2 + 1` of `n`.
    pub fn quorum(&self) -> usize {
        self.inner.quorum
    }

    /// The clients of the masters, in the order given.
    pub fn clients(&self) -> &[LockClient] {
        &self.inner.clients
    }

    /// [`LockClient::flush`] of every master's client at once: waits until the releases they
    /// run in the background (a dropped [`RedlockGuard`]'s on each master) have finished.
    /// Call it before the process exits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it stops the waiting, not the work.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// drop(redlock.lock("ledger").acquire().await?); // released in the background
    /// redlock.flush().await;
    /// assert!(!redlock.lock("ledger").is_locked().await?);
    /// # Ok(()) });
    /// ```
    pub async fn flush(&self) {
        join_all(self.inner.clients.iter().map(LockClient::flush)).await;
    }
}

/// Configures a [`Redlock`]; made by [`Redlock::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedlockBuilder {
    clients: Vec<LockClient>,
    node_timeout: Duration,
    retry_delay: Duration,
}

impl RedlockBuilder {
    const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(100);
    const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(50);

    /// How long each master has to answer one request of a round; a master that does not
    /// answer in time counts as not taken for that round (its request is undone in the
    /// background). Short beside the lease, so a master that is down costs little of it, and
    /// long beside a round trip, or a slow master is never counted.
    ///
    /// Defaults to 100 ms. Between 1 ms and a year.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// The longest random delay before the next round, after a round that took some masters
    /// but not a quorum, and between rounds while no master answers. The delay is drawn
    /// uniformly below it, so callers that split the masters between them try again apart.
    ///
    /// Defaults to 50 ms. At most a year; zero retries at once.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Checks the settings and makes the Redlock; nothing is sent to the masters.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for no clients, the same client given twice, or a setting out of
    /// range.
    pub fn build(self) -> Result<Redlock, LockError> {
        if self.clients.is_empty() {
            return Err(LockError::config(
                "a Redlock of no clients: give one client per independent Redis master",
            ));
        }
        for (index, client) in self.clients.iter().enumerate() {
            if self.clients[..index].iter().any(|c| c.id() == client.id()) {
                return Err(LockError::config(format!(
                    "a Redlock given client {} twice: each client must reach its own independent master",
                    client.id()
                )));
            }
        }
        if !(MIN_LEASE..=MAX_LEASE).contains(&self.node_timeout) {
            return Err(LockError::config(format!(
                "the Redlock node timeout is {:?}; it must lie between 1ms and a year",
                self.node_timeout
            )));
        }
        if self.retry_delay > MAX_LEASE {
            return Err(LockError::config(format!(
                "the Redlock retry delay is {:?}; it must be at most a year",
                self.retry_delay
            )));
        }
        let quorum = self.clients.len() / 2 + 1;
        Ok(Redlock {
            inner: Arc::new(Settings {
                clients: self.clients,
                quorum,
                node_timeout: self.node_timeout,
                retry_delay: self.retry_delay,
            }),
        })
    }
}

/// A handle to one lock of a [`Redlock`], made by [`Redlock::lock`]. Cheap to clone; holds
/// nothing.
#[derive(Debug, Clone)]
pub struct RedlockLock {
    redlock: Redlock,
    name: Arc<str>,
    label: Label,
}

impl RedlockLock {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Labels this lock's metrics (cargo feature `metrics`) `label`, instead of
    /// `"unlabeled"`: it is measured as a whole, its masters not one by one. Choose one label per
    /// kind of resource (`"report"`), never one per name. Unused without the feature.
    #[must_use]
    pub fn metrics_label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Label::given(label);
        self
    }

    /// Waits as long as it takes for a quorum of the masters, then holds the lock in watchdog
    /// mode: each master's hold is renewed by its client's watchdog, and the lease is lost once
    /// fewer than a quorum of them are renewed.
    ///
    /// Re-entrant as [`Lock`](crate::Lock) is: inside the [scope](RedlockGuard::scope) of a
    /// guard of this lock, it re-enters the masters that guard holds, and carries its token.
    ///
    /// # Errors
    ///
    /// As [`RedlockLock::try_acquire`], but never [`LockError::Timeout`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, every master taken is given back and every request
    /// in flight undone, in the background.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// let mut clients = Vec::new();
    /// for url in &urls {
    ///     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let held = redlock.lock("nightly-report").acquire().await?;
    /// assert!(redlock.lock("nightly-report").is_locked().await?);
    /// held.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub fn acquire(
        &self,
    ) -> impl Future<Output = Result<RedlockGuard, LockError>> + Send + 'static + use<> {
        self.try_acquire(Duration::MAX, None)
    }

    /// Waits at most `wait` for a quorum of the masters; with `lease = Some(d)` holds the lock
    /// for at most `d` (never renewed: the guard's lease ends `d` minus the drift margin after
    /// the round that took it began), with `None` in watchdog mode.
    ///
    /// A round runs even with a wait of zero: `try_acquire(Duration::ZERO, lease)` asks every
    /// master once.
    ///
    /// # Errors
    ///
    /// - [`LockError::Timeout`] if the lock stayed held on too many masters for the whole wait
    ///   (naming a holder, if a master said);
    /// - [`LockError::NoQuorum`] if, at the end of the wait, fewer than a quorum of the masters
    ///   answered (each master's error is in it);
    /// - [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a lease out of range, [`LockError::InvalidName`] for a name a
    ///   master's client refuses;
    /// - [`LockError::LeaseLost`] for a re-entry under a guard that lost its quorum.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`RedlockLock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let lock = redlock.lock("invoice:7");
    /// let held = lock.try_acquire(Duration::from_secs(1), Some(Duration::from_secs(10))).await?;
    /// let err = lock
    ///     .try_acquire(Duration::from_millis(200), None)
    ///     .await
    ///     .expect_err("held by the guard above, outside its scope");
    /// assert!(err.is_timeout());
    /// held.unlock().await?;
    /// # Ok(()) });
    /// ```
    // Not an `async fn`, which would borrow the handle: the future owns a clone of it, so
    // that it can be spawned as a lock's can.
    pub fn try_acquire(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> impl Future<Output = Result<RedlockGuard, LockError>> + Send + 'static + use<> {
        let client = &self.redlock.inner.clients[0];
        let span = tracing::debug_span!("redlock_acquire", lock = %self.name, wait = %ShownWait(wait), ?lease);
        let this = self.clone();
        let acquiring = async move {
            let meter = Meter::new("redlock", &this.label);
            acquire::acquire(&this.redlock.inner, (&this.name, &meter), wait, lease).await
        };
        tracing::Instrument::instrument(client.backend.in_context(acquiring), span)
    }

    /// Whether a quorum of the masters hold the lock now.
    ///
    /// # Errors
    ///
    /// [`LockError::NoQuorum`] if fewer than a quorum of the masters answered.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let lock = redlock.lock("ledger");
    /// assert!(!lock.is_locked().await?);
    /// let held = lock.acquire().await?;
    /// assert!(lock.is_locked().await?);
    /// held.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        let answers = self
            .on_every_master(|client| async move { client.lock(self.name()).is_locked().await })
            .await?;
        Ok(answers.into_iter().filter(|locked| *locked).count() >= self.redlock.quorum())
    }

    /// Deletes the lock on every master, whoever holds it, and wakes its waiters. `true` if any
    /// master had it. A guard of it then finds its lease lost at its next renewal. On each
    /// master it deletes the hold that is there when it asks, never one taken after, as
    /// [`Lock::force_unlock`](crate::Lock::force_unlock).
    ///
    /// # Errors
    ///
    /// [`LockError::NoQuorum`] if fewer than a quorum of the masters answered (those that did
    /// deleted their lock).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped, some masters may have deleted the lock and
    /// others not.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let lock = redlock.lock("ledger");
    /// let held = lock.acquire().await?;
    /// assert!(lock.force_unlock().await?);
    /// assert!(!lock.is_locked().await?);
    /// drop(held); // its release finds nothing to release
    /// # Ok(()) });
    /// ```
    pub async fn force_unlock(&self) -> Result<bool, LockError> {
        let answers = self
            .on_every_master(|client| async move { client.lock(self.name()).force_unlock().await })
            .await?;
        Ok(answers.into_iter().any(|deleted| deleted))
    }

    /// A snapshot of the lock on each master: its [`LockInfo`](crate::LockInfo) there (who
    /// holds it, since when, who waits), or the error of a master that did not answer within
    /// the node timeout. A master that is down or paused costs the call one node timeout and
    /// is reported as such; it never fails the call: each master's error (a name it refuses,
    /// Redis unreachable) is in [`RedlockInfo::masters`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let lock = redlock.lock("report:info");
    /// let held = lock.acquire().await?;
    /// let info = lock.info().await;
    /// // A quorum holds it; a master slower than the quorum may have been left out.
    /// assert!(info.held_on() >= redlock.quorum());
    /// held.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> RedlockInfo {
        let answers = self
            .ask_every_master(|client| async move { client.lock(self.name()).info().await })
            .await;
        RedlockInfo::new(self.name.to_string(), self.redlock.quorum(), answers)
    }

    /// The answers of the masters that gave one to `ask`, each within the node timeout, if a
    /// quorum did.
    async fn on_every_master<'a, T, F>(
        &'a self,
        ask: impl Fn(&'a LockClient) -> F,
    ) -> Result<Vec<T>, LockError>
    where
        F: Future<Output = Result<T, LockError>>,
    {
        let settings = &self.redlock.inner;
        let answers = self.ask_every_master(ask).await;
        let (answered, failed): (Vec<_>, Vec<_>) = answers.into_iter().partition(Result::is_ok);
        let answered: Vec<T> = answered.into_iter().filter_map(Result::ok).collect();
        if answered.len() >= settings.quorum {
            return Ok(answered);
        }
        Err(LockError::NoQuorum {
            name: self.name.to_string(),
            answered: answered.len(),
            quorum: settings.quorum,
            failed: failed.into_iter().filter_map(Result::err).collect(),
        })
    }

    /// Each master's answer to `ask`, in the order of the clients, or its error; a master that
    /// does not answer within the node timeout has a timeout error.
    async fn ask_every_master<'a, T, F>(
        &'a self,
        ask: impl Fn(&'a LockClient) -> F,
    ) -> Vec<Result<T, LockError>>
    where
        F: Future<Output = Result<T, LockError>>,
    {
        let settings = &self.redlock.inner;
        let limit = settings.node_timeout;
        let asking = settings.clients.iter().map(|client| {
            let answer = ask(client);
            async move {
                tokio::time::timeout(limit, answer)
                    .await
                    .unwrap_or_else(|_| {
                        Err(LockError::redis(
                            format!("asking a Redlock master about lock `{}`", self.name),
                            timed_out(limit),
                        ))
                    })
            }
        });
        let first = &settings.clients[0];
        first.backend.in_context(join_all(asking)).await
    }
}

/// When a round's requests must be answered by: `node_timeout` after it began.
fn node_deadline(settings: &Settings, start: Instant) -> Instant {
    start.checked_add(settings.node_timeout).unwrap_or(start)
}
