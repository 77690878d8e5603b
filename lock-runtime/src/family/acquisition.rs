//! A fresh acquisition: the [`Attempt`] every lock of the family hands to the wait engine (one
//! owner id, tried as often as the engine, or a Redlock's contender, asks), what it arms to be
//! undone if its caller gives up, and the hold it hands out: taken by a try, or handed over
//! directly by a release; or a re-entry, when the current scope holds the lock already. The
//! holds are given back by `release.rs`.

use std::{
    future::Future,
    io::Write,
    sync::{Arc, Weak, atomic::AtomicU64},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::core::lua::{Calls, Invocation};
use futures_util::future::{self, BoxFuture, Either, FutureExt};
use redis::{RedisWrite, ToRedisArgs};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    core::{
        backend::Backend,
        hold::{Hold, InFlight, Renewal, undo_in_background},
        keys::Keys,
        lease::{Lease, ShownWait, check_lease, deadline_after, redis_millis, valid_until},
        meter::{Label, Meter},
        scope::{self, Holder, Reentries, ScopeHold},
        script_path::{Copies, Sent},
        wait::{self, Attempt, Outcome, Waiting},
        watchdog::{Registration, RenewalId},
    },
    error::LockError,
    family::{
        flavor::Flavor,
        guard::LockGuard,
        release::{Held, Mark, Release, Undo, UndoOf},
        replies::{Acquired, Reentered, Seen},
    },
    transport::{
        background::{Background, in_context},
        config::DEFAULT_WATCHDOG_TIMEOUT,
    },
};

/// A hold a fresh acquisition took, before it becomes a guard ([`LockGuard`], or a semaphore
/// permit).
pub(crate) struct Taken {
    /// Releases it on drop or on demand.
    pub(crate) hold: Hold,
    /// Who holds it, with its lease and token.
    pub(crate) holder: Holder,
}

impl Taken {
    /// The lock guard of this hold.
    pub(crate) fn guard(self, backend: &Backend, name: &Arc<str>) -> LockGuard {
        LockGuard::new(self.hold, Arc::clone(name), self.holder, backend.runtime)
    }
}

/// Waits up to `wait` for the lock `name` of `flavor` (or re-enters it if the current scope
/// holds it), with a fixed `lease` or in watchdog mode. A fresh acquisition is measured under
/// `label`.
///
/// Begun at the first poll, as an `async` block would be, but in two steps: [`begin`], then the
/// wait. An `async` block keeps everything it captures in every state, so a block that began
/// itself would keep `wait` and `lease` beside the acquisition made of them for as long as the
/// task waits; the block here captures only the acquisition. Not an `async fn` either, whose
/// arguments would be kept twice. It owns the client's `backend`, the `name` and the `label` (a
/// handle's, cloned: reference counts), so the future borrows nothing: the attribute's code
/// drops the handle it made as soon as it asked.
pub(crate) fn acquire(
    flavor: &'static Flavor,
    backend: Arc<Backend>,
    (name, label): (Arc<str>, Label),
    wait: Duration,
    lease: Option<Duration>,
) -> impl Future<Output = Result<LockGuard, LockError>> + Send + 'static {
    future::lazy(move |_| begin(flavor, &backend, (&name, &label), wait, lease)).then(|begun| {
        match begun {
            Ok(Begun::Fresh(mut waiting)) => Either::Left(async move {
                let taken = waiting.measured().await?;
                // Made of what the acquisition keeps (its keys name the lock), so the block
                // keeps no reference beside it.
                let Acquire { backend, keys, .. } = &waiting.attempt;
                Ok(taken.guard(backend, &keys.name))
            }),
            Ok(Begun::Reentry(reentry)) => Either::Right(reentry),
            Err(err) => Either::Right(future::ready(Err(err)).boxed()),
        }
    })
}

/// How an acquisition begins: a re-entry, or a fresh acquisition to wait for.
enum Begun {
    /// The current scope holds the lock: re-entered (boxed: rare, and large).
    Reentry(BoxFuture<'static, Result<LockGuard, LockError>>),
    /// A fresh acquisition.
    Fresh(Waiting<Acquire>),
}

/// The first step of [`acquire`], as soon as it is polled: the arguments checked, the clock
/// started, and a re-entry if the current scope holds the lock, else a fresh acquisition.
fn begin(
    flavor: &'static Flavor,
    backend: &Arc<Backend>,
    (name, label): (&Arc<str>, &Label),
    wait: Duration,
    lease: Option<Duration>,
) -> Result<Begun, LockError> {
    let asked = Asked::new(flavor, backend, name, wait, lease)?;
    let client_id = backend.ids.client();
    if let Some(held) = scope::find(client_id, &asked.keys.main, flavor.kind) {
        let Asked {
            start,
            keys,
            deadline,
            ..
        } = asked;
        return Ok(Begun::Reentry(Box::pin(reenter(
            flavor,
            Arc::clone(backend),
            keys,
            held,
            start,
            deadline,
        ))));
    }
    let alongside = (flavor.fresh)(client_id, &asked.keys)?;
    Ok(Begun::Fresh(asked.fresh(flavor, backend, alongside, label)))
}

/// Waits up to `wait` for a fresh hold of `name` of `flavor` (never a re-entry), with a fixed
/// `lease` or in watchdog mode; `argument` is the flavor's own last argument to its acquire
/// script (a semaphore's number of permits), `None` where the script's default does. Traced and
/// measured as [`acquire_traced`], and
/// begun at the first poll in a step of its own, as [`acquire`] is.
pub(crate) fn acquire_fresh<'a>(
    flavor: &'static Flavor,
    backend: &'a Arc<Backend>,
    (name, label): (&'a Arc<str>, &'a Label),
    (wait, lease): (Duration, Option<Duration>),
    argument: Option<Arc<str>>,
) -> impl Future<Output = Result<Taken, LockError>> + Send + 'a {
    let trace = Trace::new(flavor, backend, (name, label), (wait, lease));
    let acquiring = future::lazy(move |_| {
        let asked = Asked::new(flavor, backend, name, wait, lease)?;
        Ok(asked.fresh(flavor, backend, argument, label))
    })
    .then(|begun| match begun {
        Ok(mut waiting) => Either::Left(async move { waiting.measured().await }),
        Err(err) => Either::Right(future::ready(Err(err))),
    });
    trace.around(acquiring)
}

/// [`acquire`] as a handle's `acquire` and `try_acquire`, and the attribute's code, run it (see
/// [`Trace`]). Not an `async fn`, so it adds no state of its own to the future every waiting
/// task holds.
pub(crate) fn acquire_traced(
    flavor: &'static Flavor,
    backend: Arc<Backend>,
    (name, label): (Arc<str>, Label),
    wait: Duration,
    lease: Option<Duration>,
) -> impl Future<Output = Result<LockGuard, LockError>> + Send + 'static {
    let trace = Trace::new(flavor, &backend, (&name, &label), (wait, lease));
    trace.around(acquire(flavor, backend, (name, label), wait, lease))
}

/// How an acquisition is run: polled in the background runtime's context (so its timers work
/// from any executor), inside a debug span naming the lock, its primitive and metrics label, the
/// wait and the lease. Made before the acquisition's future, which may own what names them.
///
/// A span takes 40 bytes of the future every waiting task carries, even when nothing records it
/// (debug spans are off in most deployments): a span that is on comes with the future boxed, and
/// one that is off leaves no trace.
struct Trace {
    runtime: &'static Background,
    span: tracing::Span,
}

impl Trace {
    fn new(
        flavor: &Flavor,
        backend: &Backend,
        (name, label): (&str, &Label),
        (wait, lease): (Duration, Option<Duration>),
    ) -> Self {
        let meter = Meter::new(flavor.primitive, label);
        Self {
            runtime: backend.runtime,
            span: tracing::debug_span!("acquire", lock = %name, %meter, wait = %ShownWait(wait), ?lease),
        }
    }

    /// `acquiring`, run as this trace says.
    fn around<F: Future>(self, acquiring: F) -> impl Future<Output = F::Output> {
        let acquiring = in_context(self.runtime.timers(), acquiring);
        if self.span.is_disabled() {
            Either::Left(acquiring)
        } else {
            Either::Right(Box::pin(acquiring.instrument(self.span)))
        }
    }
}

/// What every acquisition starts from: when it began, the keys, the lease checked, the deadline.
struct Asked {
    start: Instant,
    keys: Arc<Keys>,
    lease: Option<Duration>,
    deadline: Option<Instant>,
}

impl Asked {
    fn new(
        flavor: &Flavor,
        backend: &Backend,
        name: &Arc<str>,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<Self, LockError> {
        let start = Instant::now();
        Ok(Self {
            start,
            keys: Arc::new(flavor.layout.keys(backend, name)?),
            lease: lease
                .map(|lease| check_lease(name, "lease", lease))
                .transpose()?,
            deadline: deadline_after(start, wait),
        })
    }

    /// The fresh acquisition of `flavor` asked for, with `argument` as its flavor's own last
    /// argument (see [`Acquire::new`]), waited for until the deadline.
    fn fresh(
        self,
        flavor: &'static Flavor,
        backend: &Arc<Backend>,
        argument: Option<Arc<str>>,
        label: &Label,
    ) -> Waiting<Acquire> {
        Waiting {
            attempt: Acquire::new(flavor, backend, self.keys, self.lease, argument, label),
            start: self.start,
            deadline: self.deadline,
        }
    }
}

/// One fresh acquisition: a new owner id, tried as often as the wait engine (or a Redlock's
/// contender, `multi/redlock/contender.rs`) asks.
pub(crate) struct Acquire {
    flavor: &'static Flavor,
    backend: Arc<Backend>,
    keys: Arc<Keys>,
    owner: Arc<str>,
    /// The lease each try asks for: the fixed lease, or the watchdog timeout.
    lease_time: Duration,
    watchdog: bool,
    /// Registered with the watchdog before a try is sent (watchdog mode), removed if the try took
    /// nothing, handed to the hold if it took the lock.
    renewal: Option<RenewalId>,
    /// Whether a release may hand this waiter the lock directly, with `lease_time` (else it is
    /// woken to try); see [`Acquire::granted`].
    takes_hand_over: bool,
    /// When the last try that found the lock busy was sent, and the server's clock (µs) as it
    /// ran: a direct hand-over after it is timed from these.
    last_busy: Option<(Instant, u64)>,
    /// Who held the lock at that try, if the script said, kept only by a try with a deadline:
    /// described if the wait runs out, which a wait without one never does. Boxed, as most
    /// waiting tasks keep none.
    last_holder: Option<Box<Seen>>,
    /// The flavor's own last argument to its acquire script: the owner id of the scope's hold
    /// this one may be granted alongside (see [`Flavor::fresh`]), or a semaphore's number of
    /// permits.
    argument: Option<Arc<str>>,
    /// Set once something of this acquisition may remain in Redis if it ends without a guard:
    /// its place in the queue (`Mark::Nothing`), or an earlier copy of a resent request
    /// (`Mark::Abandoned`: that copy may reach Redis later and take the lock for this owner).
    /// Dropped set, the acquisition undoes that in the background; the undo is made then, so a
    /// waiting task keeps a byte for it rather than an armed undo. Cleared once a guard is
    /// handed out: the copy that took the hold marked the owner (see `attempt`).
    undo_on_drop: Option<Mark>,
    /// The label the hold's time, renewals and loss are counted under (see [`Acquire::meter`]).
    label: Label,
}

impl Waiting<Acquire> {
    /// Waits for this acquisition through the wait engine, measured under its meter.
    fn measured(&mut self) -> impl Future<Output = Result<Taken, LockError>> + '_ {
        self.attempt.meter().measure(wait::wait(self))
    }
}

impl Acquire {
    pub(crate) fn new(
        flavor: &'static Flavor,
        backend: &Arc<Backend>,
        keys: Arc<Keys>,
        lease: Option<Duration>,
        argument: Option<Arc<str>>,
        label: &Label,
    ) -> Self {
        let liveness = backend.config.watchdog_timeout;
        let lease_time = lease.unwrap_or(liveness);
        // A head handed the lock that turns out to be gone holds it until this lease runs out:
        // at most one liveness period. A replica wait must follow the request that took the lock,
        // so a waiter that asks for one takes the lock itself.
        let takes_hand_over =
            flavor.hand_over && lease_time <= liveness && backend.scripts.replica_wait().is_none();
        Self {
            flavor,
            backend: Arc::clone(backend),
            keys,
            owner: backend.ids.owner(),
            lease_time,
            watchdog: lease.is_none(),
            renewal: None,
            takes_hand_over,
            last_busy: None,
            last_holder: None,
            argument,
            undo_on_drop: None,
            label: label.clone(),
        }
    }

    /// Where this acquisition's wait, and the time, renewals and loss of its hold, are counted:
    /// made when needed from the flavor and the label, rather than kept while waiting.
    pub(crate) fn meter(&self) -> Meter {
        Meter::new(self.flavor.primitive, &self.label)
    }

    /// The owner id of this acquisition, which is also its waiter id.
    pub(crate) fn owner(&self) -> &Arc<str> {
        &self.owner
    }

    /// In watchdog mode, registers this acquisition with the watchdog (once): before a try is
    /// sent, so a lock taken is never left unrenewed, or as a hand-over is taken up.
    fn register_renewal(&mut self) {
        if self.watchdog && self.renewal.is_none() {
            let (layout, lease_time) = (self.flavor.layout, self.lease_time);
            let (keys, owner) = (Arc::clone(&self.keys), Arc::clone(&self.owner));
            let renew = move |calls: &Calls| {
                let mut renew = layout.renew.prepare_invoke(calls);
                renew.key(&keys.main);
                layout
                    .with_ended_holds(&mut renew, &keys)
                    .arg(owner.as_ref())
                    .arg(redis_millis(lease_time));
                renew
            };
            let registration = Registration::new(&self.keys.name, renew, lease_time);
            self.renewal = Some(self.backend.watchdog.register(registration));
        }
    }

    /// The undo of this acquisition: release whatever it holds, leave the queue, and mark its
    /// owner as `mark` says.
    fn abandon(&self, mark: Mark) -> Undo {
        Undo::new(
            self.flavor.layout,
            &self.keys,
            &self.owner,
            UndoOf::Acquisition(mark),
        )
    }

    /// Keeps the right undo for the end of this acquisition after a try whose request was
    /// `in_flight`, which it disarms: a marking one once a request was `resent` (now or
    /// before), a plain one while queued, none otherwise.
    fn keep_undo(&mut self, in_flight: InFlight<Undo>, resent: bool, queued: bool) {
        in_flight.disarm();
        if resent {
            self.undo_on_drop = Some(Mark::Abandoned);
        } else if queued && self.undo_on_drop.is_none() {
            self.undo_on_drop = Some(Mark::Nothing);
        }
    }

    /// Whether a request of this acquisition went out more than once: an earlier copy may then
    /// still be on its way (on a retired connection) and reach Redis at any time.
    fn copies_may_linger(&self) -> bool {
        self.undo_on_drop == Some(Mark::Abandoned)
    }

    /// Stops renewing after a try that took nothing.
    fn stop_renewal(&mut self) {
        if let Some(id) = self.renewal.take() {
            self.backend.watchdog.unregister(id);
        }
    }

    /// Gives back a lock this acquisition took but will not hand out. A hold like any other: if
    /// the caller gives up while the undo is on the wire, it finishes in the background.
    async fn give_back(&mut self) {
        // Abandoning marks the owner: stale copies of the request are covered too.
        self.undo_on_drop = None;
        let taken = Hold::new(
            Arc::clone(&self.backend),
            Box::new(self.abandon(Mark::Abandoned)),
            None,
            None,
        );
        if let Err(err) = taken.release_now().await {
            tracing::debug!(lock = %self.keys.name, error = %err, "giving back a lock not handed out failed");
        }
    }

    /// The hold this acquisition took, with a lease timed from `sent`; the renewal goes with it.
    fn hand_over(&mut self, token: u64, sent: Instant) -> Taken {
        // What the holder will know of its lease, renewed by the watchdog in watchdog mode:
        // made here, for a hold, and never for the tries that took nothing.
        let lease = Lease::new(
            &self.keys.name,
            &self.meter(),
            valid_until(sent, self.lease_time),
        );
        let renewal = self.renewal.take().map(|id| {
            self.backend.watchdog.activate(id, &lease);
            Arc::new(Renewal::new(Arc::clone(&self.backend), id))
        });
        // The acquire script (or the release that handed it over) took this owner out of the
        // queue, and a copy of its requests still on its way finds the owner marked once the
        // hold is gone (see `attempt`): nothing is left to undo.
        self.undo_on_drop = None;
        tracing::debug!(lock = %self.keys.name, token, "acquired");
        let reentries = Arc::<Reentries>::default();
        let release = Box::new(Release {
            layout: self.flavor.layout,
            keys: Arc::clone(&self.keys),
            owner: Arc::clone(&self.owner),
            token: AtomicU64::new(token),
            hold: Held::Acquisition(Arc::clone(&reentries)),
        });
        let holder = Holder {
            backend: Arc::clone(&self.backend),
            client_id: Arc::clone(self.backend.ids.client()),
            keys: Arc::clone(&self.keys),
            kind: self.flavor.kind,
            owner: Arc::clone(&self.owner),
            token,
            lease,
            execs: Arc::default(),
            reentries,
            renewal: renewal.as_ref().map(Arc::downgrade),
        };
        let hold =
            Hold::new(Arc::clone(&self.backend), release, renewal, None).measured(&self.meter());
        Taken { hold, holder }
    }
}

impl Attempt for Acquire {
    type Output = Taken;

    fn what(&self) -> &'static str {
        self.flavor.noun
    }

    fn backend(&self) -> &Backend {
        &self.backend
    }

    fn keys(&self) -> &Keys {
        &self.keys
    }

    fn waiter_id(&self) -> Option<&Arc<str>> {
        Some(self.owner())
    }

    fn holder(&self) -> Option<String> {
        let (_, server_us) = self.last_busy?;
        let own_name = &self.backend.config.client_name;
        Some(self.last_holder.as_ref()?.describe(server_us, own_name))
    }

    /// A release made this waiter the owner (`pass_on` in `scripts/common.lua`): `grant` is
    /// `"<token> <server time in µs of the hand-over>"`.
    ///
    /// The lease ran from the hand-over, which this client did not see happen. What it knows:
    /// its last try that found the lock busy was sent at `sent` and ran at server time `S`, so
    /// at or after `sent`; the hand-over ran at server time `H`, so at least `H - S` after
    /// `sent`, by a clock that may drift from the server's (1 % is allowed, as for leases). The
    /// deadline is timed from there, never later than the key's expiry in Redis. A hand-over
    /// timed before that try ran is stale (the lock was no longer ours then), and a lease
    /// spent already is not handed out: either way the engine tries, and the try tells (a hold
    /// still ours is re-armed and taken with a fresh deadline).
    fn granted(&mut self, grant: &str) -> Option<Taken> {
        // A hand-over does not mark the owner: the try that takes it up does (see `attempt`).
        if self.copies_may_linger() {
            return None;
        }
        let (token, handed_us) = grant.split_once(' ')?;
        let (token, handed_us) = (token.parse().ok()?, handed_us.parse::<u64>().ok()?);
        let (sent, busy_us) = self.last_busy?;
        let since_busy = Duration::from_micros(handed_us.checked_sub(busy_us)?);
        let now = Instant::now();
        let handed = sent
            .checked_add(since_busy - since_busy / 100)
            .map_or(now, |handed| handed.min(now));
        if valid_until(handed, self.lease_time) <= now {
            return None;
        }
        self.register_renewal();
        tracing::debug!(lock = %self.keys.name, "handed over");
        Some(self.hand_over(token, handed))
    }

    async fn attempt(&mut self, deadline: Option<Instant>) -> Result<Outcome<Taken>, LockError> {
        // Only for the try, so a task that is merely waiting costs the watchdog nothing.
        self.register_renewal();
        let keys = Arc::clone(&self.keys);
        let config = &self.backend.config;
        let queueing = Queueing {
            liveness: config.watchdog_timeout,
            refresh: config.renew_interval(),
            queued: self.undo_on_drop.is_some(),
            grant: if self.takes_hand_over {
                self.lease_time
            } else {
                Duration::ZERO
            },
            client_name: &config.client_name,
        };
        // A copy that may have earlier copies of this acquisition's requests on their way marks
        // the owner as it takes the hold, so that none of them takes the lock again once the
        // hold is gone (see `abandoned` in `scripts/common.lua`): every resend, and every try
        // after a request was resent.
        let mark = config.abandoned_ttl();
        let first_mark = if self.copies_may_linger() {
            mark
        } else {
            Duration::ZERO
        };
        // In a block of its own: the closure lives on inside `copies`, and the future, boxed for
        // every try in flight, keeps no second place for it.
        let copies = {
            let (flavor, lease_time) = (self.flavor, self.lease_time);
            let (owner, argument) = (Arc::clone(&self.owner), self.argument.clone());
            let calls = self.backend.scripts.calls();
            let call = move |mark| {
                acquire_call(
                    (calls, flavor),
                    &keys,
                    &owner,
                    lease_time,
                    queueing,
                    argument.as_deref(),
                    mark,
                )
            };
            Copies::new(call(first_mark), move || call(mark))
        };
        let context = || format!("acquiring lock `{}`", self.keys.name);
        let in_flight = InFlight::arm(&self.backend, self.abandon(Mark::Abandoned));
        let sent = self
            .backend
            .scripts
            .eval_replicated::<Acquired>(&copies, deadline, context)
            .await;
        drop(copies);
        let Sent {
            reply: (reply, acknowledged),
            sent,
            resent,
        } = sent?;
        let keys = Arc::clone(&self.keys);
        let queued = matches!(reply, Acquired::Busy { .. });
        self.keep_undo(in_flight, resent, queued);
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
            Acquired::Busy {
                ttl,
                server_us,
                holder,
            } => {
                self.stop_renewal();
                self.last_busy = Some((sent, server_us));
                self.last_holder = deadline.and(holder).map(Box::new);
                Ok(Outcome::Busy { ttl })
            }
            Acquired::WrongType { found } => {
                self.stop_renewal();
                Err(keys.wrong_type(Some(found)))
            }
            Acquired::Refused(refusal) => {
                self.stop_renewal();
                let argument = self.argument.as_deref();
                Err((self.flavor.refused)(refusal, &keys.name, argument))
            }
            // This acquisition is still wanted, so an earlier copy of its request took the hold
            // and marked the owner (see above), and the hold is gone since: its lease ran out
            // before a reply came.
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
        if let Some(mark) = self.undo_on_drop.take() {
            undo_in_background(&self.backend, Box::new(self.abandon(mark)));
        }
    }
}

/// Acquires again a lock the current scope holds: one more hold under the scope's owner id, once
/// no other re-entry of that scope is held.
async fn reenter(
    flavor: &'static Flavor,
    backend: Arc<Backend>,
    keys: Arc<Keys>,
    held: Arc<ScopeHold>,
    start: Instant,
    deadline: Option<Instant>,
) -> Result<LockGuard, LockError> {
    let turn = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, held.exclusive_reentry())
            .await
            .map_err(|_| LockError::Timeout {
                name: keys.name.to_string(),
                what: flavor.noun,
                waited: start.elapsed(),
                holder: None,
            })?,
        None => held.exclusive_reentry().await,
    };
    let (owner, layout) = (&held.holder.owner, flavor.layout);
    let Some(script) = layout.reenter else {
        return Err(LockError::misuse(format!(
            "`{}` cannot be re-entered",
            keys.name
        )));
    };
    // The guard of the scope's hold started its release (it was dropped while this scope
    // runs): the release counts on no re-entry of its owner, so none is sent, and this one
    // fails as one that finds the hold gone would.
    if !held.holder.reentries.reenter() {
        return Err(LockError::LeaseLost {
            name: keys.name.to_string(),
        });
    }
    let context = || format!("re-entering lock `{}`", keys.name);
    let mut tries = 0;
    let (reply, number) = loop {
        let number = backend.ids.reentry();
        let mut call = script.prepare_invoke(backend.scripts.calls());
        call.key(&keys.main);
        layout
            .with_ended_holds(&mut call, &keys)
            .arg(owner.as_ref())
            .arg(number);
        let undo = Undo::new(layout, &keys, owner, UndoOf::Reentry(number));
        let in_flight = InFlight::arm(&backend, undo);
        let reply = backend
            .scripts
            .eval::<Reentered>(&call, deadline, context)
            .await?;
        in_flight.disarm();
        tries += 1;
        // Spent: a later re-entry of this owner (another scope level's) landed first, so this
        // number can never count; nothing was taken, and a new number is asked again.
        if reply.reply != Reentered::Spent || tries == SPENT_TRIES {
            break (reply.reply, number);
        }
    };
    match reply {
        Reentered::Entered => {
            tracing::debug!(lock = %keys.name, "re-entered");
            let release = Box::new(Release {
                layout,
                keys: Arc::clone(&keys),
                owner: Arc::clone(owner),
                token: AtomicU64::new(held.holder.token),
                hold: Held::Reentry(number),
            });
            // The re-entry shares the outer hold's renewal: renewed as long as either is held.
            let renewal = held.holder.renewal.as_ref().and_then(Weak::upgrade);
            let hold = Hold::new(Arc::clone(&backend), release, renewal, Some(turn));
            Ok(LockGuard::new(
                hold,
                Arc::clone(&keys.name),
                held.holder.clone(),
                backend.runtime,
            ))
        }
        Reentered::WrongType => Err(keys.wrong_type(None)),
        Reentered::Lost | Reentered::Spent => Err(LockError::LeaseLost {
            name: keys.name.to_string(),
        }),
    }
}

/// How many numbers a re-entry tries, each found spent by a later re-entry of its owner that
/// landed first, before it gives up. Re-entries of one owner run one at a time per scope level,
/// so one more try is all it takes unless a guard's scope runs beside its own release.
const SPENT_TRIES: u32 = 3;

/// Who takes a hold, as the acquire scripts record it with the hold:
/// `"<client name> <ms since the Unix epoch>"` (see `take` in `scripts/common.lua`), timed by
/// this client's clock when the call is built. Reading its own clock (a `TIME` call, and the
/// strings made of its reply) cost Redis as much as the rest of taking a free lock; the time
/// only says how long a hold has been held, so the clocks of the client and Redis need agree
/// only about as well as that.
struct TakenBy<'a> {
    client_name: &'a str,
    at: SystemTime,
}

impl<'a> TakenBy<'a> {
    fn now(client_name: &'a str) -> Self {
        Self {
            client_name,
            at: SystemTime::now(),
        }
    }
}

impl ToRedisArgs for TakenBy<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        // A clock set before 1970 says 0: the hold then reads as held since then.
        let millis = self
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let mut record = out.writer_for_next_arg();
        // Written into the command's own buffer, where writing does not fail.
        let written = write!(record, "{} {millis}", self.client_name);
        debug_assert!(written.is_ok(), "writing a record into a command's buffer");
    }
}

/// How a fresh acquisition waits in the queue, for its acquire script.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Queueing<'a> {
    /// How long a queued waiter stays live after each try.
    pub(crate) liveness: Duration,
    /// The longest it may sleep before it tries again.
    pub(crate) refresh: Duration,
    /// Whether it queued on an earlier try.
    pub(crate) queued: bool,
    /// The lease a release may hand it the lock with while it waits (`Duration::ZERO`: none).
    pub(crate) grant: Duration,
    /// The client's name, recorded with the hold it takes (see `LockClientBuilder::client_name`).
    pub(crate) client_name: &'a str,
}

/// The call of `flavor`'s acquire script, as `calls` sends it, for a fresh acquisition by `owner`
/// for `lease`, with the flavor's own last `argument` if it has one (the scope's hold a read may be
/// granted alongside, see [`Flavor::fresh`]; a semaphore's number of permits). The script marks the
/// owner for `mark` as it takes or re-arms the hold (`Duration::ZERO`: no mark), for copies of the
/// acquisition's requests that may still be on their way (see `abandoned` in `scripts/common.lua`).
pub(crate) fn acquire_call(
    (calls, flavor): (&Calls, &Flavor),
    keys: &Keys,
    owner: &str,
    lease: Duration,
    queueing: Queueing<'_>,
    argument: Option<&str>,
    mark: Duration,
) -> Invocation {
    let mut acquire = flavor.acquire.prepare_invoke(calls);
    acquire
        .key(&keys.main)
        .key(keys.fence())
        .key(keys.abandoned(owner))
        .key(keys.queue())
        .key(keys.alive())
        .key(keys.wants());
    // The notes of lost holds last: a take notes a hold that ended without its release.
    flavor
        .layout
        .with_leases(&mut acquire, keys)
        .key(keys.lost())
        .arg(owner)
        .arg(TakenBy::now(queueing.client_name));
    // Each with the default the script reads when it is left out (see `lease_of` and
    // `waiter_times` in `scripts/common.lua`, and `lock/scripts/acquire.lua`): the first try of
    // an uncontended acquisition under the default settings sends none of them.
    let optional = [
        (redis_millis(lease), redis_millis(DEFAULT_WATCHDOG_TIMEOUT)),
        (
            redis_millis(queueing.liveness),
            redis_millis(DEFAULT_WATCHDOG_TIMEOUT),
        ),
        (
            redis_millis(queueing.refresh),
            redis_millis(DEFAULT_WATCHDOG_TIMEOUT / 3),
        ),
        (
            redis_millis(queueing.grant),
            if flavor.hand_over {
                redis_millis(DEFAULT_WATCHDOG_TIMEOUT)
            } else {
                0
            },
        ),
        (u64::from(queueing.queued), 0),
        (redis_millis(mark), 0),
    ];
    let sent = if argument.is_some() {
        optional.len()
    } else {
        optional
            .iter()
            .rposition(|&(value, default)| value != default)
            .map_or(0, |at| at + 1)
    };
    for &(value, _) in &optional[..sent] {
        acquire.arg(value);
    }
    if let Some(argument) = argument {
        acquire.arg(argument);
    }
    acquire
}
