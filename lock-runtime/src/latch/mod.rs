//! [`CountDownLatch`]: a count set once and counted down from anywhere; every waiter, in every
//! process, is released together when it reaches zero.
//!
//! What is the latch's own: its Lua scripts (`scripts.rs`, `scripts/*.lua`) and one
//! [`Attempt`] (a look at the count, done at zero) handed to the core's wait engine. Waiting,
//! subscribing, wake-ups, resends and finishing a count-down whose caller stopped waiting are
//! the core's. What a user sees (the keys, the TTL, how soon waiters are released) is on
//! [`CountDownLatch`], which is rendered; what follows is why.
//!
//! # Lifetime: a TTL of 24 hours, re-armed by the count-downs
//!
//! A latch left at a positive count (a worker crashed before counting down, a batch abandoned)
//! must not stay in Redis for ever: millions of names are normal, and every key of the family
//! carries a TTL. The TTL is [`CountDownLatch::TTL`], a constant rather than a setting, so every
//! process re-arms a latch alike whatever its client's settings: [`try_set_count`] sets it, and
//! every [`count_down`] that leaves the count above zero re-arms it, so a latch that makes
//! progress lives on, and one nobody has touched for a day goes. Waiters' looks do not re-arm
//! it: waiters alone would keep an abandoned latch for ever. An expired latch is open, as a
//! deleted one is: Redis cannot tell "expired" from "reached zero", and a waiter blocked for
//! ever on work that will never be counted down is the worse failure.
//!
//! # Waking without depending on a message
//!
//! The count-down that reaches zero deletes the key and publishes `all` in one script, and
//! `count_down.lua` uses `pcall` so a user without channel rights still counts down. Pub/sub
//! is at-most-once, so [`Opened`] reports the latch busy for its key's remaining TTL capped by
//! the client's renew interval: the engine looks again at the expiry, or one renew interval
//! later, message or not.
//!
//! # Late copies: the requests of the last minutes, not of the latch
//!
//! A copy of a request can land up to the client's request horizon
//! (`Config::request_horizon`: resends go out for the retry timeout, and TCP retransmits each
//! for about 15 minutes; 15 min 13 s by default) after the request first ran: on the same
//! latch, on a latch set since under the same name, or on none. Neither a count (it names no
//! request) nor a memo of the retry timeout's length can tell such a copy, and ids kept only
//! while the latch lives would be gone when it opens, the moment a late `try_set_count` copy
//! does its harm. So the scripts keep every request id that ran on the name, with what it
//! answered, in one sorted set scored by time (`core/scripts/requests.lua`), trimmed to the
//! horizon at each write: a copy is recognised whichever latch, if any, stands when it lands,
//! and a resend reads its answer there too, so no memo key per request is written. What this
//! keeps is bounded by the requests of one horizon on one name (about 100 bytes each), not by
//! requests for ever, and it goes one horizon after the last of them. A latch's generations
//! need no ids of their own: a copy is a copy of a request that ran at most one horizon ago,
//! whichever generation it ran on.
//!
//! [`try_set_count`]: CountDownLatch::try_set_count
//! [`count_down`]: CountDownLatch::count_down

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::{
    FutureExt,
    future::{Either, ready},
};

use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    core::{
        backend::Backend,
        hold::RunToEnd,
        hub::Wake,
        keys::Keys,
        lease::{ShownWait, deadline_after, redis_millis},
        wait::{self, Attempt, Outcome, Waiting},
    },
    error::LockError,
    family::handle::{Handle, handle_methods},
};

mod info;
pub(crate) mod scripts;

pub use info::LatchInfo;
use scripts::{COUNT, COUNT_DOWN, CountSet, Counted, CountedDown, TRY_SET_COUNT};

/// The latch's key after the name's hash tag: `{prefix:name}:latch`.
pub(crate) const PART: &str = "latch";

/// A handle to one count-down latch, made by
/// [`LockClient::count_down_latch`](crate::LockClient::count_down_latch). Cheap to clone;
/// holds nothing.
///
/// One party sets the count ([`try_set_count`](Self::try_set_count)), the parties doing the
/// work each [`count_down`](Self::count_down) once, and whoever needs the work done
/// [`wait`](Self::wait)s, in any process: every waiter is released together when the count
/// reaches zero. A latch is used once: at zero it is gone, and a new
/// [`try_set_count`](Self::try_set_count) starts another.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// let latch = client.count_down_latch("batch:9");
/// latch.try_set_count(3).await?;
/// // ... each of three workers, in any process, when its part is done:
/// latch.count_down().await?;
/// // ... and whoever needs the whole batch:
/// latch.wait().await?;
/// # Ok(()) }
/// ```
///
/// # In Redis
///
/// The latch `batch:9` under the default key prefix `lock` is the string key
/// `{lock:batch:9}:latch`, holding its count. No key means a count of zero: the count-down that
/// reaches zero deletes the key, and a latch that does not exist is open. Its channel is
/// `{lock:batch:9}:latch:unlock`. The ids of the requests ([`try_set_count`](Self::try_set_count),
/// [`count_down`](Self::count_down)) that ran on the name in the last 15 minutes (plus the
/// client's retry and response timeouts: 15 min 13 s by default) are kept in the sorted set
/// `{lock:batch:9}:latch:requests`, about 100 bytes each, which expires as long after the last
/// of them: see [Late copies](#late-copies). Every key shares the name's hash tag,
/// so each script touches one slot (Redis Cluster). The latch's keys are its own: it does not
/// touch the locks of the same name.
///
/// # Lifetime
///
/// The key has a TTL of [`TTL`](Self::TTL), 24 hours: set by
/// [`try_set_count`](Self::try_set_count) and re-armed by every
/// [`count_down`](Self::count_down) that leaves the count above zero (waiting does not re-arm
/// it). A latch nobody counts down for 24 hours expires and is then open, like a latch that
/// reached zero: its waiters are released. Split work that takes longer between count-downs
/// into more parts.
///
/// # How soon waiters are released
///
/// The count-down that reaches zero wakes every waiter, in every process, with one pub/sub
/// message: they return after one more look at the count (a round trip). Pub/sub may lose a
/// message, and nothing depends on it: a waiter looks at the count again at the latch key's
/// expiry and at least once per renew interval of its client (a third of the
/// [watchdog timeout](crate::LockClientBuilder::watchdog_timeout): 10 s by default). So a latch
/// that goes away without its message is seen open
///
/// - at once when its key expires (waiters sleep no longer than the key's TTL);
/// - within one renew interval when it is deleted behind the waiters' backs (an operator's
///   `DEL`), when the message is lost, or when the Redis user has no channel rights; at once
///   if anything counts the missing latch down afterwards, which wakes the waiters too;
/// - at once when the client's pub/sub connection comes back after a failure (every waiter
///   looks again).
///
/// # Late copies
///
/// A request the client resent after a timeout may still sit on the connection it gave up, and
/// reach Redis minutes later (TCP retransmits for about 15 minutes). Every count-down and every
/// [`try_set_count`](Self::try_set_count) counts once however late its copy lands: a copy of a
/// count-down never counts the latch down again, nor a latch set since under the same name; a
/// copy of a `try_set_count` never sets again a latch that has opened. Redis recognises the
/// copy by its request id, kept in the latch's `requests` set for 15 minutes plus the client's
/// retry and response timeouts after the request first ran.
#[derive(Debug, Clone)]
pub struct CountDownLatch {
    handle: Handle,
}

impl CountDownLatch {
    /// How long a latch lives in Redis after it was set or last counted down: 24 hours. A latch
    /// that expires is open (its count is zero), so its waiters are released.
    pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);

    handle_methods! {
        new;
        /// The latch's name.
        name;
    }

    /// Sets the count to `count` if the latch does not exist (it never did, it reached zero, or
    /// it expired), and returns `true`; returns `false`, changing nothing, if it exists. The
    /// latch then lives [`TTL`](Self::TTL) from now, re-armed by every count-down.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a `count` of zero (a latch at zero is open: there is nothing
    /// to wait for) or above `i64::MAX` (Redis counts in signed 64-bit integers), before
    /// anything is sent. [`LockError::InvalidName`] for an empty name or one with braces,
    /// [`LockError::WrongType`] if the latch's key holds something that is not a count (it is
    /// left untouched), [`LockError::Redis`] if Redis stays unreachable for the retry timeout.
    ///
    /// # Cancel safety
    ///
    /// Not undone: if the future is dropped while its request is in flight, the count may or
    /// may not have been set; [`count`](Self::count) tells. A resend after a timeout answers
    /// what the first attempt did, so a completed call's `true` or `false` is never wrong, and
    /// a copy landing late sets nothing (see [Late copies](Self#late-copies)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let latch = client.count_down_latch("import:2024-06");
    /// assert!(latch.try_set_count(3).await?);
    /// assert!(!latch.try_set_count(5).await?, "set already");
    /// assert_eq!(latch.count().await?, 3);
    ///
    /// let zero = latch.try_set_count(0).await.expect_err("nothing to wait for");
    /// assert!(zero.is_invalid_argument());
    /// # Ok(()) });
    /// ```
    pub async fn try_set_count(&self, count: u64) -> Result<bool, LockError> {
        if count == 0 || i64::try_from(count).is_err() {
            return Err(LockError::invalid_argument(format!(
                "the count of latch `{}` is {count}; it must lie between 1 and {} (i64::MAX): a \
                 latch at zero is open already, and Redis counts in signed 64-bit integers",
                self.handle.name,
                i64::MAX
            )));
        }
        let backend = &self.handle.backend;
        let keys = self.keys()?;
        let request = backend.ids.request();
        let mut call = TRY_SET_COUNT.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main)
            .key(keys.requests())
            .arg(count)
            .arg(redis_millis(Self::TTL))
            .arg(&request)
            .arg(redis_millis(backend.config.request_horizon()));
        let context = || format!("setting the count of latch `{}`", keys.name);
        let set = backend.in_context(backend.scripts.eval(&call, None, context));
        match set.await?.reply {
            CountSet::Set => Ok(true),
            CountSet::Exists => Ok(false),
            CountSet::WrongType => Err(keys.wrong_type(None)),
        }
    }

    /// Counts the latch down by one. The count-down that reaches zero deletes the latch and
    /// wakes every waiter, in every process, at once; one that leaves it above zero re-arms its
    /// [`TTL`](Self::TTL).
    ///
    /// On a latch that does not exist (never set, at zero already, expired, deleted) it changes
    /// nothing: it never creates a latch nor takes a count below zero, so a count-down sent
    /// before [`try_set_count`](Self::try_set_count) is lost. Set the count before handing out
    /// the work. It still wakes the latch's waiters, who then see it open.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`] for an empty name or one with braces, [`LockError::WrongType`]
    /// if the latch's key holds something that is not a count (it is left untouched),
    /// [`LockError::Redis`] if Redis stays unreachable for the retry timeout.
    ///
    /// # Cancel safety
    ///
    /// A count-down once started finishes: if the future is dropped after its first poll, the
    /// count-down goes on in the background and takes effect once (its request id makes every
    /// resend, and every copy landing late, harmless: see [Late copies](Self#late-copies)). A
    /// future dropped before it is polled does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let latch = client.count_down_latch("uploads:7");
    /// latch.try_set_count(2).await?;
    /// latch.count_down().await?;
    /// assert_eq!(latch.count().await?, 1);
    /// latch.count_down().await?;
    /// assert_eq!(latch.count().await?, 0, "open, and gone from Redis");
    /// latch.count_down().await?; // harmless: nothing below zero
    /// assert_eq!(latch.count().await?, 0);
    /// # Ok(()) });
    /// ```
    pub async fn count_down(&self) -> Result<(), LockError> {
        let backend = Arc::clone(&self.handle.backend);
        let keys = self.keys()?;
        let request = backend.ids.request();
        let counting = async move {
            let mut call = COUNT_DOWN.prepare_invoke(backend.scripts.calls());
            call.key(&keys.main)
                .key(keys.channel())
                .key(keys.requests())
                .arg(Wake::All.message())
                .arg(backend.hub.publish())
                .arg(redis_millis(Self::TTL))
                .arg(&request)
                .arg(redis_millis(backend.config.request_horizon()));
            let context = || format!("counting down latch `{}`", keys.name);
            let counted = backend.in_context(backend.scripts.eval(&call, None, context));
            let counted = counted.await?.reply;
            tracing::debug!(latch = %keys.name, ?counted, "counted down");
            match counted {
                CountedDown::Down | CountedDown::Opened | CountedDown::Missing => Ok(()),
                CountedDown::WrongType => Err(keys.wrong_type(None)),
            }
        };
        RunToEnd::new(Arc::clone(&self.handle.backend), Box::pin(counting)).await
    }

    /// The latch's count now: 0 when the latch does not exist (never set, counted down to zero,
    /// expired, deleted).
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`] if Redis
    /// stays unreachable for the retry timeout.
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
    /// let latch = client.count_down_latch("shards");
    /// assert_eq!(latch.count().await?, 0, "no latch yet");
    /// latch.try_set_count(4).await?;
    /// assert_eq!(latch.count().await?, 4);
    /// # Ok(()) });
    /// ```
    pub async fn count(&self) -> Result<u64, LockError> {
        let backend = &self.handle.backend;
        let keys = self.keys()?;
        let (count, _) = backend.in_context(look(backend, &keys, None)).await?;
        Ok(count)
    }

    /// A snapshot of the latch: its count, whether it is set, and how long it has left before
    /// it expires. Read in one read-only script, so the count and the time agree. Waiters are
    /// not counted: they take nothing in Redis (see [`LatchInfo`]).
    ///
    /// # Errors
    ///
    /// As [`count`](Self::count).
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
    /// let latch = client.count_down_latch("batch:info");
    /// assert!(!latch.info().await?.is_set());
    /// latch.try_set_count(3).await?;
    /// let info = latch.info().await?;
    /// assert_eq!(info.count(), 3);
    /// assert!(info.ttl().is_some_and(|ttl| ttl <= lock_runtime::CountDownLatch::TTL));
    /// # Ok(()) });
    /// ```
    pub async fn info(&self) -> Result<LatchInfo, LockError> {
        let backend = &self.handle.backend;
        let keys = self.keys()?;
        let (count, ttl) = backend.in_context(look(backend, &keys, None)).await?;
        Ok(LatchInfo::new(self.handle.name.to_string(), count, ttl))
    }

    /// Waits, without limit, until the count is zero. A latch that does not exist is open: the
    /// wait returns at once.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`], [`LockError::WrongType`], or [`LockError::Redis`] if a look
    /// at the count fails for the retry timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a waiter takes nothing in Redis. Dropping the future leaves the latch's
    /// channel (the client unsubscribes once no local task waits on it).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let latch = client.count_down_latch("batch:10");
    /// latch.try_set_count(2).await?;
    /// for part in 0..2 {
    ///     let latch = latch.clone();
    ///     tokio::spawn(async move {
    ///         // ... process part `part` ...
    ///         latch.count_down().await
    ///     });
    /// }
    /// latch.wait().await?; // both parts are done
    /// assert_eq!(latch.count().await?, 0);
    /// # Ok(()) });
    /// ```
    pub fn wait(&self) -> impl Future<Output = Result<(), LockError>> + Send + 'static + use<> {
        self.wait_for(Duration::MAX)
    }

    /// Waits at most `timeout` for the count to reach zero: `true` if it did (or the latch does
    /// not exist), `false` if the time ran out first.
    ///
    /// Any `timeout` is valid: `Duration::ZERO` looks once, `Duration::MAX` (or any timeout too
    /// far away for the clock) waits without limit.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait); a timeout is `Ok(false)`, not an error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let latch = client.count_down_latch("report:inputs");
    /// latch.try_set_count(1).await?;
    /// assert!(!latch.wait_timeout(Duration::from_millis(50)).await?, "not counted down yet");
    /// latch.count_down().await?;
    /// assert!(latch.wait_timeout(Duration::from_millis(50)).await?);
    /// # Ok(()) });
    /// ```
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, LockError>> + Send + 'static + use<> {
        self.wait_for(timeout).map(|waited| match waited {
            Ok(()) => Ok(true),
            Err(LockError::Timeout { .. }) => Ok(false),
            Err(err) => Err(err),
        })
    }

    /// Waits through the core's engine until the count is zero or `timeout` ran out
    /// ([`LockError::Timeout`]).
    ///
    /// Every task waiting on the latch holds this future, so it is not an `async fn`, which
    /// would keep its arguments beside the wait made of them: the wait owns the latch's keys,
    /// its client and the timeout (so it borrows nothing and can be spawned), and begins its
    /// clock at the first poll, as an `async fn` would.
    fn wait_for(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), LockError>> + Send + 'static + use<> {
        let keys = match self.keys() {
            Ok(keys) => keys,
            Err(err) => return Either::Left(ready(Err(err))),
        };
        let backend = Arc::clone(&self.handle.backend);
        let waiting = async move {
            let start = Instant::now();
            let mut waiting = Waiting {
                attempt: Opened {
                    backend: &backend,
                    keys: &keys,
                },
                start,
                deadline: deadline_after(start, timeout),
            };
            wait::wait(&mut waiting).await?;
            Ok(())
        };
        let span = tracing::debug_span!("latch_wait", latch = %self.handle.name, timeout = %ShownWait(timeout));
        Either::Right(self.handle.backend.in_context(waiting).instrument(span))
    }

    /// The latch's keys: `{prefix:name}:latch` and those named after it.
    fn keys(&self) -> Result<Keys, LockError> {
        Ok(self.handle.backend.keys(&self.handle.name)?.part(PART))
    }
}

/// The latch's count (zero without a latch) and its key's remaining TTL (`None`: no latch, or a
/// key without TTL). `deadline` bounds the resends.
async fn look(
    backend: &Backend,
    keys: &Keys,
    deadline: Option<Instant>,
) -> Result<(u64, Option<Duration>), LockError> {
    let mut call = COUNT.prepare_invoke(backend.scripts.calls());
    call.key(&keys.main);
    let context = || format!("reading latch `{}`", keys.name);
    match backend.scripts.eval(&call, deadline, context).await?.reply {
        Counted::At { count, ttl } => Ok((count, ttl)),
        Counted::Missing => Ok((0, None)),
        Counted::WrongType { found } => Err(keys.wrong_type(Some(found))),
    }
}

/// One look at the count, for the wait engine: done at zero.
struct Opened<'a> {
    backend: &'a Backend,
    keys: &'a Keys,
}

impl Attempt for Opened<'_> {
    type Output = ();

    fn what(&self) -> &'static str {
        "count-down latch"
    }

    fn backend(&self) -> &Backend {
        self.backend
    }

    fn keys(&self) -> &Keys {
        self.keys
    }

    /// Done at zero; otherwise busy for the latch key's remaining TTL (at its expiry the latch
    /// is open), capped by the client's renew interval, so a waiter looks again that often even
    /// if the message of the last count-down, or of a `DEL`, is lost.
    async fn attempt(&mut self, deadline: Option<Instant>) -> Result<Outcome<()>, LockError> {
        let (count, ttl) = look(self.backend, self.keys, deadline).await?;
        if count == 0 {
            return Ok(Outcome::Done(()));
        }
        let recheck = self.backend.config.renew_interval();
        Ok(Outcome::Busy {
            ttl: Some(ttl.map_or(recheck, |ttl| ttl.min(recheck))),
        })
    }
}
