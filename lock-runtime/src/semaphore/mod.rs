//! [`Semaphore`]: permits shared across processes, each acquisition leased like a lock.
//!
//! What is the semaphore's own: its Lua scripts (`scripts.rs`, `scripts/*.lua`), one [`Layout`]
//! (a lease per acquisition, no re-entry) and one [`Flavor`]. Waiting, queueing, undoing a
//! request whose caller gave up, renewing and releasing on drop are the family's (`family/`)
//! and the core's.
//!
//! How it behaves, and how it is kept in Redis, is documented on the handle itself.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::future::{self, Either};

use crate::{
    core::{lease::redis_millis, scope::HoldKind},
    error::LockError,
    family::{
        flavor::{Flavor, Layout, nothing_alongside},
        handle::{Handle, handle_methods},
        info::describe,
        replies::{Refusal, Released},
    },
};

mod info;
mod permit;
pub(crate) mod scripts;

pub use info::{PermitHolder, PermitWaiter, SemaphoreInfo};
pub use permit::SemaphorePermit;

/// What [`Semaphore::set_permits_once`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitsTotal {
    /// This call set the total to the permits it was given.
    Set,
    /// The total was set already, and is left as it is.
    AlreadySet {
        /// The semaphore's total as the call left it (with every
        /// [`add_permits`](Semaphore::add_permits) so far).
        total: u64,
    },
}

use scripts::{
    ACQUIRE, ADD_PERMITS, AVAILABLE, Available, DELETE, Deletion, INFO, LEAVE, PermitsAdded,
    PermitsSet, RELEASE, RELEASE_BY_ID, RENEW, Refused, SET_PERMITS,
};

/// How a semaphore keeps its permits: a hash at `{prefix:name}:sem`, and a lease per
/// acquisition. Permits are never re-entered.
pub(crate) static SEM: Layout = Layout {
    part: Some("sem"),
    reenter: None,
    release: &RELEASE,
    leave: &LEAVE,
    undo_reenter: None,
    renew: &RENEW,
    force_unlock: None,
    leases: true,
    lone: true,
};

/// An acquisition of permits.
static PERMITS: Flavor = Flavor {
    kind: HoldKind::Permit,
    primitive: "semaphore",
    noun: "semaphore",
    acquire: &ACQUIRE,
    hand_over: false,
    layout: &SEM,
    fresh: nothing_alongside,
    refused,
};

/// The error of an acquisition of `permits` permits of the semaphore `name` that its acquire
/// script refused ([`Refused`]): misuse, returned at once.
fn refused(refusal: Refusal, name: &str, permits: Option<&str>) -> LockError {
    match Refused::of(&refusal) {
        Ok(Refused::MoreThanTotal { total }) => LockError::misuse(format!(
            "semaphore `{name}` has {total} permits in all: {} at once can never be acquired \
             (add permits with `Semaphore::add_permits`)",
            permits.unwrap_or("1")
        )),
        Ok(Refused::NoPermitsSet) => LockError::misuse(format!(
            "semaphore `{name}` has no permits: set them once with \
             `Semaphore::try_set_permits(n)` (or `add_permits(n)`) before acquiring"
        )),
        Err(_) => refusal.unexpected(name),
    }
}

/// A handle to one semaphore, made by [`LockClient::semaphore`](crate::LockClient::semaphore).
/// Cheap to clone; holds nothing.
///
/// Permits shared by every process, each acquisition leased like a lock (watchdog or fixed
/// lease) and released on every exit path.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let quota = client.semaphore("api-quota");
/// quota.try_set_permits(10).await?; // once; false if it was set already
/// let permit = quota.try_acquire(2, Duration::from_secs(5), None).await?;
/// // ... two of the ten calls in flight ...
/// permit.release().await?;
/// # Ok(()) }
/// ```
///
/// # In Redis
///
/// The semaphore is a hash at `{prefix:name}:sem`: `total` (the permits in all), `used` (those
/// held now) and two fields per acquisition, its permit id -> the permits it holds and
/// `~who:<permit id>` -> its client's name and the server time it took them (what a
/// [`LockError::Timeout`] and [`info`](Self::info) tell), both gone with its permits. Each
/// acquisition has a lease of its own in `{prefix:name}:sem:leases`, renewed by the watchdog or
/// fixed, so the permits of a holder that crashed come back when its lease ends (Redisson's plain
/// `RSemaphore` loses them for good, issue 2213; here every semaphore behaves like its
/// `PermitExpirableSemaphore`). The hash has no TTL: `total` is the semaphore's definition,
/// set once with [`Semaphore::try_set_permits`] and grown with [`Semaphore::add_permits`]; it
/// stays in Redis until deleted ([`Semaphore::delete_if_unused`], once nobody uses it). The leases
/// have no TTL either, as they time holds kept in that hash; they are gone when no permit is
/// held, and the next call drops the entries of crashed holders. An acquisition that finds no
/// permit used and nobody waiting is *lone*: it is kept whole in the key
/// `{prefix:name}:sem:lone` (its permit id, its permits and who took them), whose TTL is its
/// lease, and not in the hash, so taking and giving back permits of a semaphore nobody else
/// uses costs Redis one key written and deleted, neither the server's time nor the leases; the
/// next acquisition moves the lone one into the hash and the leases first. When that key
/// expires (its holder crashed), its permits are back: the hash never counted them. The
/// queue's keys expire by themselves, as the locks' do. The ids of the
/// [`try_set_permits`](Self::try_set_permits), [`add_permits`](Self::add_permits) and
/// [`delete_if_unused`](Self::delete_if_unused) calls of the last 15 minutes (plus the client's
/// retry and response timeouts: 15 min 13 s by default) are kept in the sorted set
/// `{prefix:name}:sem:requests` (see [Late copies](#late-copies)), which expires as long after
/// the last of them.
///
/// # Late copies
///
/// A request the client resent after a timeout may still sit on the connection it gave up, and
/// reach Redis minutes later (TCP retransmits for about 15 minutes). Each call counts once
/// however late its copy lands:
///
/// - a permit release (by [`SemaphorePermit::release`], on drop, or
///   [`release_by_id`](Self::release_by_id)) names its permit id, which leaves the semaphore
///   with the first release and is never used again: a late copy finds nothing to free, and
///   cannot free the permits of a later acquisition;
/// - [`add_permits`](Self::add_permits), [`try_set_permits`](Self::try_set_permits) and
///   [`delete_if_unused`](Self::delete_if_unused) are recognised by their request id, kept in
///   the `requests` set for 15 minutes plus the client's retry and response timeouts after the
///   request first ran: a copy adds nothing again, does not set again the total of a semaphore
///   deleted since, and deletes neither a semaphore set again since nor one its first copy
///   found in use.
///
/// # Waiting: first come, first served
///
/// Permits go to callers in the order they asked, as with tokio's `Semaphore`. A caller that
/// finds too few permits free, or others already waiting, queues in Redis (in the semaphore's
/// hash slot) with the number it wants, and takes its permits only once the free permits cover
/// what every live waiter ahead of it wants, and then its own. So a newcomer never takes
/// permits ahead of a queued waiter, whichever process either is in; and a large request at the
/// head of the queue holds back the smaller ones behind it, even those that would fit. That is
/// the choice that starves no one: were small requests let past, a steady stream of them could
/// keep a request for many permits waiting for ever. Its price is that permits may stay free
/// while the head waits for enough of them; if large and small requests must not wait on each
/// other, give them a semaphore each.
///
/// A release (or new permits, or a waiter leaving the queue) wakes, by name and in queue order,
/// every waiter whose turn it now is, in whichever process it waits: a release of n single
/// permits wakes n waiters, not one per process, and the small waiters behind a head that gives
/// up are woken at once, not at their timers. A waiter never sleeps past the nearest lease end
/// (a crashed holder's permits come back then) or a third of the watchdog timeout. A waiter
/// whose process died keeps its place for at most one watchdog timeout (its liveness), then
/// leaves the queue. Every grant is one atomic script: tasks acquiring several permits at once
/// never over-grant (Redisson issues 6664, 6687).
///
/// # Misuse is an error at once
///
/// `acquire(0)` is a [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error; more permits than the total, and a
/// semaphore whose permits were never set, are [`LockError::Config`] ([`Mistake::Misuse`](crate::Mistake::Misuse)) errors: each returned
/// without waiting.
#[derive(Debug, Clone)]
pub struct Semaphore {
    handle: Handle,
}

impl Semaphore {
    handle_methods! {
        new;
        metrics_label;
        /// The semaphore's name.
        name;
    }

    /// Sets the semaphore's total of permits, if it was never set: `true` if this call set it,
    /// `false` if it was set already (it is left as it is). A total of zero is allowed (every
    /// acquisition then fails at once until [`add_permits`](Self::add_permits)).
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: one atomic script, sent or not. A resend after a timeout answers what the
    /// first attempt did, and a copy landing late changes nothing (see
    /// [Late copies](Self#late-copies)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:set");
    /// assert!(pool.try_set_permits(5).await?);
    /// assert!(!pool.try_set_permits(7).await?, "set once");
    /// assert_eq!(pool.available_permits().await?, 5);
    /// # Ok(()) });
    /// ```
    pub async fn try_set_permits(&self, permits: u32) -> Result<bool, LockError> {
        Ok(self.set_permits_once(permits).await? == PermitsTotal::Set)
    }

    /// [`try_set_permits`](Self::try_set_permits) that also tells the total it left: sets the
    /// semaphore's total of permits if it was never set ([`PermitsTotal::Set`]), or leaves it
    /// and says what it is ([`PermitsTotal::AlreadySet`]), read in the same script. A service
    /// that expects its own total learns at once that another set a different one.
    ///
    /// # Errors
    ///
    /// As [`try_set_permits`](Self::try_set_permits).
    ///
    /// # Cancel safety
    ///
    /// As [`try_set_permits`](Self::try_set_permits). A resend whose first copy ran answers what
    /// that copy did, with the total as it is when the resend runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_runtime::PermitsTotal;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:once");
    /// assert_eq!(pool.set_permits_once(5).await?, PermitsTotal::Set);
    /// assert_eq!(pool.set_permits_once(7).await?, PermitsTotal::AlreadySet { total: 5 });
    /// # Ok(()) });
    /// ```
    pub async fn set_permits_once(&self, permits: u32) -> Result<PermitsTotal, LockError> {
        let backend = &self.handle.backend;
        let keys = self.handle.keys(&SEM)?;
        let request = backend.ids.request();
        let mut call = SET_PERMITS.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main)
            .key(keys.requests())
            .arg(permits)
            .arg(&request)
            .arg(redis_millis(backend.config.request_horizon()));
        let context = || format!("setting the permits of semaphore `{}`", keys.name);
        let set = backend.in_context(backend.scripts.eval::<PermitsSet>(&call, None, context));
        match set.await?.reply {
            PermitsSet::Set => Ok(PermitsTotal::Set),
            PermitsSet::AlreadySet { total } => Ok(PermitsTotal::AlreadySet { total }),
            PermitsSet::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// Adds `permits` to the semaphore's total (setting it, if it was never set), and wakes the
    /// waiters they let in.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Not undone: if the future is dropped while its request is in flight, the permits may or
    /// may not have been added (once at most); check with
    /// [`available_permits`](Self::available_permits). A resend after a timeout, and a copy
    /// landing late, add nothing again (see [Late copies](Self#late-copies)), so a completed
    /// call added them exactly once.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:add");
    /// pool.try_set_permits(1).await?;
    /// pool.add_permits(2).await?;
    /// assert_eq!(pool.available_permits().await?, 3);
    /// # Ok(()) });
    /// ```
    pub async fn add_permits(&self, permits: u32) -> Result<(), LockError> {
        let backend = &self.handle.backend;
        let keys = self.handle.keys(&SEM)?;
        let request = backend.ids.request();
        let mut call = ADD_PERMITS.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main)
            .key(keys.channel())
            .key(keys.queue())
            .key(keys.alive())
            .key(keys.wants())
            .key(keys.requests())
            .arg(permits)
            .arg(backend.hub.publish())
            .arg(&request)
            .arg(redis_millis(backend.config.request_horizon()));
        let context = || format!("adding permits to semaphore `{}`", keys.name);
        let added = backend.in_context(backend.scripts.eval::<PermitsAdded>(&call, None, context));
        match added.await?.reply {
            PermitsAdded::Added => Ok(()),
            PermitsAdded::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// How many permits nobody holds now (permits whose holder's lease ended count as free);
    /// 0 if the permits were never set. Free permits are not all up for grabs: those the
    /// queued waiters are owed go to them first (see [Waiting](Self#waiting-first-come-first-served)).
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only counts (and drops what has expired).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:count");
    /// assert_eq!(pool.available_permits().await?, 0);
    /// pool.try_set_permits(4).await?;
    /// let permit = pool.acquire(3).await?;
    /// assert_eq!(pool.available_permits().await?, 1);
    /// permit.release().await?;
    /// # Ok(()) });
    /// ```
    pub async fn available_permits(&self) -> Result<u64, LockError> {
        let backend = &self.handle.backend;
        let keys = self.handle.keys(&SEM)?;
        let mut call = AVAILABLE.prepare_invoke(backend.scripts.calls());
        SEM.with_ended_holds(call.key(&keys.main), &keys);
        let context = || format!("counting the permits of semaphore `{}`", keys.name);
        let counted = backend.in_context(backend.scripts.eval::<Available>(&call, None, context));
        match counted.await?.reply {
            Available::Permits(free) => Ok(free),
            Available::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// Waits as long as it takes for `permits` permits, then holds them in watchdog mode: their
    /// lease is renewed while the [`SemaphorePermit`] lives.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) at once for `permits == 0`; [`LockError::Config`] ([`Mistake::Misuse`](crate::Mistake::Misuse)) at once
    /// for more permits than the semaphore's total, and for a semaphore whose permits were
    /// never set (set them with [`try_set_permits`](Self::try_set_permits)); [`LockError::InvalidName`],
    /// [`LockError::WrongType`], [`LockError::LeaseLost`], [`LockError::NotReplicated`],
    /// [`LockError::Redis`] as for [`Lock::acquire`](crate::Lock::acquire).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, the waiter leaves the queue and whatever a request
    /// in flight may have taken is given back, in the background.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:acquire");
    /// pool.try_set_permits(2).await?;
    /// let permit = pool.acquire(2).await?;
    /// assert_eq!(permit.permits(), 2);
    /// permit.release().await?;
    /// # Ok(()) });
    /// ```
    pub fn acquire(
        &self,
        permits: u32,
    ) -> impl Future<Output = Result<SemaphorePermit, LockError>> + Send + 'static + use<> {
        self.try_acquire(permits, Duration::MAX, None)
    }

    /// Waits at most `wait` for `permits` permits; with `lease = Some(d)` holds them for at most
    /// `d` (never renewed), with `None` in watchdog mode. Any `wait` is valid, as for
    /// [`Lock::try_acquire`](crate::Lock::try_acquire).
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if too few permits were free for the whole wait (the waiter then
    /// leaves the queue), and the errors of [`Semaphore::acquire`]. A lease out of range is a
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) error.
    /// A lease too short to outlast the round trip that set it is a [`LockError::LeaseLost`],
    /// and nothing stays held.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Semaphore::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:try");
    /// pool.try_set_permits(1).await?;
    /// let held = pool.acquire(1).await?;
    /// let err = pool
    ///     .try_acquire(1, Duration::from_millis(50), None)
    ///     .await
    ///     .expect_err("the only permit is held");
    /// assert!(err.is_timeout());
    /// held.release().await?;
    /// # Ok(()) });
    /// ```
    pub fn try_acquire(
        &self,
        permits: u32,
        wait: Duration,
        lease: Option<Duration>,
    ) -> impl Future<Output = Result<SemaphorePermit, LockError>> + Send + 'static + use<> {
        // Not an `async fn`, which would keep its arguments beside the acquisition's own future
        // in the state every waiting task holds, and borrow the handle: the future owns a clone
        // of it, so that it can be spawned as the locks' can. Zero permits is refused at once,
        // without a request: the future is ready with the error.
        if permits == 0 {
            return Either::Left(future::ready(Err(LockError::invalid_argument(format!(
                "zero permits asked of semaphore `{}`: acquire at least one",
                self.handle.name
            )))));
        }
        // One permit, the common case, is the script's default: its call then leaves the
        // arguments at their defaults out (see `family::acquisition::acquire_call`).
        let argument = (permits > 1).then(|| Arc::from(permits.to_string()));
        let handle = self.handle.clone();
        Either::Right(async move {
            let taken = handle
                .acquire_fresh(&PERMITS, (wait, lease), argument)
                .await?;
            Ok(SemaphorePermit::new(
                taken,
                Arc::clone(&handle.name),
                permits,
                handle.backend.runtime,
            ))
        })
    }

    /// Releases the permits of the acquisition `id` (a [`SemaphorePermit::id`]), whoever holds
    /// them, from any process: `true` if they were held, `false` if not (released already, or
    /// their lease ended). Their holder learns it at its next renewal ([`SemaphorePermit::lease_lost`]).
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the release is one atomic script, and a resend answers what the first
    /// attempt did; a copy landing late frees nothing (see [Late copies](Self#late-copies)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:by-id");
    /// pool.try_set_permits(1).await?;
    /// let permit = pool.acquire(1).await?;
    /// let id = permit.id().to_owned();
    /// assert!(pool.release_by_id(&id).await?);
    /// assert!(!pool.release_by_id(&id).await?);
    /// assert!(permit.release().await.expect_err("released by id").is_not_held());
    /// # Ok(()) });
    /// ```
    pub async fn release_by_id(&self, id: &str) -> Result<bool, LockError> {
        let backend = &self.handle.backend;
        let keys = self.handle.keys(&SEM)?;
        // The caller has no token of the acquisition to name in a resend: a memo answers it.
        let request = backend.ids.request();
        let mut call = RELEASE_BY_ID.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main)
            .key(keys.channel())
            .key(keys.memo(&request))
            .key(keys.queue())
            .key(keys.alive())
            .key(keys.wants());
        SEM.with_ended_holds(&mut call, &keys)
            .arg(id)
            .arg(redis_millis(backend.config.memo_ttl()))
            .arg(backend.hub.publish());
        let context = || format!("releasing permits of semaphore `{}` by id", keys.name);
        let released = backend.in_context(backend.scripts.eval::<Released>(&call, None, context));
        match released.await?.reply {
            Released::Freed | Released::StillHeld => Ok(true),
            Released::NotHeld => Ok(false),
            Released::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// Deletes the semaphore if nobody uses it: no permit held, no live waiter queued. Returns
    /// `true` when no semaphore of this name remains (deleted now, or there was none), `false`
    /// when it is in use, and then left as it is.
    ///
    /// For a semaphore no longer needed (one per tenant, say): its definition, the total, has no
    /// TTL and stays in Redis until deleted. Permits whose lease ended (their holder crashed)
    /// do not keep it in use, nor do waiters whose process died. Once deleted, the name is a
    /// semaphore whose permits were never set: acquisitions are refused until
    /// [`try_set_permits`](Self::try_set_permits) or [`add_permits`](Self::add_permits) sets
    /// them again. What answers copies of earlier requests stays until its TTL runs out (about
    /// 15 minutes): the ids of recent requests, the notes of acquisitions that ended unreleased,
    /// the count of its lone acquisitions (the semaphore's hash, with that field alone; set
    /// again, the semaphore carries it on), the marks of abandoned acquisitions and the memos of
    /// [`release_by_id`](Self::release_by_id) calls.
    ///
    /// To take a semaphore out of use, stop acquiring, let the holders release (or release a
    /// stuck one by its id, [`release_by_id`](Self::release_by_id)), then delete it.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: one atomic script, sent or not. A resend after a timeout answers what the
    /// first attempt did, and a copy landing late deletes nothing: not a semaphore set again
    /// since, nor one the first attempt found in use (see [Late copies](Self#late-copies)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let pool = client.semaphore("pool:tenant-7");
    /// pool.try_set_permits(2).await?;
    /// let permit = pool.acquire(1).await?;
    /// assert!(!pool.delete_if_unused().await?, "a permit is held");
    /// permit.release().await?;
    /// assert!(pool.delete_if_unused().await?);
    /// assert_eq!(pool.info().await?.total_permits(), None);
    /// # Ok(()) });
    /// ```
    pub async fn delete_if_unused(&self) -> Result<bool, LockError> {
        let backend = &self.handle.backend;
        let keys = self.handle.keys(&SEM)?;
        let request = backend.ids.request();
        let mut call = DELETE.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main)
            .key(keys.leases())
            .key(keys.lone())
            .key(keys.queue())
            .key(keys.alive())
            .key(keys.wants())
            .key(keys.requests())
            .key(keys.lost())
            .arg(&request)
            .arg(redis_millis(backend.config.request_horizon()));
        let context = || format!("deleting semaphore `{}`", keys.name);
        let deleted = backend.in_context(backend.scripts.eval::<Deletion>(&call, None, context));
        match deleted.await?.reply {
            Deletion::Deleted | Deletion::Absent => Ok(true),
            Deletion::InUse => Ok(false),
            Deletion::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// A snapshot of the semaphore: its total, the permits held and free, the acquisitions
    /// holding permits (each with its permit id, permits and lease left), how many wait and
    /// who (in queue order, each with the permits it wants). Read in one read-only script, so
    /// its parts agree.
    ///
    /// Each acquisition names its client
    /// ([`LockClientBuilder::client_name`](crate::LockClientBuilder::client_name)) and how long
    /// it has held its permits, as the reentrant lock's [`info`](crate::Lock::info) does. For
    /// operators and diagnostics: by the time it returns, permits may have changed hands.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`] if the semaphore's key holds
    /// something else, or [`LockError::Redis`] if Redis stays unreachable.
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
    /// let pool = client.semaphore("pool:info");
    /// pool.try_set_permits(5).await?;
    /// let permit = pool.acquire(2).await?;
    /// let info = pool.info().await?;
    /// assert_eq!((info.total_permits(), info.available_permits()), (Some(5), 3));
    /// assert_eq!(info.holders()[0].id(), permit.id());
    /// permit.release().await?;
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<SemaphoreInfo, LockError> {
        describe(&INFO, &SEM, &self.handle).await
    }
}
