//! [`MultiLock`]: several reentrant locks taken all or nothing, deadlock-free.

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

use futures_util::{
    FutureExt,
    future::{Either, join_all, ready, select_all, try_join_all},
};
use tokio::time::Instant;

use super::{release_all, released};
use crate::{
    core::{
        backend::Backend,
        lease::{deadline_after, drift, redis_millis, valid_until},
        meter::{Holding, Label, Meter, Won},
        scope::{self, HoldKind},
        watchdog::Renewal,
    },
    error::LockError,
    family::{
        flavor::ONE_OWNER,
        guard::LockGuard,
        handle::Handle,
        info::{self, LockInfo},
    },
    lock::Lock,
};

/// A set of reentrant locks taken all or nothing, made by
/// [`LockClient::multi_lock`](crate::LockClient::multi_lock). Cheap to clone; holds nothing.
///
/// Its members are the very locks [`LockClient::lock`](crate::LockClient::lock) takes: a
/// multi-lock on `["a", "b"]` excludes a plain lock on `"a"`, and the other way round.
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
///
/// A guard is never handed out with a member whose lease is spent. A fixed lease runs from the
/// moment each member is taken, so the members taken first run theirs down while a later one
/// is waited for. Once the last member is taken, every member whose lease lags the last one's
/// by more than the drift margin (1 % of the lease + 2 ms) is re-armed to the full lease, by a
/// script that first checks this owner still holds it, and its deadline is timed from that
/// request; an uncontended acquisition, whose members are taken back to back, sends nothing
/// more. A member whose lease already ran out in Redis (or that was taken away) cannot be
/// re-armed: every member is given back and the acquisition goes on waiting, taking them all
/// again within what is left of the wait. (Redisson's multi-lock re-arms its members without
/// checking whose they are, and takes them meanwhile with a lease of twice the wait, which a
/// crashed caller then holds.)
#[derive(Debug, Clone)]
pub struct MultiLock {
    backend: Arc<Backend>,
    /// Sorted and without duplicates: the order every caller takes them in.
    names: Arc<[Arc<str>]>,
    label: Label,
}

impl MultiLock {
    pub(crate) fn new(backend: &Arc<Backend>, names: Vec<String>) -> Self {
        let mut names: Vec<Arc<str>> = names.into_iter().map(Arc::from).collect();
        names.sort_unstable();
        names.dedup();
        Self {
            backend: Arc::clone(backend),
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
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a multi-lock of no names, and the first error of a member (as
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
    pub fn acquire(
        &self,
    ) -> impl Future<Output = Result<MultiLockGuard, LockError>> + Send + 'static + use<> {
        self.try_acquire(Duration::MAX, None)
    }

    /// Waits at most `wait` (for all of them together) for every lock; with `lease = Some(d)`
    /// holds each for at most `d` (never renewed), with `None` in watchdog mode.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] naming the member that stayed held past the wait, or whose
    /// fixed lease ran out while a later member was waited for, with no wait left to take them
    /// all again; every member taken is released. [`LockError::LeaseLost`] if a fixed lease is
    /// too short for the members to be taken one after the other (it runs out with no member
    /// waited for). Otherwise as [`MultiLock::acquire`].
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
    // Every task waiting for the members holds this future, so not an `async fn`, which would
    // keep its arguments beside the wait made of them, and borrow the handle: the future owns
    // a clone of it, so that it can be spawned as a lock's can.
    pub fn try_acquire(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> impl Future<Output = Result<MultiLockGuard, LockError>> + Send + 'static + use<> {
        if self.names.is_empty() {
            return Either::Left(ready(Err(LockError::invalid_argument(
                "a multi-lock of no names: name at least one lock",
            ))));
        }
        let meter = Meter::new("multi_lock", &self.label);
        let this = self.clone();
        let taking = meter
            .clone()
            .measure(async move { this.take_all(wait, lease).await });
        Either::Right(taking.map(move |guards| {
            Ok(MultiLockGuard {
                guards: guards?,
                holding: meter.holding(),
            })
        }))
    }

    /// Takes every member in name order within `wait`, or none, each with what is left of the
    /// wait. A round that took them all is handed out only once no member's lease is spent
    /// ([`settle`]); a member lost while later ones were waited for sends the round back, and
    /// every member is taken again.
    async fn take_all(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<Won<Vec<LockGuard>>, LockError> {
        let start = Instant::now();
        let deadline = deadline_after(start, wait);
        loop {
            let mut members = Vec::with_capacity(self.names.len());
            for name in self.names.iter() {
                let asked = Instant::now();
                let left = deadline.map_or(Duration::MAX, |deadline| {
                    deadline.saturating_duration_since(asked)
                });
                let fresh = !reenters(&self.backend, name);
                // The acquisition owns what it needs: the handle is not kept while it waits.
                let taking = Lock::new(&self.backend, name.to_string())
                    .member()
                    .try_acquire(left, lease);
                match taking.await {
                    Ok(guard) => members.push(Member::new(guard, fresh, asked, lease)),
                    Err(err) => {
                        release_all(guards(members)).await;
                        return Err(err);
                    }
                }
            }
            let lapsed = match settle(&members, lease).await {
                Ok(Settled::Ready) => return Ok(Won::found_free(guards(members))),
                Ok(Settled::Lapsed(index)) => index,
                Err(err) => {
                    release_all(guards(members)).await;
                    return Err(err);
                }
            };
            let name = members[lapsed].guard.name().to_owned();
            // A fixed lease lost to the round trips alone (no member after it waited) would be
            // lost again by the next round: as a single lock whose lease its round trip spent.
            let waited_for = lease.is_none() || members[lapsed + 1..].iter().any(|m| m.waited);
            release_all(guards(members)).await;
            let now = Instant::now();
            if !waited_for {
                return Err(LockError::LeaseLost { name });
            }
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(LockError::Timeout {
                    name,
                    what: "lock",
                    waited: now - start,
                    holder: None,
                });
            }
            tracing::debug!(lock = %name, "a member was lost while the others were taken; taking them all again");
        }
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
        let members = self.names.iter().map(|name| {
            let handle = Handle::new(&self.backend, Arc::clone(name));
            async move { info::info(&handle).await }
        });
        try_join_all(members).await
    }
}

/// A member taken by one round of [`MultiLock::take_all`].
struct Member {
    guard: LockGuard,
    /// Taken by this round; `false` for a re-entry, which carries the lease of the scope's hold.
    fresh: bool,
    /// Whether it was taken by a later request than the first (it was found held and waited
    /// for), by more than the drift margin. Known for a fixed lease only (`false` otherwise).
    waited: bool,
}

impl Member {
    /// The member `guard`, taken by this round if `fresh`, asked for at `asked` with `lease`.
    fn new(guard: LockGuard, fresh: bool, asked: Instant, lease: Option<Duration>) -> Self {
        // A fresh hold's deadline is `valid_until(sent, lease)`, `sent` being when the request
        // that took it was sent: past `asked` by the time it waited.
        let waited = fresh
            && lease
                .is_some_and(|lease| guard.deadline() > valid_until(asked, lease) + drift(lease));
        Self {
            guard,
            fresh,
            waited,
        }
    }
}

/// The guards of `members`, in their order.
fn guards(members: Vec<Member>) -> Vec<LockGuard> {
    members.into_iter().map(|member| member.guard).collect()
}

/// Whether taking `name` through the client whose state is `backend` re-enters a hold of the
/// current scope.
fn reenters(backend: &Backend, name: &Arc<str>) -> bool {
    backend.keys(name).is_ok_and(|keys| {
        scope::find(backend.ids.client(), &keys.main, HoldKind::Reentrant).is_some()
    })
}

/// What [`settle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// No member's lease is spent: the guard can be handed out.
    Ready,
    /// The member at this index no longer holds its lock (its lease ran out in Redis while the
    /// later members were taken, or it was taken away): the round must be given back.
    Lapsed(usize),
}

/// Makes sure no member of a round that took them all has a spent lease.
///
/// With a fixed lease, the members taken first ran down their leases while the later ones were
/// taken. Every fresh member whose deadline lags the last one taken by more than the drift
/// margin (never on an uncontended round, whose members are taken back to back), or has passed,
/// is re-armed to the full lease if it still holds its lock, its deadline timed from that
/// request. In watchdog mode the watchdog kept renewing them; a renewal that found one gone
/// marked it lost. Re-entered members keep the lease of the scope's hold.
///
/// # Errors
///
/// The error of a re-arm Redis did not answer, and [`LockError::LeaseLost`] naming a member
/// whose lease even a re-arm leaves spent (a lease too short for one round trip).
async fn settle(members: &[Member], lease: Option<Duration>) -> Result<Settled, LockError> {
    let fresh = || {
        members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.fresh)
            .map(|(index, member)| (index, &member.guard))
    };
    let Some(lease) = lease else {
        return Ok(fresh()
            .find(|(_, guard)| guard.is_lease_lost())
            .map_or(Settled::Ready, |(index, _)| Settled::Lapsed(index)));
    };
    let Some(last) = fresh().map(|(_, guard)| guard.deadline()).max() else {
        return Ok(Settled::Ready);
    };
    let now = Instant::now();
    let lagging = fresh()
        .filter(|(_, guard)| guard.deadline() + drift(lease) < last || guard.deadline() <= now);
    let rearmed =
        join_all(lagging.map(|(index, guard)| async move {
            rearm(guard, lease).await.map(|held| (index, held))
        }))
        .await;
    for outcome in rearmed {
        if let (index, false) = outcome? {
            return Ok(Settled::Lapsed(index));
        }
    }
    match fresh().find(|(_, guard)| guard.is_lease_lost()) {
        Some((_, guard)) => Err(LockError::LeaseLost {
            name: guard.name().to_owned(),
        }),
        None => Ok(Settled::Ready),
    }
}

/// The locks of a [`MultiLock`], all held until this is released or dropped (dropped, they are
/// released in the background, as a [`LockGuard`] is: before a process exits, wait for that
/// with [`LockClient::flush`](crate::LockClient::flush)).
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let both = client
    ///     .multi_lock(["batch:a", "batch:b"])
    ///     .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(200)))
    ///     .await?;
    /// both.lease_lost().await; // the fixed leases ran out
    /// assert!(both.is_lease_lost());
    /// # Ok(()) });
    /// ```
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
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the returned future drops `future` where it stands and leaves this
    /// guard, and its lock, held; the guards of re-entries taken inside are released as any
    /// guard is.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let both = client.multi_lock(["acct:1", "acct:2"]).acquire().await?;
    /// let last = both.guards()[1].fencing_token(); // acct:2's, the last in name order
    /// both.scope(async {
    ///     assert_eq!(lock_runtime::fencing_token(), Some(last));
    ///     client.lock("acct:1").acquire().await?.unlock().await // re-enters
    /// })
    /// .await?;
    /// both.unlock().await?;
    /// # Ok(()) });
    /// ```
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
    /// A release once started finishes in the background if the future is dropped (wait for it
    /// with [`LockClient::flush`](crate::LockClient::flush)).
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

/// Re-arms the lease of `guard`'s hold to a full `lease` from now, provided `guard` still holds
/// the lock (the renewal script, as the watchdog sends it): `Ok(false)` when it does not (its
/// lease ran out, or it was taken away), and nothing changed. The guard's deadline is then timed
/// from the send of the request whose reply came back: that request set the TTL, or a later
/// copy of it did, so the deadline is never later than the key's expiry. Re-arming twice is
/// harmless, so a late copy needs no memo: it finds the hold gone, or extends it further.
///
/// # Errors
///
/// [`LockError::Redis`] if Redis could not be reached within the retry timeout.
pub(crate) async fn rearm(guard: &LockGuard, lease: Duration) -> Result<bool, LockError> {
    let holder = guard.holder();
    let backend = &holder.backend;
    let mut renew = ONE_OWNER.renew.prepare_invoke(backend.scripts.calls());
    renew
        .key(&holder.keys.main)
        .arg(holder.owner.as_ref())
        .arg(redis_millis(lease));
    let context = || format!("re-arming the lease of lock `{}`", guard.name());
    let rearmed = backend
        .in_context(backend.scripts.eval::<Renewal>(&renew, None, context))
        .await?;
    match rearmed.reply {
        Renewal::Renewed => {
            holder.lease.extend_to(valid_until(rearmed.sent, lease));
            Ok(true)
        }
        Renewal::Lost => Ok(false),
    }
}
