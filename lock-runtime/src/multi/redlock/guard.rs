//! [`RedlockGuard`]: a Redlock held on a quorum of masters.

use std::{future::Future, pin::pin, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream::FuturesUnordered};
use tokio::time::Instant;

use crate::{
    core::{
        meter::{Holding, Meter},
        scope,
    },
    error::LockError,
    family::guard::LockGuard,
    multi::released,
    transport::background::in_context,
};

/// A [`Redlock`](crate::Redlock)'s lock, held on a quorum of its masters. Dropping it releases
/// every master's hold (in the background: before a process exits, wait for that with
/// [`Redlock::flush`](crate::Redlock::flush));
/// [`RedlockGuard::unlock`] releases them and reports how that went.
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct RedlockGuard {
    name: Arc<str>,
    /// One per master that holds the lock: at least a quorum.
    members: Vec<LockGuard>,
    quorum: usize,
    token: u64,
    /// The end of a fixed lease's validity, timed from the start of the round that took it.
    valid_until: Option<Instant>,
    /// The hold's time, measured until the release starts (a re-entry's is not).
    holding: Option<Holding>,
}

impl RedlockGuard {
    pub(super) fn new(
        name: Arc<str>,
        members: Vec<LockGuard>,
        quorum: usize,
        token: u64,
        valid_until: Option<Instant>,
    ) -> Self {
        Self {
            name,
            members,
            quorum,
            token,
            valid_until,
            holding: None,
        }
    }

    /// Measures this hold's time in `meter`'s series, from now until its release starts.
    pub(super) fn measured(mut self, meter: &Meter) -> Self {
        self.holding = Some(meter.holding());
        self
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token of this hold: strictly greater than every token handed out before for
    /// this lock by this Redlock's masters, although each master counts on its own (see
    /// [`Redlock`](crate::Redlock), "Fencing tokens that stay strictly increasing"). A re-entry
    /// carries its outer hold's token.
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// How many masters hold the lock for this guard (at least the quorum).
    pub fn masters_held(&self) -> usize {
        self.members.len()
    }

    /// How many masters' holds may be lost before the lock is: those beyond the quorum.
    fn losses_tolerated(&self) -> usize {
        self.members.len().saturating_sub(self.quorum)
    }

    /// Resolves when the lease is known lost: fewer than a quorum of the masters' holds are
    /// intact (each master's renewal failed, or its lease ran out), or a fixed lease's validity
    /// ended. It never resolves while the lease is intact.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes the leases.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let held = redlock
    ///     .lock("ledger")
    ///     .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(300)))
    ///     .await?;
    /// held.lease_lost().await; // the fixed lease's validity ended
    /// # Ok(()) });
    /// ```
    pub async fn lease_lost(&self) {
        let Some(first) = self.members.first() else {
            return;
        };
        let tolerated = self.losses_tolerated();
        let mut losses: FuturesUnordered<_> =
            self.members.iter().map(LockGuard::lease_lost).collect();
        let valid_until = self.valid_until;
        let runtime = first.holder().backend.runtime;
        let mut expired = pin!(in_context(runtime.timers(), async move {
            match valid_until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => std::future::pending().await,
            }
        }));
        let mut lost = 0;
        loop {
            tokio::select! {
                Some(()) = losses.next() => {
                    lost += 1;
                    if lost > tolerated {
                        return;
                    }
                }
                () = expired.as_mut() => return,
            }
        }
    }

    /// Whether the lease is known lost right now.
    pub fn is_lease_lost(&self) -> bool {
        let lost = self.members.iter().filter(|m| m.is_lease_lost()).count();
        lost > self.losses_tolerated()
            || self
                .valid_until
                .is_some_and(|until| Instant::now() >= until)
    }

    /// How much of the lease is left: until fewer than a quorum of the masters' holds would be
    /// intact, by the local clock with the drift margin taken off (and no later than a fixed
    /// lease's validity).
    pub fn remaining_lease(&self) -> Duration {
        let mut left: Vec<Duration> = self
            .members
            .iter()
            .map(LockGuard::remaining_lease)
            .collect();
        left.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_left = left
            .get(self.quorum.saturating_sub(1))
            .copied()
            .unwrap_or_default();
        match self.valid_until {
            Some(until) => quorum_left.min(until.saturating_duration_since(Instant::now())),
            None => quorum_left,
        }
    }

    /// Runs `future` inside this guard's scope: acquiring the same Redlock lock from within
    /// re-enters it instead of waiting, and [`fencing_token`](crate::fencing_token) returns
    /// this guard's token.
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
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let lock = redlock.lock("ledger");
    /// let held = lock.acquire().await?;
    /// let token = held.fencing_token();
    /// held.scope(async {
    ///     assert_eq!(lock_runtime::fencing_token(), Some(token));
    ///     lock.acquire().await?.unlock().await // re-enters
    /// })
    /// .await?;
    /// held.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        let token = self.token;
        let holders: Vec<_> = self
            .members
            .iter()
            .map(|member| {
                let mut holder = member.holder();
                holder.token = token;
                holder
            })
            .collect();
        scope::enter_all(holders, future)
    }

    /// Releases the lock on every master that holds it, all at once, and waits for them to
    /// confirm.
    ///
    /// # Errors
    ///
    /// Ok once a quorum of the masters confirmed the release; a minority's failures are only
    /// logged (at debug). Otherwise [`LockError::NotHeld`] if fewer than a quorum still held the
    /// lock (the lease was lost), or [`LockError::NoQuorum`] if masters that did not answer kept
    /// the release from a quorum (their holds free themselves when their leases run out).
    ///
    /// # Cancel safety
    ///
    /// A release once started finishes in the background if the future is dropped (wait for it
    /// with [`Redlock::flush`](crate::Redlock::flush)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_masters(3, |urls| async move {
    /// # let mut clients = Vec::new();
    /// # for url in &urls {
    /// #     clients.push(lock_runtime::LockClient::connect(url).await?);
    /// # }
    /// let redlock = lock_runtime::Redlock::new(clients)?;
    /// let held = redlock.lock("ledger").acquire().await?;
    /// held.unlock().await?; // released on every master, and a quorum confirmed it
    /// assert!(!redlock.lock("ledger").is_locked().await?);
    /// # Ok(()) });
    /// ```
    pub async fn unlock(self) -> Result<(), LockError> {
        let Self {
            name,
            members,
            quorum,
            holding,
            ..
        } = self;
        if let Some(holding) = holding {
            holding.end();
        }
        let held = members.len();
        let mut confirmed = 0;
        let mut not_held = 0;
        let mut unreachable = Vec::new();
        for (_, outcome) in released(members).await {
            match outcome {
                Ok(()) => confirmed += 1,
                Err(err) => {
                    tracing::debug!(lock = %name, error = %err, "a Redlock master did not confirm the release");
                    if err.is_not_held() {
                        not_held += 1;
                    } else {
                        unreachable.push(err);
                    }
                }
            }
        }
        if confirmed >= quorum {
            Ok(())
        } else if not_held > held - quorum {
            // Fewer than a quorum still held it: the lease was lost.
            Err(LockError::NotHeld {
                name: name.to_string(),
            })
        } else {
            Err(LockError::NoQuorum {
                name: name.to_string(),
                answered: confirmed + not_held,
                quorum,
                failed: unreachable,
            })
        }
    }
}
