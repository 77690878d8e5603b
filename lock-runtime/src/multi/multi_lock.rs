//! [`MultiLock`]: several reentrant locks taken all or nothing, deadlock-free.

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

use futures_util::future::{select_all, try_join_all};
use tokio::time::Instant;

use super::{release_all, released};
use crate::{
    LockClient, LockError, LockGuard, LockInfo,
    core::{
        lease::deadline_after,
        meter::{Holding, Label, Meter, Won},
        scope,
    },
    lock::info,
};

/// A set of reentrant locks taken all or nothing, made by [`LockClient::multi_lock`]. Cheap to
/// clone; holds nothing.
///
/// Its members are the very locks [`LockClient::lock`] takes: a multi-lock on `["a", "b"]`
/// excludes a plain lock on `"a"`, and the other way round.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// // A transfer between two accounts: both, or neither.
/// let accounts = client.multi_lock(["acct:1", "acct:2"]);
/// let held = accounts.try_acquire(Duration::from_secs(5), None).await?;
/// // ... move the money ...
/// held.unlock().await?;
/// # Ok(()) }
/// ```
///
/// # All or nothing, and no deadlock
///
/// The members are taken one after the other, each within what is left of the wait, in the
/// order of their names, whatever order the caller gave them in: two multi-locks over the same
/// names, named in opposite orders, never each hold one and wait for the other. If a member
/// cannot be taken (its wait runs out, Redis fails), or the caller gives up half-way (the future
/// is dropped), every member already taken is released, and a member whose request was in
/// flight is undone, as for any lock (Redisson's multi-lock can leave them mixed, issue 4456).
/// A name given twice is taken once. Each member is a separate Redis key, in its own hash slot:
/// on Redis Cluster the members may live on different nodes.
///
/// # Leases and tokens
///
/// Every member is taken with the same lease (the watchdog's, or the fixed one given), so the
/// multi-lock's lease is the shortest of its members': [`MultiLockGuard::lease_lost`] resolves
/// when any member's is lost. Each member keeps its own fencing token
/// ([`MultiLockGuard::guards`]): tokens of different names are not comparable.
#[derive(Debug, Clone)]
pub struct MultiLock {
    client: LockClient,
    /// Sorted and without duplicates: the order every caller takes them in.
    names: Arc<[Arc<str>]>,
    label: Label,
}

impl MultiLock {
    pub(crate) fn new(client: LockClient, names: Vec<String>) -> Self {
        let mut names: Vec<Arc<str>> = names.into_iter().map(Arc::from).collect();
        names.sort_unstable();
        names.dedup();
        Self {
            client,
            names: names.into(),
            label: Label::Unlabeled,
        }
    }

    /// Labels this multi-lock's metrics (cargo feature `metrics`) `label`, instead of
    /// `"unlabeled"`: it is measured as a whole, its members not one by one. Choose one label
    /// per kind of resource (`"transfer"`), never one per name. Unused without the feature.
    #[must_use]
    pub fn metrics_label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Label::given(label);
        self
    }

    /// The names of its locks, in the order they are taken (sorted, each once).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(AsRef::as_ref)
    }

    /// Waits as long as it takes for every lock, then holds them in watchdog mode.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] for a multi-lock of no names, and the first error of a member (as
    /// [`Lock::acquire`](crate::Lock::acquire)); every member taken before it is then released.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, the members taken are released and a member's
    /// request in flight is undone, in the background.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let both = client.multi_lock(["left", "right"]).acquire().await?;
    /// assert!(client.lock("left").is_locked().await?);
    /// both.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn acquire(&self) -> Result<MultiLockGuard, LockError> {
        self.try_acquire(Duration::MAX, None).await
    }

    /// Waits at most `wait` (for all of them together) for every lock; with `lease = Some(d)`
    /// holds each for at most `d` (never renewed), with `None` in watchdog mode.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] naming the member that stayed held past the wait; every member
    /// taken before it is released. Otherwise as [`MultiLock::acquire`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`MultiLock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let busy = client.lock("b").acquire().await?;
    /// let err = client
    ///     .multi_lock(["a", "b"])
    ///     .try_acquire(Duration::from_millis(100), None)
    ///     .await
    ///     .expect_err("b is held");
    /// assert!(err.is_timeout());
    /// assert!(!client.lock("a").is_locked().await?, "a was given back");
    /// busy.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn try_acquire(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<MultiLockGuard, LockError> {
        if self.names.is_empty() {
            return Err(LockError::config(
                "a multi-lock of no names: name at least one lock",
            ));
        }
        let meter = Meter::new("multi_lock", &self.label);
        let guards = meter.measure(self.take_all(wait, lease)).await?;
        Ok(MultiLockGuard {
            guards,
            holding: meter.holding(),
        })
    }

    /// Takes every member in name order within `wait`, or none.
    async fn take_all(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<Won<Vec<LockGuard>>, LockError> {
        let deadline = deadline_after(Instant::now(), wait);
        let mut guards = Vec::with_capacity(self.names.len());
        for name in self.names.iter() {
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let member = self.client.lock(name.as_ref()).member();
            match member.try_acquire(left, lease).await {
                Ok(guard) => guards.push(guard),
                Err(err) => {
                    release_all(guards).await;
                    return Err(err);
                }
            }
        }
        Ok(Won::found_free(guards))
    }

    /// A snapshot of each member, in name order: its [`LockInfo`], as
    /// [`Lock::info`](crate::Lock::info) gives it (who holds it, since when, who waits). The
    /// members are read at once, each in one read-only script: each snapshot is consistent in
    /// itself, not with the others (a member may change hands between them). An empty
    /// multi-lock has none.
    ///
    /// # Errors
    ///
    /// The first error of a member, as [`Lock::info`](crate::Lock::info)'s.
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
    /// let accounts = client.multi_lock(["acct:9", "acct:8"]);
    /// let one = client.lock("acct:9").acquire().await?;
    /// let held: Vec<_> = accounts.info().await?.iter().map(|m| m.is_held()).collect();
    /// assert_eq!(held, [false, true], "in name order: acct:8, acct:9");
    /// one.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<Vec<LockInfo>, LockError> {
        try_join_all(self.names.iter().map(|name| info::info(&self.client, name))).await
    }
}

/// The locks of a [`MultiLock`], all held until this is released or dropped.
#[must_use = "dropping the guard releases every lock at once"]
#[derive(Debug)]
pub struct MultiLockGuard {
    /// In name order.
    guards: Vec<LockGuard>,
    /// The hold's time, measured until the release starts.
    holding: Holding,
}

impl MultiLockGuard {
    /// The guard of each member, in name order: each has its own fencing token, hash tag and
    /// lock-checked writes ([`LockGuard::exec`]).
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// Resolves when the lease of any member is known lost: from then on, another owner may
    /// hold that member.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes the leases.
    pub async fn lease_lost(&self) {
        let losses = self.guards.iter().map(|guard| Box::pin(guard.lease_lost()));
        select_all(losses).await;
    }

    /// Whether the lease of any member is known lost right now.
    pub fn is_lease_lost(&self) -> bool {
        self.guards.iter().any(LockGuard::is_lease_lost)
    }

    /// How much is left of the shortest lease of the members.
    pub fn remaining_lease(&self) -> Duration {
        self.guards
            .iter()
            .map(LockGuard::remaining_lease)
            .min()
            .unwrap_or_default()
    }

    /// Runs `future` inside the scope of every member: taking any of them again from within
    /// re-enters it, and [`fencing_token`](crate::fencing_token) returns the last member's.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        let holders: Vec<_> = self.guards.iter().map(LockGuard::holder).collect();
        scope::enter_all(holders, future)
    }

    /// Releases every member now, all at once, and waits for Redis to confirm.
    ///
    /// # Errors
    ///
    /// [`LockError::MultiRelease`] with one error per member that failed (its lease had run
    /// out: [`LockError::NotHeld`]; or Redis failed); every other member is released even then
    /// (Redisson's stops at the first lock it does not hold, and leaves the rest).
    ///
    /// # Cancel safety
    ///
    /// A release once started finishes in the background if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let both = client.multi_lock(["x", "y"]).acquire().await?;
    /// client.lock("x").force_unlock().await?;
    /// let err = both.unlock().await.expect_err("x was taken away");
    /// assert!(matches!(err, lock_runtime::LockError::MultiRelease { .. }));
    /// assert!(!client.lock("y").is_locked().await?, "y was released all the same");
    /// # Ok(()) });
    /// ```
    pub async fn unlock(self) -> Result<(), LockError> {
        let Self { guards, holding } = self;
        holding.end();
        let failed: Vec<LockError> = released(guards)
            .await
            .into_iter()
            .filter_map(|(_, outcome)| outcome.err())
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(LockError::MultiRelease { failed })
        }
    }
}
