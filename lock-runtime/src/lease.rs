//! What a holder knows about its lease: the local deadline, and whether it is known lost.
//!
//! The deadline is computed as Redlock does, on the monotonic clock: the moment the acquiring (or
//! renewing) request was sent, plus the lease Redis was asked to set, minus a margin for clock
//! drift between this process and Redis. Past it, Redis may already have expired the key, so the
//! holder must assume another owner can have the lock.

use std::{
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::{keys::LockKeys, sync::lock};

/// The lease of one held lock, shared by its guard, its re-entries and the watchdog.
#[derive(Debug)]
pub(crate) struct Lease {
    keys: Arc<LockKeys>,
    deadline: Mutex<Instant>,
    /// Set once, never cleared: a lease known lost stays lost.
    lost: AtomicBool,
    lost_notify: Notify,
}

impl Lease {
    pub(crate) fn new(keys: &Arc<LockKeys>, deadline: Instant) -> Arc<Self> {
        Arc::new(Self {
            keys: Arc::clone(keys),
            deadline: Mutex::new(deadline),
            lost: AtomicBool::new(false),
            lost_notify: Notify::new(),
        })
    }

    pub(crate) fn deadline(&self) -> Instant {
        *lock(&self.deadline)
    }

    /// Moves the deadline after Redis confirmed a new lease.
    pub(crate) fn extend_to(&self, deadline: Instant) {
        *lock(&self.deadline) = deadline;
    }

    /// Records that the lease is lost; wakes everyone awaiting [`Lease::lost`].
    pub(crate) fn mark_lost(&self) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::debug!(lock = %self.keys.name, "lease lost");
            self.lost_notify.notify_waiters();
        }
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || Instant::now() >= self.deadline()
    }

    /// Resolves once the lease is known lost: marked so, or its deadline passed unextended.
    pub(crate) async fn lost(&self) {
        loop {
            // Registered before the flag is read, so a loss marked in between still wakes us.
            let mut marked = pin!(self.lost_notify.notified());
            marked.as_mut().enable();
            if self.lost.load(Ordering::Acquire) {
                return;
            }
            let deadline = self.deadline();
            tokio::select! {
                () = marked => return,
                () = tokio::time::sleep_until(deadline) => {
                    if Instant::now() >= self.deadline() {
                        self.mark_lost();
                        return;
                    }
                }
            }
        }
    }
}

/// The last instant a lease of `lease` requested at `sent` can be trusted: Redlock's validity,
/// with a drift margin of 1% of the lease plus 2 ms.
pub(crate) fn valid_until(sent: Instant, lease: Duration) -> Instant {
    let drift = lease / 100 + Duration::from_millis(2);
    sent + lease.saturating_sub(drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_keeps_a_drift_margin() {
        let start = Instant::now();
        let until = valid_until(start, Duration::from_secs(10));
        assert_eq!(until - start, Duration::from_millis(9_898));
    }

    #[tokio::test(start_paused = true)]
    async fn lost_resolves_at_the_deadline_unless_extended() {
        let start = Instant::now();
        let keys = Arc::new(LockKeys::new("test", &Arc::from("x")).expect("valid name"));
        let lease = Lease::new(&keys, start + Duration::from_secs(1));
        let extender = {
            let lease = Arc::clone(&lease);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                lease.extend_to(start + Duration::from_secs(3));
            })
        };
        lease.lost().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert!(lease.is_lost());
        extender.await.expect("extender task");
    }
}
