//! The lease watchdog: one task per client renews every hold taken without a fixed lease.
//!
//! A hold taken without a fixed lease (a lock, and later a read hold or a semaphore permit) is
//! set with `watchdog_timeout` and renewed every third of it while its guard lives. One task
//! serves all of a client's holds, sending their renewals together on the multiplexed
//! connection, rather than one timer task per hold. The watchdog knows no primitive: each
//! registration carries the script call that renews it, whose reply is a [`Renewal`].
//!
//! Ordering (Redisson issues 7272 and 4698): a hold is registered *before* each acquire request
//! is sent (and removed again if the request took nothing), but is renewed only once the acquire
//! succeeded; it is removed synchronously when its release starts, so no renewal starts after
//! the release (one already on its way, perhaps being resent, finds the hold gone, changes
//! nothing and reports nothing: the owner id is the acquisition's own). A renewal that finds
//! the hold gone or owned by another, or a Redis that stays unreachable past the lease's
//! deadline, marks the lease lost, and the holder learns it through `LockGuard::lease_lost`.
//!
//! A renewal is safe to resend: it only re-arms the TTL of a hold its owner still has (the
//! renew scripts say so), so a copy that lands late keeps the hold in Redis longer than its
//! holder believes, never shorter, and never revives a hold that is gone. So a renewal whose
//! connection failed (a reset or a timeout, which prove nothing: a Redis Cluster master dying
//! under it answers "broken pipe") is resent like any request safe to resend, within the
//! retry timeout and never past the hold's local deadline: a renewal keeps trying only while the
//! lease it protects is still good. Otherwise two failed ticks in a row would lose the lease of
//! a short watchdog timeout through a failover of a few seconds. A renewal still being resent
//! when the next tick comes is left to go on (the tick sends no second one for that hold), and
//! does not hold up the renewals of the other holds.
//!
//! The local deadline a renewal sets is timed from the send of the attempt that got the reply:
//! that attempt ran after it was sent, and a copy that runs after it re-arms the TTL from a
//! later instant still, so the deadline is never later than the key's expiry in Redis.
//!
//! The task runs on the library's background runtime, so it lives as long as the client; the
//! renewals in flight are its subtasks, and end with it.

use std::{
    num::NonZeroU64,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::core::lua::{Calls, Invocation};
use tokio::{task::JoinSet, time::Instant};
use tokio_util::task::AbortOnDropHandle;

use crate::{
    core::{
        lease::{Lease, valid_until},
        reply::status_reply,
        script_path::{ScriptPath, Sent},
    },
    transport::{
        background::Background,
        sync::{IdMap, lock_ignoring_poison, shrink_when_sparse},
    },
};

/// The per-client watchdog; dropping it stops the renewal task.
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    _task: AbortOnDropHandle<()>,
}

#[derive(Default)]
struct Shared {
    renewals: Mutex<IdMap<Registration>>,
    next_id: AtomicU64,
}

/// Makes the script call that renews one hold.
type MakeRenewal = dyn Fn(&Calls) -> Invocation + Send + Sync;

/// How a hold is renewed, shared by the clones of its registration: one allocation for both.
struct Renewer<F: ?Sized> {
    /// Set while a renewal of this hold is on its way (perhaps being resent): a tick sends no
    /// second one meanwhile.
    in_flight: AtomicBool,
    /// Makes the script call that renews the hold for `lease`, whose reply is a [`Renewal`]:
    /// made when a renewal is due rather than kept, since every try of a waiting task
    /// registers (see the module docs) and most of them take nothing.
    renew: F,
}

/// What renews one hold.
#[derive(Clone)]
pub(crate) struct Registration {
    /// For logs: the name of the resource held.
    name: Arc<str>,
    renewer: Arc<Renewer<MakeRenewal>>,
    /// The hold's lease, given when the acquire succeeded ([`Watchdog::activate`]): until then
    /// the hold is neither renewed nor reported lost, and the many tries that take nothing make
    /// no lease.
    lease: Option<Arc<Lease>>,
    /// The lease each renewal sets.
    lease_time: Duration,
}

impl Registration {
    pub(crate) fn new(
        name: &Arc<str>,
        renew: impl Fn(&Calls) -> Invocation + Send + Sync + 'static,
        lease_time: Duration,
    ) -> Self {
        Self {
            name: Arc::clone(name),
            renewer: Arc::new(Renewer {
                in_flight: AtomicBool::new(false),
                renew,
            }),
            lease: None,
            lease_time,
        }
    }
}

status_reply! {
    /// The reply of every renew script.
    pub(crate) enum Renewal from "renew" {
        Renewed = 1,
        /// The hold is no longer this owner's.
        Lost = 0,
    }
}

/// Identifies one registration; see [`Watchdog::register`]. Never zero, so the
/// `Option<RenewalId>` every acquisition keeps while it waits is no larger than the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RenewalId(NonZeroU64);

impl Watchdog {
    pub(crate) fn start(
        runtime: &Background,
        scripts: Arc<ScriptPath>,
        interval: Duration,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let task =
            runtime
                .handle()
                .spawn(renew_forever(Arc::downgrade(&shared), scripts, interval));
        Self {
            shared,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// Registers a hold about to be acquired; renewals start at [`Watchdog::activate`].
    pub(crate) fn register(&self, registration: Registration) -> RenewalId {
        let id =
            NonZeroU64::MIN.saturating_add(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        lock_ignoring_poison(&self.shared.renewals).insert(id.get(), registration);
        RenewalId(id)
    }

    /// The acquire succeeded, and its hold has `lease`: renew from now on.
    pub(crate) fn activate(&self, id: RenewalId, lease: &Arc<Lease>) {
        if let Some(renewal) = lock_ignoring_poison(&self.shared.renewals).get_mut(&id.0.get()) {
            renewal.lease = Some(Arc::clone(lease));
        }
    }

    /// Stops renewing; called before a release is sent, or when an acquire took nothing.
    ///
    /// Every try of a waiting task registers, so a burst of tasks arriving at once grows the
    /// map to as many entries, nearly all gone a round trip later (see [`shrink_when_sparse`]).
    pub(crate) fn unregister(&self, id: RenewalId) {
        let mut renewals = lock_ignoring_poison(&self.shared.renewals);
        renewals.remove(&id.0.get());
        shrink_when_sparse(&mut renewals);
    }
}

async fn renew_forever(shared: Weak<Shared>, scripts: Arc<ScriptPath>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The renewals of each tick run as subtasks, so that one being resent (until its hold's
    // deadline at most) holds up neither the next tick nor the other holds' renewals; dropping
    // the set (the client is gone) aborts them.
    let mut batches = JoinSet::new();
    loop {
        tick.tick().await;
        while batches.try_join_next().is_some() {}
        let Some(state) = shared.upgrade() else {
            return;
        };
        let due: Vec<Due> = lock_ignoring_poison(&state.renewals)
            .iter()
            .filter_map(|(id, renewal)| {
                let lease = Arc::clone(renewal.lease.as_ref()?);
                let idle = !renewal.renewer.in_flight.swap(true, Ordering::AcqRel);
                idle.then(|| (*id, lease, renewal.clone()))
            })
            .collect();
        if due.is_empty() {
            continue;
        }
        let scripts = Arc::clone(&scripts);
        batches.spawn(async move { renew_all(&state, &scripts, due).await });
    }
}

/// Sends every due renewal at once, pipelined on the shared connection, each resent while it
/// fails for a transient reason, until its hold's deadline; a failure retires the connection
/// as any other request's would. Each renewal's reply is acted on as soon as it comes.
async fn renew_all(state: &Shared, scripts: &ScriptPath, due: Vec<Due>) {
    futures_util::future::join_all(
        due.into_iter()
            .map(|(id, held, registration)| renew(state, scripts, id, held, registration)),
    )
    .await;
}

/// A renewal due: the registration's id, the lease it renews, and the registration.
type Due = (u64, Arc<Lease>, Registration);

/// Renews one hold, and records what came of it.
async fn renew(
    state: &Shared,
    scripts: &ScriptPath,
    id: u64,
    held: Arc<Lease>,
    registration: Registration,
) {
    let name = &registration.name;
    let context = || format!("renewing the lease of `{name}`");
    let renew = (registration.renewer.renew)(scripts.calls());
    let reply = scripts
        .eval::<Renewal>(&renew, Some(held.deadline()), context)
        .await;
    match reply {
        Ok(Sent {
            reply: Renewal::Renewed,
            sent,
            ..
        }) => {
            held.extend_to(valid_until(sent, registration.lease_time));
            held.meter().renewed();
            tracing::trace!(lock = %name, "lease renewed");
        }
        Ok(Sent {
            reply: Renewal::Lost,
            ..
        }) => {
            // Gone or taken over; unless the holder released it meanwhile, that is a loss.
            if lock_ignoring_poison(&state.renewals).remove(&id).is_some() {
                tracing::debug!(lock = %name, "renewal found the hold no longer ours");
                held.mark_lost();
            }
        }
        Err(err) => {
            tracing::debug!(lock = %name, error = %err, "renewal failed");
            if Instant::now() >= held.deadline()
                && lock_ignoring_poison(&state.renewals).remove(&id).is_some()
            {
                held.mark_lost();
            }
        }
    }
    registration
        .renewer
        .in_flight
        .store(false, Ordering::Release);
}
