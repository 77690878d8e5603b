//! The lease watchdog: one task per client renews every lock held in watchdog mode.
//!
//! A lock taken without a fixed lease is set with `watchdog_timeout` and renewed every third of
//! it while its guard lives. One task serves all of a client's held locks, sending their renewals
//! together on the multiplexed connection, rather than one timer task per lock.
//!
//! Ordering (Redisson issues 7272 and 4698): a guard is registered *before* each acquire request
//! is sent (and removed again if the lock was taken by another), but is renewed only once the
//! acquire succeeded; it is removed synchronously when its release starts, so a renewal never
//! outlives the lock. A renewal that finds the lock gone or owned by
//! another, or a Redis that stays unreachable past the lease's deadline, marks the lease lost, and
//! the holder learns it through `LockGuard::lease_lost`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::{
    config::Config,
    connection::Commands,
    keys::LockKeys,
    lease::{Lease, valid_until},
    scripts,
    sync::lock,
};

/// The per-client watchdog; dropping it stops the renewal task.
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    _task: AbortOnDropHandle<()>,
}

#[derive(Default)]
struct Shared {
    renewals: Mutex<HashMap<u64, Renewal>>,
    next_id: AtomicU64,
}

#[derive(Clone)]
struct Renewal {
    keys: Arc<LockKeys>,
    owner: Arc<str>,
    lease: Arc<Lease>,
    /// False until the acquire succeeded: a lock not yet taken must not be reported lost.
    active: bool,
}

/// Identifies one registration; see [`Watchdog::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RenewalId(u64);

impl Watchdog {
    pub(crate) fn start(commands: Arc<Commands>, config: &Config) -> Self {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(renew_forever(
            Arc::downgrade(&shared),
            commands,
            config.watchdog_timeout,
            config.renew_interval(),
        ));
        Self {
            shared,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// Registers a lock about to be acquired; renewals start at [`Watchdog::activate`].
    pub(crate) fn register(
        &self,
        keys: &Arc<LockKeys>,
        owner: &Arc<str>,
        lease: &Arc<Lease>,
    ) -> RenewalId {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.renewals).insert(
            id,
            Renewal {
                keys: Arc::clone(keys),
                owner: Arc::clone(owner),
                lease: Arc::clone(lease),
                active: false,
            },
        );
        RenewalId(id)
    }

    /// The acquire succeeded: renew from now on.
    pub(crate) fn activate(&self, id: RenewalId) {
        if let Some(renewal) = lock(&self.shared.renewals).get_mut(&id.0) {
            renewal.active = true;
        }
    }

    /// Stops renewing; called before a release is sent, or when an acquire failed.
    pub(crate) fn unregister(&self, id: RenewalId) {
        lock(&self.shared.renewals).remove(&id.0);
    }
}

async fn renew_forever(
    shared: Weak<Shared>,
    commands: Arc<Commands>,
    lease: Duration,
    interval: Duration,
) {
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = shared.upgrade() else {
            return;
        };
        let due: Vec<(u64, Renewal)> = lock(&state.renewals)
            .iter()
            .filter(|(_, renewal)| renewal.active)
            .map(|(id, renewal)| (*id, renewal.clone()))
            .collect();
        if due.is_empty() {
            continue;
        }
        let sent = Instant::now();
        let leased = commands.lease();
        let replies = futures_util::future::join_all(due.iter().map(|(_, renewal)| {
            let mut connection = leased.connection.clone();
            let mut renew = scripts::RENEW.prepare_invoke();
            renew
                .key(&renewal.keys.lock)
                .arg(renewal.owner.as_ref())
                .arg(lease_ms);
            async move { renew.invoke_async::<i64>(&mut connection).await }
        }))
        .await;
        if let Some(Err(err)) = replies.iter().find(|reply| reply.is_err()) {
            commands.report(&leased, err);
        }
        for ((id, renewal), reply) in due.iter().zip(replies) {
            let (lock_key, held) = (&renewal.keys.name, &renewal.lease);
            match reply {
                Ok(1) => {
                    held.extend_to(valid_until(sent, lease));
                    tracing::trace!(lock = %lock_key, "lease renewed");
                }
                Ok(_) => {
                    // Gone or taken over; unless the holder released it meanwhile, that is a loss.
                    if lock(&state.renewals).remove(id).is_some() {
                        tracing::debug!(lock = %lock_key, "renewal found the lock no longer ours");
                        held.mark_lost();
                    }
                }
                Err(err) => {
                    tracing::debug!(lock = %lock_key, error = %err, "renewal failed");
                    if Instant::now() >= held.deadline()
                        && lock(&state.renewals).remove(id).is_some()
                    {
                        held.mark_lost();
                    }
                }
            }
        }
    }
}
