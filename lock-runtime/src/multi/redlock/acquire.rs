//! How a [`Redlock`](super::Redlock) acquires: rounds over every master, and waiting between
//! them through each master's hub.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures_util::{
    StreamExt,
    future::{join_all, select_all},
    stream::FuturesUnordered,
};
use tokio::{sync::futures::Notified, time::Instant};

use super::{
    RedlockGuard, Settings,
    contender::{Contender, raise_fence},
    node_deadline,
};
use crate::{
    client::LockClient,
    core::{
        hub::{Baton, NamedWaiter, Subscription},
        keys::Keys,
        lease::{check_lease, deadline_after, valid_until, validity},
        meter::{Meter, Won},
        scope::{self, HoldKind},
        wait::Outcome,
    },
    error::LockError,
    family::guard::LockGuard,
    multi::release_all,
    transport::deadline::timed_out,
};

/// Acquires the lock `name` on a quorum of `settings`' masters within `wait`, re-entering it if
/// the current scope holds it.
pub(super) async fn acquire(
    settings: &Settings,
    (name, meter): (&Arc<str>, &Meter),
    wait: Duration,
    lease: Option<Duration>,
) -> Result<RedlockGuard, LockError> {
    let start = Instant::now();
    let lease = lease
        .map(|lease| check_lease(name, "lease", lease))
        .transpose()?;
    let deadline = deadline_after(start, wait);
    let mut reentering = Vec::new();
    let mut masters = Vec::with_capacity(settings.clients.len());
    for client in &settings.clients {
        let keys = Contender::keys(&client.backend, name)?;
        if scope::find(client.id(), &keys.main, HoldKind::Reentrant).is_some() {
            reentering.push(client);
        }
        masters.push(Master::new(client, keys, settings.node_timeout));
    }
    if reentering.len() >= settings.quorum {
        return reenter(settings, name, &reentering, start, wait, lease).await;
    }
    if !reentering.is_empty() {
        // A guard of this Redlock holds at least a quorum: this is a plain lock of the name.
        return Err(LockError::misuse(format!(
            "the current scope holds lock `{name}` through {} of the Redlock's clients, not a \
             quorum: a plain lock of that name is held here, and a Redlock re-enters only its \
             own guards",
            reentering.len()
        )));
    }
    let taking = take(settings, name, &mut masters, (start, deadline), lease);
    let guard = meter.clone().measure(taking).await?;
    Ok(guard.measured(meter))
}

/// Takes the lock `name` fresh on a quorum of `masters`, in rounds until `deadline`; `start` is
/// when the caller began.
async fn take(
    settings: &Settings,
    name: &Arc<str>,
    masters: &mut [Master<'_>],
    (start, deadline): (Instant, Option<Instant>),
    lease: Option<Duration>,
) -> Result<Won<RedlockGuard>, LockError> {
    // A wake-up taken from a master's channel by count: passed on to another local waiter of
    // that channel unless the next round's try there reaches Redis (it took the lock, or found
    // it held, and then its holder's release wakes someone), as the wait engine does.
    let mut baton: Option<(usize, Baton)> = None;
    loop {
        let missed = match round(settings, masters, lease).await {
            Ok(guard) => {
                let handed_off = baton.take().is_some_and(|(_, baton)| {
                    baton.used();
                    true
                });
                return Ok(Won {
                    output: guard,
                    handed_off,
                });
            }
            Err(missed) => missed,
        };
        if let Some((index, used)) = baton.take()
            && missed.answered.contains(&index)
        {
            used.used();
        }
        let now = Instant::now();
        // Masters whose key is not a lock stay so: once too many for a quorum, stop.
        let wrong_types = missed
            .failed
            .iter()
            .filter(|err| matches!(err, LockError::WrongType { .. }))
            .count();
        let hopeless = wrong_types > masters.len() - settings.quorum;
        if hopeless || deadline.is_some_and(|deadline| now >= deadline) {
            return Err(missed.into_error(settings, name, masters, start));
        }
        // No master holds the lock (they failed): look again after a pause, never at once.
        let mut until = masters
            .iter()
            .filter_map(Master::next_try)
            .min()
            .unwrap_or_else(|| now + random_delay(settings.retry_delay).max(MIN_PAUSE));
        if let Some(deadline) = deadline {
            until = until.min(deadline);
        }
        baton = wait_for_release(masters, until).await;
        if !missed.taken.is_empty() {
            // Two callers split the masters: try again apart.
            let delay = Instant::now() + random_delay(settings.retry_delay);
            tokio::time::sleep_until(deadline.map_or(delay, |deadline| delay.min(deadline))).await;
        }
    }
}

/// A delay drawn uniformly below `most`.
fn random_delay(most: Duration) -> Duration {
    most.mul_f64(fastrand::f64())
}

/// The least a master still to answer is waited for once a quorum took the lock.
const MIN_GRACE: Duration = Duration::from_millis(2);

/// The least pause between rounds while no master holds the lock (they failed), so failures
/// that come back at once do not spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// What a round that missed the quorum saw.
struct Missed {
    /// The masters it took, by index (given back since).
    taken: Vec<usize>,
    /// The masters that answered (took it or found it held), by index.
    answered: Vec<usize>,
    /// The errors of the masters that did not.
    failed: Vec<LockError>,
}

impl Missed {
    /// The error of an acquisition whose wait ran out after this round: no quorum answered, or
    /// the lock stayed held.
    fn into_error(
        mut self,
        settings: &Settings,
        name: &str,
        masters: &[Master<'_>],
        start: Instant,
    ) -> LockError {
        if self.answered.len() < settings.quorum {
            // Masters whose key is not a lock: say so rather than that they did not answer.
            if let Some(index) = self
                .failed
                .iter()
                .position(|err| matches!(err, LockError::WrongType { .. }))
            {
                return self.failed.swap_remove(index);
            }
            return LockError::NoQuorum {
                name: name.to_owned(),
                answered: self.answered.len(),
                quorum: settings.quorum,
                failed: self.failed,
            };
        }
        LockError::Timeout {
            name: name.to_owned(),
            what: "Redlock",
            waited: start.elapsed(),
            holder: masters
                .iter()
                .find_map(|master| master.contender.as_ref()?.holder()),
        }
    }
}

/// One round: every master asked at once. The guard if a quorum took the lock with validity
/// left and its fencing states raised; otherwise what was taken is given back.
async fn round(
    settings: &Settings,
    masters: &mut [Master<'_>],
    lease: Option<Duration>,
) -> Result<RedlockGuard, Missed> {
    let start = Instant::now();
    let answer_by = node_deadline(settings, start);
    let mut tries: FuturesUnordered<_> = masters
        .iter_mut()
        .enumerate()
        .map(|(index, master)| async move { (index, master.try_once(lease, answer_by).await) })
        .collect();
    let mut taken = Vec::new();
    let mut guards = Vec::new();
    let mut failed = Vec::new();
    let mut answered = Vec::new();
    // Once the quorum is reached, the masters still to answer get as long again as the quorum
    // took: a healthy one answers within it, and one that is down or slow is not waited for
    // (its request is undone in the background).
    let mut answer_by = answer_by;
    loop {
        let next = tokio::time::timeout_at(answer_by, tries.next());
        let Ok(Some((index, tried))) = next.await else {
            break;
        };
        match tried {
            Ok(Some(guard)) => {
                answered.push(index);
                taken.push(index);
                guards.push(guard);
            }
            Ok(None) => answered.push(index),
            Err(err) => failed.push(err),
        }
        if guards.len() + tries.len() < settings.quorum {
            // The quorum is out of reach this round.
            break;
        }
        if guards.len() == settings.quorum {
            let grace = start.elapsed().max(MIN_GRACE);
            answer_by = answer_by.min(Instant::now() + grace);
        }
    }
    drop(tries);
    if guards.len() >= settings.quorum {
        // The lease each master was asked for: the fixed one, or the shortest watchdog lease.
        let lease_time = lease.unwrap_or_else(|| {
            let watchdog = masters
                .iter()
                .map(|m| m.client.backend.config.watchdog_timeout);
            watchdog.min().unwrap_or_default()
        });
        match fence(settings, guards, start, lease_time, lease.is_some()).await {
            Ok(guard) => return Ok(guard),
            Err(given_back) => guards = given_back,
        }
    }
    give_back(settings, guards).await;
    Err(Missed {
        taken,
        answered,
        failed,
    })
}

/// Makes the guard of a round that took a quorum (`guards`), begun at `start`, if the validity
/// of `lease_time` is left once the quorum's fencing states are raised to its token; otherwise
/// hands the guards back.
async fn fence(
    settings: &Settings,
    guards: Vec<LockGuard>,
    start: Instant,
    lease_time: Duration,
    fixed: bool,
) -> Result<RedlockGuard, Vec<LockGuard>> {
    if validity(lease_time, start.elapsed()).is_none() {
        return Err(guards);
    }
    let Some(token) = guards.iter().map(LockGuard::fencing_token).max() else {
        return Err(guards);
    };
    let answer_by = node_deadline(settings, Instant::now());
    let raising = guards.iter().map(|guard| async move {
        // A master that handed out the token itself is there already.
        if guard.fencing_token() == token {
            return true;
        }
        // Named by the raised token from before the raise goes out: a raise that lands unseen
        // leaves the state at it (a release naming a token the state never reached only
        // answers a resend more cautiously, see `released_before` in the family's scripts).
        guard.fence_raised(token);
        let raised = tokio::time::timeout_at(answer_by, raise_fence(guard, token, Some(answer_by)));
        matches!(raised.await, Ok(Ok(true)))
    });
    let raised = join_all(raising).await.into_iter().filter(|r| *r).count();
    if raised < settings.quorum || validity(lease_time, start.elapsed()).is_none() {
        return Err(guards);
    }
    let name = Arc::from(guards[0].name());
    Ok(RedlockGuard::new(
        name,
        guards,
        settings.quorum,
        token,
        fixed.then(|| valid_until(start, lease_time)),
    ))
}

/// Gives back what a round took, waiting at most a node timeout (the releases finish in the
/// background).
async fn give_back(settings: &Settings, guards: Vec<LockGuard>) {
    if !guards.is_empty() {
        let _ = tokio::time::timeout(settings.node_timeout, release_all(guards)).await;
    }
}

/// Re-enters the lock on the masters the current scope holds it on (`reentering`), through the
/// reentrant lock of each: the outer guard's token, if a quorum re-entered.
async fn reenter(
    settings: &Settings,
    name: &Arc<str>,
    reentering: &[&LockClient],
    start: Instant,
    wait: Duration,
    lease: Option<Duration>,
) -> Result<RedlockGuard, LockError> {
    let entries = reentering
        .iter()
        .map(|client| async move { client.lock(name.as_ref()).try_acquire(wait, lease).await });
    let mut guards = Vec::new();
    let mut last_err = None;
    for entry in join_all(entries).await {
        match entry {
            Ok(guard) => guards.push(guard),
            Err(err) => last_err = Some(err),
        }
    }
    if guards.len() >= settings.quorum {
        // The scope's holds carry the outer guard's token.
        let token = guards[0].fencing_token();
        return Ok(RedlockGuard::new(
            Arc::clone(name),
            guards,
            settings.quorum,
            token,
            lease.map(|lease| valid_until(start, lease)),
        ));
    }
    give_back(settings, guards).await;
    Err(match last_err {
        Some(err) if err.is_timeout() => err,
        _ => LockError::LeaseLost {
            name: name.to_string(),
        },
    })
}

/// One master, as one acquisition sees it across rounds.
struct Master<'a> {
    client: &'a LockClient,
    /// The lock's keys on this master.
    keys: Arc<Keys>,
    /// How long it has to answer one request.
    node_timeout: Duration,
    /// Queued there since a round found the lock busy on it; `None` when it is not.
    contender: Option<Contender>,
    /// When the contender must try again at the latest (the holder's TTL, or its liveness).
    retry_at: Option<Instant>,
    /// Its client's hub, listening for a release that names the contender.
    watch: Option<Watch>,
}

impl<'a> Master<'a> {
    fn new(client: &'a LockClient, keys: Arc<Keys>, node_timeout: Duration) -> Self {
        Self {
            client,
            keys,
            node_timeout,
            contender: None,
            retry_at: None,
            watch: None,
        }
    }

    /// Asks this master once: `Some(guard)` if it took the lock, `None` if it is held there
    /// (the contender stays queued), or why it did not answer by `answer_by`.
    async fn try_once(
        &mut self,
        lease: Option<Duration>,
        answer_by: Instant,
    ) -> Result<Option<LockGuard>, LockError> {
        self.retry_at = None;
        let mut contender = match self.contender.take() {
            Some(contender) => contender,
            None => Contender::new(&self.client.backend, &self.keys, lease),
        };
        let tried = tokio::time::timeout_at(answer_by, contender.try_once(Some(answer_by))).await;
        // Dropped when it took the lock (spent) or failed (its request may linger: undone).
        match tried {
            Ok(Ok(Outcome::Done(guard))) => Ok(Some(guard)),
            Ok(Ok(Outcome::Busy { ttl })) => {
                let config = &self.client.backend.config;
                let ttl = ttl.unwrap_or_else(|| config.renew_interval());
                self.retry_at = Instant::now().checked_add(ttl);
                self.contender = Some(contender);
                Ok(None)
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(LockError::redis(
                format!("acquiring lock `{}` on a Redlock master", self.keys.name),
                timed_out(self.node_timeout),
            )),
        }
    }

    /// When it must be tried again at the latest, if the lock is held there.
    fn next_try(&self) -> Option<Instant> {
        self.contender.as_ref().and(self.retry_at)
    }

    /// Listens on this master's hub for a release naming its contender, if it has one.
    fn watch(&mut self) -> Option<&Watch> {
        let Some(contender) = &self.contender else {
            self.watch = None;
            return None;
        };
        let id = contender.id();
        match &mut self.watch {
            Some(watch) if watch.channel == contender.channel() => {
                if watch.id != *id {
                    watch.named = watch.subscription.name(id);
                    watch.id = Arc::clone(id);
                }
            }
            _ => {
                let channel = contender.channel();
                let subscription = self.client.backend.hub.join(&channel, true);
                self.watch = Some(Watch {
                    named: subscription.name(id),
                    id: Arc::clone(id),
                    seen_confirmed: subscription.is_confirmed(),
                    subscription,
                    channel,
                });
            }
        }
        self.watch.as_ref()
    }
}

/// One master's hub, listening for a release of the lock there.
struct Watch {
    /// Membership of the lock's channel.
    subscription: Subscription,
    /// The contender's registration under its id (the field order drops it first).
    named: NamedWaiter,
    id: Arc<str>,
    channel: String,
    /// Whether the subscription was confirmed when last looked at.
    seen_confirmed: bool,
}

/// Waits until a master's release names this acquisition (or wakes its channel), a master's
/// subscription is newly confirmed (a release published before it went unseen: try now), or
/// `until`. A wake-up taken by count is returned, with its master's index, to be passed on
/// unless used.
async fn wait_for_release(masters: &mut [Master<'_>], until: Instant) -> Option<(usize, Baton)> {
    let watches: Vec<(usize, &Watch)> = masters
        .iter_mut()
        .enumerate()
        .filter_map(|(index, master)| Some((index, master.watch()?)))
        .collect();
    // Registered before the confirmations are read, so one that lands in between still wakes.
    let mut counted: Vec<Pin<Box<Notified<'_>>>> = watches
        .iter()
        .map(|(_, watch)| Box::pin(watch.subscription.woken()))
        .collect();
    for woken in &mut counted {
        woken.as_mut().enable();
    }
    let mut newly_confirmed = false;
    for (_, watch) in &watches {
        newly_confirmed |= !watch.seen_confirmed && watch.subscription.is_confirmed();
    }
    let woken = if newly_confirmed {
        drop(counted);
        None
    } else {
        let by_count = first_of(counted);
        let by_name = first_of(
            watches
                .iter()
                .map(|(_, watch)| Box::pin(watch.named.woken()))
                .collect(),
        );
        tokio::select! {
            index = by_count => Some(index),
            _ = by_name => None,
            () = tokio::time::sleep_until(until) => None,
        }
    };
    let baton = woken.map(|index| (watches[index].0, watches[index].1.subscription.baton()));
    drop(watches);
    // Whichever way the wait ended, a confirmation seen now is not news to the next one.
    for master in masters.iter_mut() {
        if let Some(watch) = &mut master.watch {
            watch.seen_confirmed = watch.subscription.is_confirmed();
        }
    }
    baton
}

/// The index of the first of `futures` to complete; never completes if there are none.
async fn first_of<F: Future + Unpin>(futures: Vec<F>) -> usize {
    if futures.is_empty() {
        return std::future::pending().await;
    }
    let (_, index, _) = select_all(futures).await;
    index
}
