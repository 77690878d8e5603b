//! Lease arithmetic, and what a holder knows about its lease: the local deadline, and whether it
//! is known lost.
//!
//! The deadline is computed as Redlock does, on the monotonic clock: the moment the request whose
//! execution set the TTL was sent, plus the lease Redis was asked to set, minus a margin for clock
//! drift between this process and Redis. Past it, Redis may already have expired the key, so the
//! holder must assume another owner can have the lock. A resent request that finds its own hold
//! re-arms the TTL in Redis, so timing the deadline from the resend is safe.
//!
//! # Any `Duration` is valid input
//!
//! - A wait too large for `Instant` arithmetic (`Duration::MAX`) means "no deadline": see
//!   [`deadline_after`].
//! - A lease must lie between [`MIN_LEASE`] and [`MAX_LEASE`] ([`check_lease`]): under a
//!   millisecond Redis would be asked for `PEXPIRE 0`, which deletes the key; beyond a year the
//!   lease is surely a mistake, and far enough beyond it Redis refuses the expiry.
//! - Durations sent to Redis saturate ([`redis_millis`]).

use std::{
    fmt,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::{core::meter::Meter, error::LockError, transport::sync::lock_ignoring_poison};

/// The shortest lease: Redis counts leases in whole milliseconds.
pub(crate) const MIN_LEASE: Duration = Duration::from_millis(1);

/// The longest lease, fixed or watchdog: a year.
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Checks a lease asked of lock `name`; `what` says which setting it came from.
pub(crate) fn check_lease(name: &str, what: &str, lease: Duration) -> Result<Duration, LockError> {
    if (MIN_LEASE..=MAX_LEASE).contains(&lease) {
        return Ok(lease);
    }
    Err(LockError::invalid_argument(format!(
        "the {what} of `{name}` is {lease:?}; it must lie between {MIN_LEASE:?} and {} days, or be `None` for the watchdog",
        MAX_LEASE.as_secs() / 86_400
    )))
}

/// The instant `wait` after `start`, or `None` ("no deadline") when that is too far away to be
/// represented, as `Duration::MAX` is.
pub(crate) fn deadline_after(start: Instant, wait: Duration) -> Option<Instant> {
    start.checked_add(wait)
}

/// A wait as a trace shows it: `unlimited` when it is too far away to be a deadline (as
/// [`deadline_after`] finds `Duration::MAX`, the wait of every `acquire()`), otherwise as a
/// `Duration` debugs (`5s`, `250ms`). Not `18446744073709551615.999999999s`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShownWait(pub(crate) Duration);

impl fmt::Display for ShownWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match deadline_after(Instant::now(), self.0) {
            Some(_) => write!(f, "{:?}", self.0),
            None => f.write_str("unlimited"),
        }
    }
}

/// `duration` in whole milliseconds for Redis, saturating.
pub(crate) fn redis_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The lease of one held lock, shared by its guard, its re-entries and the watchdog.
#[derive(Debug)]
pub(crate) struct Lease {
    name: Arc<str>,
    /// Where a loss is counted.
    meter: Meter,
    deadline: Mutex<Instant>,
    /// Set once, never cleared: a lease known lost stays lost.
    lost: AtomicBool,
    lost_notify: Notify,
}

impl Lease {
    pub(crate) fn new(name: &Arc<str>, meter: &Meter, deadline: Instant) -> Arc<Self> {
        Arc::new(Self {
            name: Arc::clone(name),
            meter: meter.clone(),
            deadline: Mutex::new(deadline),
            lost: AtomicBool::new(false),
            lost_notify: Notify::new(),
        })
    }

    pub(crate) fn deadline(&self) -> Instant {
        *lock_ignoring_poison(&self.deadline)
    }

    /// Where this hold's renewals and loss are counted.
    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Moves the deadline after Redis confirmed a new lease.
    pub(crate) fn extend_to(&self, deadline: Instant) {
        *lock_ignoring_poison(&self.deadline) = deadline;
    }

    /// Records that the lease is lost; wakes everyone awaiting [`Lease::lost`].
    pub(crate) fn mark_lost(&self) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::warn!(lock = %self.name, "lease lost: another owner may hold the lock now");
            self.meter.lease_lost();
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

/// The margin kept for clock drift between this process and Redis over a lease of `lease`:
/// Redlock's 1 % of the lease plus 2 ms.
pub(crate) fn drift(lease: Duration) -> Duration {
    lease / 100 + Duration::from_millis(2)
}

/// The last instant a lease of `lease` requested at `sent` can be trusted: Redlock's validity,
/// with the [`drift`] margin. A lease shorter than the margin is spent at once. Leases are at
/// most [`MAX_LEASE`], so the sum cannot overflow.
pub(crate) fn valid_until(sent: Instant, lease: Duration) -> Instant {
    let valid = lease.saturating_sub(drift(lease));
    sent.checked_add(valid).unwrap_or(sent)
}

/// What is left of a lease of `lease` requested `elapsed` ago, the [`drift`] margin taken off:
/// Redlock's validity time. `None` once nothing is left, so a lock whose acquisition took as
/// long as its lease is never handed out.
pub(crate) fn validity(lease: Duration, elapsed: Duration) -> Option<Duration> {
    lease
        .checked_sub(elapsed)?
        .checked_sub(drift(lease))
        .filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::meter::Label;

    #[test]
    fn an_unlimited_wait_is_shown_as_such() {
        assert_eq!(ShownWait(Duration::MAX).to_string(), "unlimited");
        assert_eq!(ShownWait(Duration::from_millis(1_500)).to_string(), "1.5s");
        assert_eq!(ShownWait(Duration::ZERO).to_string(), "0ns");
    }

    proptest! {
        /// Redlock's validity is exactly what is left of the lease once the time taken and the
        /// drift margin are off, never more, and it is gone once they use the lease up.
        #[test]
        fn validity_is_what_is_left_of_the_lease(
            lease_us in 1_000_u64..=MAX_LEASE.as_micros() as u64,
            elapsed_us in 0_u64..=2 * MAX_LEASE.as_micros() as u64,
        ) {
            let (lease, elapsed) = (Duration::from_micros(lease_us), Duration::from_micros(elapsed_us));
            let margin = drift(lease);
            match validity(lease, elapsed) {
                Some(left) => {
                    prop_assert!(!left.is_zero());
                    prop_assert_eq!(left + elapsed + margin, lease);
                }
                None => prop_assert!(elapsed + margin >= lease),
            }
        }

        /// The later the quorum is reached, the less validity is left.
        #[test]
        fn validity_shrinks_as_time_passes(
            lease_us in 1_000_u64..=MAX_LEASE.as_micros() as u64,
            earlier_us in 0_u64..=MAX_LEASE.as_micros() as u64,
            later_by_us in 0_u64..=MAX_LEASE.as_micros() as u64,
        ) {
            let lease = Duration::from_micros(lease_us);
            let earlier = Duration::from_micros(earlier_us);
            let later = earlier + Duration::from_micros(later_by_us);
            prop_assert!(validity(lease, later) <= validity(lease, earlier));
        }

        /// A holder's deadline is the validity of a lease taken at once: the two computations
        /// agree.
        #[test]
        fn the_deadline_is_the_validity_at_the_start(
            lease_us in 1_000_u64..=MAX_LEASE.as_micros() as u64,
        ) {
            let lease = Duration::from_micros(lease_us);
            let start = Instant::now();
            let left = validity(lease, Duration::ZERO).unwrap_or_default();
            prop_assert_eq!(valid_until(start, lease) - start, left);
        }
    }

    #[test]
    fn validity_keeps_a_drift_margin() {
        let start = Instant::now();
        let until = valid_until(start, Duration::from_secs(10));
        assert_eq!(until - start, Duration::from_millis(9_898));
    }

    #[test]
    fn leases_out_of_range_are_refused_and_waits_saturate() {
        for lease in [
            Duration::ZERO,
            Duration::from_micros(999),
            MAX_LEASE + Duration::from_nanos(1),
            Duration::MAX,
        ] {
            let err = check_lease("x", "lease", lease).expect_err("out of range");
            assert!(err.is_invalid_argument(), "{err}");
        }
        assert!(check_lease("x", "lease", MIN_LEASE).is_ok());
        assert!(check_lease("x", "lease", MAX_LEASE).is_ok());
        assert_eq!(deadline_after(Instant::now(), Duration::MAX), None);
        assert_eq!(redis_millis(Duration::MAX), u64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn lost_resolves_at_the_deadline_unless_extended() {
        let start = Instant::now();
        let meter = Meter::new("lock", &Label::Unlabeled);
        let lease = Lease::new(&Arc::from("x"), &meter, start + Duration::from_secs(1));
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
