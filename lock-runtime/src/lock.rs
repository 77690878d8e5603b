//! [`Lock`]: the reentrant lock, and how a task waits for it.

use std::{pin::pin, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    LockClient, LockError, LockGuard,
    guard::{Holding, millis, wrong_type},
    hub::{Subscription, UNLOCK_MESSAGE},
    keys::LockKeys,
    lease::{Lease, valid_until},
    scope, scripts,
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

/// What one acquire request found.
enum Attempt {
    Acquired { token: u64, sent: Instant },
    HeldByOther { ttl: Option<Duration> },
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
        self.acquire_within(None, None)
            .instrument(tracing::debug_span!("acquire", lock = %self.name))
            .await
    }

    /// Waits at most `wait` for the lock. With `lease = Some(d)` the lock is held for at most `d`
    /// (never renewed); with `None` it is held in watchdog mode, renewed while the guard lives.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if another owner held the lock for the whole wait, and the errors of
    /// [`Lock::acquire`]. A zero `lease` is a [`LockError::Config`] error.
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
        self.acquire_within(Some(wait), lease)
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
        let keys = self.keys()?;
        let context = || format!("checking lock `{}`", keys.name);
        self.client
            .inner
            .run(context, None, |mut connection| {
                let query = redis::cmd("EXISTS").arg(&keys.lock).clone();
                async move { query.query_async(&mut connection).await }
            })
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
        let keys = self.keys()?;
        let context = || format!("force-unlocking lock `{}`", keys.name);
        let outcome: i64 = self
            .client
            .inner
            .run(context, None, |mut connection| {
                let mut force = scripts::FORCE_UNLOCK.prepare_invoke();
                force
                    .key(&keys.lock)
                    .key(keys.channel())
                    .arg(UNLOCK_MESSAGE)
                    .arg(scripts::PUBLISH);
                async move { force.invoke_async(&mut connection).await }
            })
            .await?;
        match outcome {
            -1 => Err(wrong_type(&keys, None)),
            outcome => Ok(outcome == 1),
        }
    }

    fn keys(&self) -> Result<LockKeys, LockError> {
        LockKeys::new(&self.client.inner.config.key_prefix, &self.name)
    }

    async fn acquire_within(
        &self,
        wait: Option<Duration>,
        lease: Option<Duration>,
    ) -> Result<LockGuard, LockError> {
        let start = Instant::now();
        let keys = Arc::new(self.keys()?);
        if lease == Some(Duration::ZERO) {
            return Err(LockError::config(format!(
                "the lease of lock `{}` is zero; give a positive lease, or `None` for the watchdog",
                keys.name
            )));
        }
        let inner = &self.client.inner;
        if let Some(held) = scope::find(&inner.id, &keys.lock) {
            return Box::pin(self.reenter(keys, &held)).await;
        }
        let deadline = wait.map(|wait| start + wait);
        let lease_time = lease.unwrap_or(inner.config.watchdog_timeout);
        let owner = inner.new_owner_id();
        let held_lease = Lease::new(&keys, valid_until(start, lease_time));
        let mut pending = Pending {
            holding: Holding {
                client: self.client.clone(),
                keys: Arc::clone(&keys),
                owner,
                renewal: None,
            },
            renew: lease.is_none().then(|| Arc::clone(&held_lease)),
            in_flight: false,
            settled: false,
        };

        // If other local tasks already wait on this lock, join their confirmed subscription
        // before the first attempt (it costs nothing); otherwise subscribe only once the lock is
        // found taken, so an uncontended acquisition is a single round trip.
        let mut subscription = inner.hub.join_if_confirmed(&keys.channel());
        let mut seen_confirmed = subscription.is_some();
        let mut try_now = true;
        let mut ttl = None;
        loop {
            if subscription.is_none() && !try_now {
                tracing::debug!(lock = %keys.name, ?ttl, "lock held by another owner; waiting");
                subscription = Some(inner.hub.join(&keys.channel()));
            }
            // Register for wake-ups *before* trying, so one sent during the attempt is kept.
            let mut woken = pin!(subscription.as_ref().map(Subscription::woken));
            if let Some(woken) = woken.as_mut().as_pin_mut() {
                woken.enable();
            }
            if let Some(subscription) = &subscription
                && !seen_confirmed
                && subscription.is_confirmed()
            {
                // An unlock published before the subscription took effect went unseen.
                seen_confirmed = true;
                try_now = true;
            }
            if try_now {
                match Box::pin(pending.attempt(lease_time, deadline)).await? {
                    Attempt::Acquired { token, sent } => {
                        return Ok(pending.into_guard(token, sent, lease_time, held_lease));
                    }
                    Attempt::HeldByOther { ttl: left } => ttl = left,
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(LockError::Timeout {
                    name: keys.name.to_string(),
                    waited: now - start,
                });
            }
            if subscription.is_none() {
                // Subscribe at the top of the loop; its confirmation calls for the next attempt.
                try_now = false;
                continue;
            }
            // Never sleep past the holder's TTL (a crashed holder publishes nothing) nor past our
            // own deadline. A lock without TTL is not ours; look again after a renewal interval.
            let mut wake_at = now + ttl.unwrap_or(inner.config.renew_interval());
            if let Some(deadline) = deadline {
                wake_at = wake_at.min(deadline);
            }
            if let Some(woken) = woken.as_mut().as_pin_mut() {
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep_until(wake_at) => {}
                }
            }
            try_now = true;
        }
    }

    /// Acquires again a lock the current scope holds: one more hold under the scope's owner id.
    async fn reenter(
        &self,
        keys: Arc<LockKeys>,
        held: &scope::HeldLock,
    ) -> Result<LockGuard, LockError> {
        let inner = &self.client.inner;
        let memo = keys.memo(&inner.new_request_id());
        let memo_ms = millis(inner.config.memo_ttl());
        let context = || format!("re-entering lock `{}`", keys.name);
        let (status, value): (i64, redis::Value) = inner
            .run(context, None, |mut connection| {
                let mut acquire = scripts::ACQUIRE.prepare_invoke();
                acquire
                    .key(&keys.lock)
                    .key(keys.fence())
                    .key(&memo)
                    .arg(held.owner.as_ref())
                    .arg(0)
                    .arg("reenter")
                    .arg(memo_ms);
                async move { acquire.invoke_async(&mut connection).await }
            })
            .await?;
        match status {
            2 => {
                tracing::debug!(lock = %keys.name, "re-entered");
                let holding = Holding {
                    client: self.client.clone(),
                    keys,
                    owner: Arc::clone(&held.owner),
                    renewal: None,
                };
                Ok(LockGuard::new(holding, held.token, Arc::clone(&held.lease)))
            }
            -1 => Err(wrong_type(&keys, redis::from_redis_value(value).ok())),
            _ => Err(LockError::LeaseLost {
                name: keys.name.to_string(),
            }),
        }
    }
}

/// An acquisition under way. If it is dropped (an error, or the caller's future cancelled) while
/// a request is in flight, that request may have taken the lock: release it in the background.
/// A fresh owner id belongs to this acquisition alone, so that release cannot touch anyone else's
/// hold.
struct Pending {
    holding: Holding,
    /// In watchdog mode, the lease the watchdog renews once the lock is taken.
    renew: Option<Arc<Lease>>,
    in_flight: bool,
    /// Set once the lock is handed to a guard: nothing left to undo.
    settled: bool,
}

impl Pending {
    async fn attempt(
        &mut self,
        lease: Duration,
        deadline: Option<Instant>,
    ) -> Result<Attempt, LockError> {
        // Registered before the request is sent, so a lock taken is never left unrenewed; only
        // for the attempt, so a task that is merely waiting costs the watchdog nothing.
        if let Some(lease) = &self.renew
            && self.holding.renewal.is_none()
        {
            let holding = &self.holding;
            let id = holding
                .client
                .inner
                .watchdog
                .register(&holding.keys, &holding.owner, lease);
            self.holding.renewal = Some(id);
        }
        let holding = &self.holding;
        let keys = &holding.keys;
        let inner = &holding.client.inner;
        let lease_ms = millis(lease);
        let context = || format!("acquiring lock `{}`", keys.name);
        let mut sent = Instant::now();
        self.in_flight = true;
        let replicas = inner.config.replicas;
        let ((status, value), acknowledged): ((i64, redis::Value), Option<usize>) = inner
            .run(context, deadline, |mut connection| {
                sent = Instant::now();
                let mut acquire = scripts::ACQUIRE.prepare_invoke();
                acquire
                    .key(&keys.lock)
                    .key(keys.fence())
                    .arg(holding.owner.as_ref())
                    .arg(lease_ms)
                    .arg("fresh");
                async move {
                    let Some(check) = replicas else {
                        return Ok((acquire.invoke_async(&mut connection).await?, None));
                    };
                    // One pipeline, so the WAIT covers this connection's write of the lock.
                    let mut pipeline = redis::pipe();
                    pipeline
                        .invoke_script(&acquire)
                        .cmd("WAIT")
                        .arg(check.replicas)
                        .arg(millis(check.timeout));
                    match pipeline.query_async(&mut connection).await {
                        Err(err) if err.kind() == redis::ServerErrorKind::NoScript.into() => {
                            acquire.load_async(&mut connection).await?;
                            pipeline.query_async(&mut connection).await
                        }
                        reply => reply,
                    }
                }
            })
            .await?;
        self.in_flight = false;
        match status {
            1 => {
                let token = redis::from_redis_value(value)
                    .map_err(|err| LockError::redis(context(), err.into()))?;
                if let (Some(check), Some(acknowledged)) = (replicas, acknowledged)
                    && acknowledged < check.replicas
                {
                    if let Err(err) = self.holding.clone().release_now().await {
                        tracing::debug!(lock = %keys.name, error = %err, "releasing an unreplicated lock failed");
                    }
                    return Err(LockError::NotReplicated {
                        name: keys.name.to_string(),
                        acknowledged,
                        required: check.replicas,
                    });
                }
                Ok(Attempt::Acquired { token, sent })
            }
            0 => {
                let ttl: i64 = redis::from_redis_value(value).unwrap_or(-1);
                self.stop_renewal();
                Ok(Attempt::HeldByOther {
                    ttl: u64::try_from(ttl).ok().map(Duration::from_millis),
                })
            }
            _ => {
                let err = wrong_type(keys, redis::from_redis_value(value).ok());
                self.stop_renewal();
                Err(err)
            }
        }
    }

    fn stop_renewal(&mut self) {
        if let Some(id) = self.holding.renewal.take() {
            self.holding.client.inner.watchdog.unregister(id);
        }
    }

    fn into_guard(
        mut self,
        token: u64,
        sent: Instant,
        lease_time: Duration,
        lease: Arc<Lease>,
    ) -> LockGuard {
        self.settled = true;
        let holding = self.holding.clone();
        lease.extend_to(valid_until(sent, lease_time));
        if let Some(id) = holding.renewal {
            holding.client.inner.watchdog.activate(id);
        }
        tracing::debug!(lock = %holding.keys.name, token, "acquired");
        LockGuard::new(holding, token, lease)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.in_flight {
            self.holding.clone().release_in_background();
        } else {
            self.stop_renewal();
        }
    }
}
