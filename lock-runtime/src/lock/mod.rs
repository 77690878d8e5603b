//! [`Lock`]: the reentrant lock, a thin layer over the core.
//!
//! What is the lock's own: its Lua scripts and their reply types (`scripts.rs`, `scripts/*.lua`),
//! one [`Attempt`] (a fresh acquisition, tried as often as the wait engine asks), the re-entry,
//! and two [`GiveBack`]s: the release of one hold, and the undo of a request whose caller gave up
//! (an acquisition or a re-entry). Waiting, holding, renewing, releasing on drop and finishing
//! cancelled releases are the core's.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use redis::{Script, ScriptInvocation};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    LockClient, LockError, LockGuard,
    core::{
        backend::Backend,
        hold::{GiveBack, Hold, InFlight},
        hub::{PUBLISH, Wake},
        keys::{FENCE_TTL, Keys},
        lease::{Lease, check_lease, deadline_after, redis_millis, valid_until},
        scope::{self, Held, HoldKind, Holder},
        script::Sent,
        wait::{self, Attempt, Outcome},
        watchdog::{Registration, RenewalId},
    },
};

pub(crate) mod scripts;

use scripts::{
    ABANDON, ACQUIRE, Acquired, FORCE_UNLOCK, ForceUnlocked, REENTER, RELEASE, RENEW, Reentered,
    Released, UNDO_REENTER, Undone,
};

/// A handle to one reentrant lock, made by [`LockClient::lock`]. Cheap to clone; holds nothing.
///
/// The lock is exclusive across every process using the same Redis and key prefix, reentrant
/// within one [scope](LockGuard::scope), and hands out a strictly increasing
/// [fencing token](LockGuard::fencing_token) with every fresh acquisition.
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
    client: LockClient,
    name: Arc<str>,
}

impl Lock {
    pub(crate) fn new(client: LockClient, name: String) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits as long as it takes for the lock, then holds it in watchdog mode: the lease is
    /// renewed while the guard lives.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`] for an empty name or one with braces, [`LockError::WrongType`]
    /// if the lock's key holds something else, [`LockError::LeaseLost`] when re-entering a lock
    /// whose lease the scope has lost, [`LockError::Redis`] if Redis stays unreachable for the
    /// retry timeout.
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
    pub async fn acquire(&self) -> Result<LockGuard, LockError> {
        let acquiring = self.acquire_within(Duration::MAX, None);
        self.client
            .backend
            .in_context(acquiring)
            .instrument(tracing::debug_span!("acquire", lock = %self.name))
            .await
    }

    /// Waits at most `wait` for the lock. With `lease = Some(d)` the lock is held for at most `d`
    /// (never renewed); with `None` it is held in watchdog mode, renewed while the guard lives.
    ///
    /// Any `wait` is valid: `Duration::ZERO` tries once, `Duration::MAX` (or any wait too far
    /// away for the clock) waits without limit. A lease must lie between 1 ms and a year.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if another owner held the lock for the whole wait, and the errors of
    /// [`Lock::acquire`]. A lease out of range is a [`LockError::Config`] error; so is a lease
    /// too short to survive the round trip that set it ([`LockError::LeaseLost`] then, and
    /// nothing stays held).
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
    pub async fn try_acquire(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<LockGuard, LockError> {
        let acquiring = self.acquire_within(wait, lease);
        self.client
            .backend
            .in_context(acquiring)
            .instrument(tracing::debug_span!("acquire", lock = %self.name, ?wait, ?lease))
            .await
    }

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
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        let backend = &self.client.backend;
        let keys = backend.keys(&self.name)?;
        let exists = redis::cmd("EXISTS").arg(&keys.main).clone();
        let context = || format!("checking lock `{}`", keys.name);
        backend
            .in_context(backend.scripts.query(&exists, context))
            .await
    }

    /// Deletes the lock whoever holds it, and wakes its waiters. Returns whether it was held.
    ///
    /// For operators and tests: the holder is not told until its next renewal (watchdog mode) or
    /// its deadline (fixed lease), and may go on believing it holds the lock until then.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the deletion is one atomic script, sent or not.
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
    pub async fn force_unlock(&self) -> Result<bool, LockError> {
        let backend = &self.client.backend;
        let keys = backend.keys(&self.name)?;
        let mut force = FORCE_UNLOCK.prepare_invoke();
        force
            .key(&keys.main)
            .key(keys.channel())
            .arg(Wake::One.message())
            .arg(PUBLISH);
        let context = || format!("force-unlocking lock `{}`", keys.name);
        let forced = backend.in_context(backend.scripts.eval(&force, None, context));
        match forced.await?.reply {
            ForceUnlocked::Deleted => Ok(true),
            ForceUnlocked::NotLocked => Ok(false),
            ForceUnlocked::WrongType => Err(wrong_type(&keys, None)),
        }
    }

    /// Waits up to `wait` for the lock (see [`try_acquire`](Self::try_acquire)), or re-enters it
    /// if the current scope holds it.
    async fn acquire_within(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<LockGuard, LockError> {
        let start = Instant::now();
        let backend = &self.client.backend;
        let keys = Arc::new(backend.keys(&self.name)?);
        let lease = lease
            .map(|lease| check_lease(&self.name, "lease", lease))
            .transpose()?;
        let deadline = deadline_after(start, wait);
        if let Some(held) = scope::find(backend.ids.client(), &keys.main, HoldKind::Exclusive) {
            return Box::pin(reenter(backend, keys, &held, start, deadline)).await;
        }
        let mut acquire = Acquire::new(backend, &keys, lease);
        wait::wait(backend, &keys, start, deadline, &mut acquire).await
    }
}

/// One fresh acquisition: a new owner id, tried as often as the wait engine asks.
struct Acquire {
    backend: Arc<Backend>,
    keys: Arc<Keys>,
    owner: Arc<str>,
    /// The lease each try asks for: the fixed lease, or the watchdog timeout.
    lease_time: Duration,
    /// What the holder will know of its lease; renewed by the watchdog in watchdog mode.
    lease: Arc<Lease>,
    watchdog: bool,
    /// Registered with the watchdog before a try is sent (watchdog mode), removed if the try took
    /// nothing, handed to the hold if it took the lock.
    renewal: Option<RenewalId>,
    /// Armed once a try had to be resent: an earlier copy may still reach Redis later and take
    /// the lock for this owner. Dropped armed (the acquisition ends without a guard), it undoes
    /// and marks the owner abandoned; disarmed at hand-over, the guard's release does it.
    stale_copies: Option<InFlight>,
}

impl Acquire {
    fn new(backend: &Arc<Backend>, keys: &Arc<Keys>, lease: Option<Duration>) -> Self {
        let lease_time = lease.unwrap_or(backend.config.watchdog_timeout);
        Self {
            backend: Arc::clone(backend),
            keys: Arc::clone(keys),
            owner: backend.ids.owner(),
            lease_time,
            lease: Lease::new(&keys.name, Instant::now()),
            watchdog: lease.is_none(),
            renewal: None,
            stale_copies: None,
        }
    }

    /// The undo of this acquisition: release whatever it holds, and mark its owner abandoned.
    fn abandon(&self) -> Box<Undo> {
        Undo::acquisition(&self.keys, &self.owner)
    }

    fn stop_renewal(&mut self) {
        if let Some(id) = self.renewal.take() {
            self.backend.watchdog.unregister(id);
        }
    }

    /// Gives back a lock this acquisition took but will not hand out.
    async fn give_back(&mut self) {
        // Abandoning marks the owner: stale copies of the request are covered too.
        if let Some(stale_copies) = self.stale_copies.take() {
            stale_copies.disarm();
        }
        if let Err(err) = self.abandon().give_back(&self.backend).await {
            tracing::debug!(lock = %self.keys.name, error = %err, "giving back a lock not handed out failed");
        }
    }

    /// The guard of the lock this acquisition took; the renewal goes with it.
    fn hand_over(&mut self, token: u64, sent: Instant) -> LockGuard {
        self.lease.extend_to(valid_until(sent, self.lease_time));
        let renewal = self.renewal.take();
        if let Some(id) = renewal {
            self.backend.watchdog.activate(id);
        }
        tracing::debug!(lock = %self.keys.name, token, "acquired");
        let release = Box::new(Release {
            keys: Arc::clone(&self.keys),
            owner: Arc::clone(&self.owner),
            abandon_after: self.stale_copies.take().map(InFlight::disarm).is_some(),
        });
        let holder = Holder {
            client_id: Arc::clone(self.backend.ids.client()),
            key: self.keys.main.clone(),
            kind: HoldKind::Exclusive,
            owner: Arc::clone(&self.owner),
            token,
            lease: Arc::clone(&self.lease),
        };
        let hold = Hold::new(Arc::clone(&self.backend), release, renewal, None);
        LockGuard::new(
            hold,
            Arc::clone(&self.keys.name),
            holder,
            self.backend.runtime,
        )
    }
}

impl Attempt for Acquire {
    type Output = LockGuard;

    async fn attempt(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Outcome<LockGuard>, LockError> {
        // Registered before the request is sent, so a lock taken is never left unrenewed; only
        // for the try, so a task that is merely waiting costs the watchdog nothing.
        if self.watchdog && self.renewal.is_none() {
            let mut renew = RENEW.prepare_invoke();
            renew
                .key(&self.keys.main)
                .arg(self.owner.as_ref())
                .arg(redis_millis(self.lease_time));
            let registration =
                Registration::new(&self.keys.name, renew, &self.lease, self.lease_time);
            self.renewal = Some(self.backend.watchdog.register(registration));
        }
        let keys = Arc::clone(&self.keys);
        let acquire = acquire_call(&keys, &self.owner, self.lease_time);
        let context = || format!("acquiring lock `{}`", keys.name);
        let in_flight = InFlight::arm(&self.backend, self.abandon());
        let Sent {
            reply: (reply, acknowledged),
            sent,
            resent,
        } = self
            .backend
            .scripts
            .eval_replicated::<Acquired>(&acquire, deadline, context)
            .await?;
        if resent && self.stale_copies.is_none() {
            self.stale_copies = Some(in_flight);
        } else {
            in_flight.disarm();
        }
        match reply {
            Acquired::Taken { token } => {
                if let (Some(wait), Some(acknowledged)) =
                    (self.backend.scripts.replica_wait(), acknowledged)
                    && acknowledged < wait.replicas
                {
                    self.stop_renewal();
                    self.give_back().await;
                    return Err(LockError::NotReplicated {
                        name: keys.name.to_string(),
                        acknowledged,
                        required: wait.replicas,
                    });
                }
                if valid_until(sent, self.lease_time) <= Instant::now() {
                    // Never hand out a guard whose lease is already spent.
                    self.stop_renewal();
                    self.give_back().await;
                    return Err(LockError::LeaseLost {
                        name: keys.name.to_string(),
                    });
                }
                Ok(Outcome::Done(self.hand_over(token, sent)))
            }
            Acquired::Busy { ttl } => {
                self.stop_renewal();
                Ok(Outcome::Busy { ttl })
            }
            Acquired::WrongType { found } => {
                self.stop_renewal();
                Err(wrong_type(&keys, Some(found)))
            }
            // Only a request whose caller gave up is marked abandoned; this one is still wanted.
            Acquired::Abandoned => {
                self.stop_renewal();
                Err(LockError::LeaseLost {
                    name: keys.name.to_string(),
                })
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        self.stop_renewal();
    }
}

/// Acquires again a lock the current scope holds: one more hold under the scope's owner id, once
/// no other re-entry of that scope is held.
async fn reenter(
    backend: &Arc<Backend>,
    keys: Arc<Keys>,
    held: &Held,
    start: Instant,
    deadline: Option<Instant>,
) -> Result<LockGuard, LockError> {
    let turn = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, held.exclusive_reentry())
            .await
            .map_err(|_| LockError::Timeout {
                name: keys.name.to_string(),
                waited: start.elapsed(),
            })?,
        None => held.exclusive_reentry().await,
    };
    let owner = &held.holder.owner;
    let request = backend.ids.request();
    let mut call = REENTER.prepare_invoke();
    call.key(&keys.main)
        .key(keys.memo(&request))
        .arg(owner.as_ref())
        .arg(redis_millis(backend.config.memo_ttl()));
    let context = || format!("re-entering lock `{}`", keys.name);
    let in_flight = InFlight::arm(backend, Undo::reentry(&keys, owner, &request));
    let reply = backend
        .scripts
        .eval::<Reentered>(&call, deadline, context)
        .await?;
    in_flight.disarm();
    match reply.reply {
        Reentered::Entered => {
            tracing::debug!(lock = %keys.name, "re-entered");
            let release = Box::new(Release {
                keys: Arc::clone(&keys),
                owner: Arc::clone(owner),
                abandon_after: false,
            });
            let hold = Hold::new(Arc::clone(backend), release, None, Some(turn));
            Ok(LockGuard::new(
                hold,
                Arc::clone(&keys.name),
                held.holder.clone(),
                backend.runtime,
            ))
        }
        Reentered::WrongType => Err(wrong_type(&keys, None)),
        Reentered::Lost | Reentered::Cancelled => Err(LockError::LeaseLost {
            name: keys.name.to_string(),
        }),
    }
}

/// Releases one hold of an owner.
struct Release {
    keys: Arc<Keys>,
    owner: Arc<str>,
    /// The acquisition had to resend its request, so a copy may still arrive after this release:
    /// mark the owner abandoned once the lock is given back (`abandon.lua`).
    abandon_after: bool,
}

impl GiveBack for Release {
    fn name(&self) -> &str {
        &self.keys.name
    }

    fn give_back<'a>(&'a self, backend: &'a Backend) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let keys = &self.keys;
            let request = backend.ids.request();
            let release = release_call(keys, &self.owner, &request, backend.config.memo_ttl());
            let context = || format!("releasing lock `{}`", keys.name);
            let released = backend
                .scripts
                .eval::<Released>(&release, None, context)
                .await?;
            tracing::debug!(lock = %keys.name, outcome = ?released.reply, "released");
            if self.abandon_after && released.reply != Released::StillHeld {
                Undo::acquisition(keys, &self.owner)
                    .give_back(backend)
                    .await?;
            }
            match released.reply {
                Released::Freed | Released::StillHeld => Ok(()),
                Released::NotHeld => Err(LockError::NotHeld {
                    name: keys.name.to_string(),
                }),
                Released::WrongType => Err(wrong_type(keys, None)),
            }
        })
    }
}

/// Undoes a request whose caller gave up: a fresh acquisition (`abandon.lua`, also for a lock
/// taken but not handed out) or a re-entry (`undo_reenter.lua`). Both scripts take the same KEYS
/// and ARGV: the lock, its channel, and the key that marks the request given up.
struct Undo {
    script: &'static Script,
    keys: Arc<Keys>,
    owner: Arc<str>,
    /// The abandoned mark of the owner, or the memo of the re-entry request.
    mark: String,
}

impl Undo {
    fn acquisition(keys: &Arc<Keys>, owner: &Arc<str>) -> Box<Self> {
        Box::new(Self {
            script: &ABANDON,
            keys: Arc::clone(keys),
            owner: Arc::clone(owner),
            mark: abandoned_mark(keys, owner),
        })
    }

    fn reentry(keys: &Arc<Keys>, owner: &Arc<str>, request: &str) -> Box<Self> {
        Box::new(Self {
            script: &UNDO_REENTER,
            keys: Arc::clone(keys),
            owner: Arc::clone(owner),
            mark: keys.memo(request),
        })
    }
}

impl GiveBack for Undo {
    fn name(&self) -> &str {
        &self.keys.name
    }

    fn give_back<'a>(&'a self, backend: &'a Backend) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let keys = &self.keys;
            let mut undo = self.script.prepare_invoke();
            undo.key(&keys.main)
                .key(keys.channel())
                .key(&self.mark)
                .arg(self.owner.as_ref())
                .arg(Wake::One.message())
                .arg(redis_millis(backend.config.abandoned_ttl()))
                .arg(PUBLISH);
            let context = || format!("undoing a request on lock `{}`", keys.name);
            let undone = backend.scripts.eval::<Undone>(&undo, None, context).await?;
            tracing::debug!(lock = %keys.name, outcome = ?undone.reply, "request undone");
            Ok(())
        })
    }
}

/// The call of `acquire.lua` for a fresh acquisition by `owner`.
pub(crate) fn acquire_call(keys: &Keys, owner: &str, lease: Duration) -> ScriptInvocation<'static> {
    let mut acquire = ACQUIRE.prepare_invoke();
    acquire
        .key(&keys.main)
        .key(keys.fence())
        .key(abandoned_mark(keys, owner))
        .arg(owner)
        .arg(redis_millis(lease))
        .arg(redis_millis(FENCE_TTL));
    acquire
}

/// The call of `release.lua` giving back one hold of `owner`, as request `request`.
pub(crate) fn release_call(
    keys: &Keys,
    owner: &str,
    request: &str,
    memo_ttl: Duration,
) -> ScriptInvocation<'static> {
    let mut release = RELEASE.prepare_invoke();
    release
        .key(&keys.main)
        .key(keys.channel())
        .key(keys.memo(request))
        .arg(owner)
        .arg(Wake::One.message())
        .arg(redis_millis(memo_ttl))
        .arg(PUBLISH);
    release
}

/// The key marking `owner` abandoned (see `scripts/abandon.lua`).
fn abandoned_mark(keys: &Keys, owner: &str) -> String {
    keys.sub(&format!("abandoned:{owner}"))
}

fn wrong_type(keys: &Keys, found: Option<String>) -> LockError {
    LockError::WrongType {
        name: keys.name.to_string(),
        key: keys.main.clone(),
        found: found.unwrap_or_else(|| "value of another type".to_owned()),
    }
}
