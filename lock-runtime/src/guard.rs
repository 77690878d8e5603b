//! [`LockGuard`]: proof of holding a lock, and the release on every exit path.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    LockClient, LockError, hub::UNLOCK_MESSAGE, keys::LockKeys, lease::Lease, scope, scripts,
    watchdog::RenewalId,
};

/// A held lock. Dropping it releases the lock; [`LockGuard::unlock`] releases it and reports how
/// that went.
///
/// The drop path sends the release from a spawned task, so it never blocks and works in any
/// `Drop` (a panic unwinding, a cancelled future). Outside a Tokio runtime nothing can be sent:
/// the lock then frees itself when its lease runs out, which the watchdog no longer extends.
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct LockGuard {
    /// `None` once a release has started.
    holding: Option<Holding>,
    keys: Arc<LockKeys>,
    client_id: Arc<str>,
    owner: Arc<str>,
    token: u64,
    lease: Arc<Lease>,
}

/// What a release needs; taken out of the guard by the first release.
#[derive(Debug, Clone)]
pub(crate) struct Holding {
    pub(crate) client: LockClient,
    pub(crate) keys: Arc<LockKeys>,
    pub(crate) owner: Arc<str>,
    /// The watchdog registration of an outermost watchdog-mode hold; re-entries have none.
    pub(crate) renewal: Option<RenewalId>,
}

impl LockGuard {
    pub(crate) fn new(holding: Holding, token: u64, lease: Arc<Lease>) -> Self {
        Self {
            keys: Arc::clone(&holding.keys),
            client_id: Arc::clone(&holding.client.inner.id),
            owner: Arc::clone(&holding.owner),
            holding: Some(holding),
            token,
            lease,
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.keys.name
    }

    /// The fencing token of this hold: strictly greater than every token handed out before for
    /// this lock name (a re-entry carries its outer hold's token).
    ///
    /// Pass it with every write the lock protects, and have the store refuse a token lower than
    /// the highest it has seen: a holder that stalled past its lease then cannot overwrite the
    /// work of the next holder.
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// Resolves when the lease is known lost: the watchdog found the lock gone or owned by
    /// another, Redis stayed unreachable past the lease's deadline, or a fixed lease's deadline
    /// passed. It never resolves while the lease is intact.
    ///
    /// With a fixed lease, a lock deleted early behind the holder's back is noticed only at the
    /// deadline: nothing renews, so nothing asks Redis.
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
    /// let guard = client
    ///     .lock("batch")
    ///     .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(200)))
    ///     .await?;
    /// tokio::select! {
    ///     () = guard.lease_lost() => { /* stop: another owner may hold the lock now */ }
    ///     () = tokio::time::sleep(Duration::from_secs(5)) => unreachable!("a 200 ms lease"),
    /// }
    /// assert!(guard.is_lease_lost());
    /// # Ok(()) });
    /// ```
    pub async fn lease_lost(&self) {
        self.lease.lost().await;
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

    /// Runs `future` inside this guard's scope: acquiring the same lock (through the same client)
    /// from within re-enters it instead of waiting, and [`crate::fencing_token`] returns this
    /// guard's token.
    ///
    /// ```no_run
    /// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
    /// let lock = client.lock("account:1");
    /// let outer = lock.acquire().await?;
    /// outer
    ///     .scope(async {
    ///         // Would wait forever outside the scope; here it re-enters.
    ///         let inner = lock.acquire().await?;
    ///         inner.unlock().await
    ///     })
    ///     .await?;
    /// outer.unlock().await?;
    /// # Ok(()) }
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        scope::enter(
            Arc::clone(&self.client_id),
            self.keys.lock.clone(),
            Arc::clone(&self.owner),
            self.token,
            Arc::clone(&self.lease),
            future,
        )
    }

    /// Releases the lock now and waits for Redis to confirm.
    ///
    /// # Errors
    ///
    /// [`LockError::NotHeld`] if the lock was no longer this owner's (its lease ran out, or it
    /// was force-unlocked), [`LockError::Redis`] if Redis could not be reached within the retry
    /// timeout (the lock then frees itself when its lease runs out).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the release goes on in the background, as if
    /// the guard had been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client.lock("ledger").acquire().await?;
    /// guard.unlock().await?; // released, and Redis confirmed it
    /// # Ok(()) });
    /// ```
    pub async fn unlock(mut self) -> Result<(), LockError> {
        match self.holding.take() {
            Some(holding) => holding.release_now().await,
            None => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(holding) = self.holding.take() {
            holding.release_in_background();
        }
    }
}

impl Holding {
    fn stop_renewal(&mut self) {
        if let Some(id) = self.renewal.take() {
            self.client.inner.watchdog.unregister(id);
        }
    }

    /// Releases one hold. Stops the renewal first, so it never outlives the lock.
    pub(crate) async fn release_now(mut self) -> Result<(), LockError> {
        self.stop_renewal();
        let inner = &self.client.inner;
        let keys = &self.keys;
        let memo = keys.memo(&inner.new_request_id());
        let memo_ms = millis(inner.config.memo_ttl());
        let context = || format!("releasing lock `{}`", keys.name);
        let span = tracing::debug_span!("release", lock = %keys.name);
        let outcome: i64 = inner
            .run(context, None, |mut connection| {
                let mut release = scripts::RELEASE.prepare_invoke();
                release
                    .key(&keys.lock)
                    .key(keys.channel())
                    .key(&memo)
                    .arg(self.owner.as_ref())
                    .arg(UNLOCK_MESSAGE)
                    .arg(memo_ms)
                    .arg(scripts::PUBLISH);
                async move { release.invoke_async(&mut connection).await }
            })
            .instrument(span.clone())
            .await?;
        span.in_scope(|| tracing::debug!(outcome, "released"));
        match outcome {
            1 | 2 => Ok(()),
            0 => Err(LockError::NotHeld {
                name: keys.name.to_string(),
            }),
            _ => Err(wrong_type(keys, None)),
        }
    }

    /// Stops the renewal now and sends the release from a spawned task.
    pub(crate) fn release_in_background(mut self) {
        self.stop_renewal();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let name = Arc::clone(&self.keys.name);
                    if let Err(err) = self.release_now().await {
                        tracing::debug!(lock = %name, error = %err, "background release failed");
                    }
                });
            }
            Err(_) => tracing::warn!(
                lock = %self.keys.name,
                "lock guard dropped outside a Tokio runtime; the lock frees when its lease ends"
            ),
        }
    }
}

pub(crate) fn wrong_type(keys: &LockKeys, found: Option<String>) -> LockError {
    LockError::WrongType {
        name: keys.name.to_string(),
        key: keys.lock.clone(),
        found: found.unwrap_or_else(|| "value of another type".to_owned()),
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
