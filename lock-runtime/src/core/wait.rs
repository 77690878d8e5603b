//! The wait engine: how any primitive waits for a resource another owner holds.
//!
//! A primitive supplies an [`Attempt`]: one try at taking the resource, answering
//! [`Outcome::Done`] or [`Outcome::Busy`] with the holder's remaining TTL. [`wait`] does the rest,
//! the same way for every primitive:
//!
//! - It subscribes to the resource's channel only once the resource is found taken, so an
//!   uncontended acquisition is a single round trip. (If other local tasks already wait on the
//!   channel, it joins their confirmed subscription before the first try: that costs nothing.)
//! - It registers for wake-ups *before* each try, so a wake-up sent during the try is kept
//!   (tokio's `Notify::enable`).
//! - It tries once more as soon as the subscription is confirmed: a release published between the
//!   failed try and the subscription would otherwise go unseen (Redisson issue 1763).
//! - It sleeps at most the holder's remaining TTL (a crashed holder publishes nothing) and never
//!   past the caller's deadline.
//! - A task woken by a message that leaves without using the wake-up (its try failed, its caller
//!   gave up, its deadline passed) passes the wake-up on to another local waiter, so the others
//!   do not sleep to the holder's TTL.
//! - A waiter with an id ([`Attempt::waiter_id`]) is also woken by a message naming it, so a
//!   release that knows its next owner wakes one task across every process. A message that
//!   also grants the resource (a direct hand-over) is taken up by [`Attempt::granted`] without
//!   another try.

use std::{
    future::{Future, poll_fn},
    pin::{Pin, pin},
    sync::Arc,
    task::Poll,
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    core::{
        backend::Backend,
        hub::{Baton, Hub, NamedWaiter, Subscription},
        keys::Keys,
        meter::Won,
    },
    error::LockError,
};

/// What one try found.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Taken: the wait is over.
    Done(T),
    /// Held by another owner, for `ttl` more at most (`None`: no TTL, or unknown).
    Busy { ttl: Option<Duration> },
}

/// One try at taking a resource; see [`wait`].
pub(crate) trait Attempt {
    /// What a successful try yields (a guard).
    type Output;

    /// The id this waiter is known by in Redis, for primitives whose release names the next
    /// owner's waiter (`Wake::Waiter`): while it waits, a message naming it wakes this task
    /// alone. `None` (the default): woken by count only.
    fn waiter_id(&self) -> Option<&Arc<str>> {
        None
    }

    /// Takes up what a release handed this waiter directly (the `grant` of a message naming it,
    /// see [`Wake::Waiter`](crate::core::hub::Wake::Waiter)), without another request. `None`
    /// when the grant cannot be taken up as it stands (it is stale, or the lease it gives would
    /// be spent): the engine then tries, and the try finds out. The default takes nothing.
    fn granted(&mut self, grant: &str) -> Option<Self::Output> {
        let _ = grant;
        None
    }

    /// Who held the resource at the last try that found it busy, in words, if the primitive
    /// knows: for the timeout's message, so it is asked only when the wait runs out. The
    /// default knows nothing.
    fn holder(&self) -> Option<String> {
        None
    }

    /// What is waited for, as the timeout's message names it (`"lock"`, `"semaphore"`, …; see
    /// [`LockError::Timeout`]).
    fn what(&self) -> &'static str;

    /// The client the tries go through, whose hub the wait subscribes with.
    fn backend(&self) -> &Backend;

    /// The keys of the resource: its channel, and its name for messages.
    fn keys(&self) -> &Keys;

    /// Tries once. `deadline` bounds the resends of the request.
    fn attempt(
        &mut self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome<Self::Output>, LockError>> + Send;
}

/// An attempt with the bounds of its wait: what [`wait`] drives. The caller keeps them together
/// (and the attempt names its client and keys), so that the future every waiting task holds
/// refers to them once rather than keeping a copy of each.
pub(crate) struct Waiting<A> {
    pub(crate) attempt: A,
    /// When the caller began, for the timeout's message.
    pub(crate) start: Instant,
    /// When the caller gives up (`None`: never).
    pub(crate) deadline: Option<Instant>,
}

impl<A: Attempt> Waiting<A> {
    /// The hub the wait subscribes with.
    fn hub(&self) -> &Hub {
        &self.attempt.backend().hub
    }

    /// The name of the resource's channel, made only to join it.
    fn channel(&self) -> String {
        self.attempt.keys().channel().to_string()
    }
}

/// Tries `waiting.attempt` until it is done, waiting between tries through the hub, until
/// `waiting.deadline` (`None`: without limit). What it won says whether a release's wake-up led
/// to it (for the hand-off count).
///
/// Every waiting task carries the returned future's state while it sleeps, so it keeps no more
/// than it needs across an `.await`: not an `async fn` (one would keep its argument twice, as
/// argument and as the local it is moved into), one reference to what it waits with, the
/// channel's name made only to join it, and the try boxed, as it is large and short-lived.
///
/// # Errors
///
/// The first error of a try, or [`LockError::Timeout`] once the deadline passed.
#[expect(clippy::manual_async_fn, reason = "an async fn keeps its args twice")]
pub(crate) fn wait<A: Attempt + Send>(
    waiting: &mut Waiting<A>,
) -> impl Future<Output = Result<Won<A::Output>, LockError>> + '_ {
    async move {
        let mut subscription = waiting.hub().join_if_confirmed(|| waiting.channel());
        let mut named = None;
        let mut seen_confirmed = subscription.is_some();
        let mut try_now = true;
        // Set while this task holds a wake-up it has not used yet.
        let mut baton = Baton::default();
        // Whether the coming try follows a release's wake-up (not a timer or a confirmation).
        let mut after_release = false;
        // When to try again without a wake-up: set by each try that finds the resource busy (the
        // holder's TTL, or a renewal interval), so a sleep that follows no try (the
        // subscription's confirmation still to come) keeps the last try's, and the sleeping
        // task keeps no copy of the TTL beside its timer. `None` until a try: no deadline
        // either, as the first try comes before any sleep.
        let mut timer = pin!(None::<tokio::time::Sleep>);
        loop {
            if subscription.is_none() && !try_now {
                let name = &waiting.attempt.keys().name;
                tracing::debug!(lock = %name, "held by another owner; waiting");
                let named = waiting.attempt.waiter_id().is_some();
                subscription = Some(waiting.hub().join(&waiting.channel(), named));
            }
            if named.is_none()
                && let (Some(subscription), Some(id)) = (&subscription, waiting.attempt.waiter_id())
            {
                named = Some(subscription.name(id));
            }
            let mut woken = pin!(subscription.as_ref().map(Subscription::woken));
            if let Some(woken) = woken.as_mut().as_pin_mut() {
                woken.enable();
            }
            if let Some(subscription) = &subscription
                && !seen_confirmed
                && subscription.is_confirmed()
            {
                seen_confirmed = true;
                try_now = true;
                after_release = false;
            }
            if try_now {
                let outcome = Box::pin(waiting.attempt.attempt(waiting.deadline)).await?;
                // The try reached Redis: taken, or another owner holds it (and its release will
                // wake someone). Either way the wake-up served its purpose.
                std::mem::take(&mut baton).used();
                let ttl = match outcome {
                    Outcome::Done(output) => {
                        return Ok(Won {
                            output,
                            handed_off: after_release,
                        });
                    }
                    Outcome::Busy { ttl } => ttl,
                };
                // A lock without TTL is not ours; look again after a renewal interval.
                let recheck = waiting.attempt.backend().config.renew_interval();
                let deadline = waiting.deadline;
                let wake_at = Instant::now()
                    .checked_add(ttl.unwrap_or(recheck))
                    .map(|at| deadline.map_or(at, |deadline| at.min(deadline)))
                    .or(deadline);
                timer.set(wake_at.map(tokio::time::sleep_until));
            }
            if let Some(deadline) = waiting.deadline {
                let now = Instant::now();
                if now >= deadline {
                    let attempt = &waiting.attempt;
                    return Err(LockError::Timeout {
                        name: attempt.keys().name.to_string(),
                        what: attempt.what(),
                        waited: now - waiting.start,
                        holder: attempt.holder(),
                    });
                }
            }
            if woken.is_none() {
                // Subscribe at the top of the loop; its confirmation calls for the next try.
                try_now = false;
                continue;
            }
            // Polled by hand rather than through `select!`, whose futures and bookkeeping every
            // sleeping task would carry: a message naming this waiter first (it may hand over
            // the lock), then one for the channel, then the timer. A named wake-up is kept by
            // the hub, not by its future, so a new one is polled each time.
            let woke = poll_fn(|cx| {
                if let Some(named) = &named
                    && Pin::new(&mut named.woken()).poll(cx).is_ready()
                {
                    return Poll::Ready(Woke::Named);
                }
                if let Some(woken) = woken.as_mut().as_pin_mut()
                    && woken.poll(cx).is_ready()
                {
                    return Poll::Ready(Woke::Channel);
                }
                if let Some(timer) = timer.as_mut().as_pin_mut()
                    && timer.poll(cx).is_ready()
                {
                    return Poll::Ready(Woke::Timer);
                }
                Poll::Pending
            })
            .await;
            after_release = match woke {
                Woke::Named => {
                    let grant = named.as_ref().and_then(NamedWaiter::take_grant);
                    if let Some(output) = grant.and_then(|grant| waiting.attempt.granted(&grant)) {
                        return Ok(Won {
                            output,
                            handed_off: true,
                        });
                    }
                    true
                }
                Woke::Channel => true,
                Woke::Timer => false,
            };
            if after_release && let Some(subscription) = &subscription {
                baton = subscription.baton();
            }
            try_now = true;
        }
    }
}

/// What woke a sleeping waiter.
enum Woke {
    /// A message naming it.
    Named,
    /// A wake-up of its channel: a release, a confirmed subscription, a reconnection.
    Channel,
    /// Its timer: the holder's TTL, a renewal interval, or its deadline.
    Timer,
}

#[cfg(test)]
mod tests {
    //! The engine driven with synthetic attempts against a real Redis (its pub/sub carries the
    //! wake-ups), so each rule can be broken on purpose.

    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    };

    use lock_tests::RedisServer;

    use super::*;
    use crate::{client::LockClient, core::hub::Wake};

    /// What the first try after the resource comes free does.
    #[derive(Clone, Copy)]
    enum Trouble {
        /// Fails: the waiter leaves with an error.
        Fails,
        /// Hangs until its caller gives up (the test aborts that waiter).
        Hangs,
    }

    /// Shared by the waiters of one test.
    struct Script {
        free: AtomicBool,
        trouble_left: AtomicBool,
        tries: AtomicUsize,
        /// Which waiter is hanging, plus one (0: none yet).
        hanging: AtomicUsize,
    }

    /// Tries: `Busy` for a long TTL until the resource is free; then the first try, across all
    /// waiters, runs into the trouble; later tries succeed.
    struct Scripted {
        id: usize,
        backend: Arc<Backend>,
        keys: Arc<Keys>,
        script: Arc<Script>,
        trouble: Trouble,
        /// The waiter id registered with the hub, if any.
        name: Option<Arc<str>>,
    }

    impl Attempt for Scripted {
        type Output = ();

        fn waiter_id(&self) -> Option<&Arc<str>> {
            self.name.as_ref()
        }

        fn what(&self) -> &'static str {
            "lock"
        }

        fn backend(&self) -> &Backend {
            &self.backend
        }

        fn keys(&self) -> &Keys {
            &self.keys
        }

        async fn attempt(&mut self, _: Option<Instant>) -> Result<Outcome<()>, LockError> {
            let script = &self.script;
            script.tries.fetch_add(1, Ordering::SeqCst);
            if !script.free.load(Ordering::SeqCst) {
                return Ok(Outcome::Busy {
                    ttl: Some(Duration::from_secs(30)),
                });
            }
            if script.trouble_left.swap(false, Ordering::SeqCst) {
                if let Trouble::Hangs = self.trouble {
                    script.hanging.store(self.id + 1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                return Err(LockError::misuse("this try fails"));
            }
            Ok(Outcome::Done(()))
        }
    }

    /// Waits until every one of `waiters` tried, subscribed, and (unless it joined a confirmed
    /// subscription) tried again once confirmed: the count of tries stops moving. Returns it.
    async fn settle(script: &Script, waiters: usize) -> usize {
        let mut settled = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let tries = script.tries.load(Ordering::SeqCst);
            if tries >= waiters && tries == settled {
                return tries;
            }
            settled = tries;
        }
    }

    /// Waiters of one resource on a Redis of their own, each in a task of its own.
    struct Waiters {
        server: RedisServer,
        client: LockClient,
        keys: Arc<Keys>,
        script: Arc<Script>,
        tasks: Vec<tokio::task::JoinHandle<Result<Won<()>, LockError>>>,
    }

    impl Waiters {
        /// `count` waiters of the resource `name`, which is busy until the test frees it. The
        /// first try after that runs into `trouble`, if any; each waiter registers with the hub
        /// under `<client id>:w<index>` if `named`.
        async fn start(name: &str, count: usize, trouble: Option<Trouble>, named: bool) -> Self {
            let server = RedisServer::start();
            let client = LockClient::connect(&server.url()).await.expect("connect");
            let backend = Arc::clone(&client.backend);
            let keys = Arc::new(backend.keys(&Arc::from(name)).expect("keys"));
            let script = Arc::new(Script {
                free: AtomicBool::new(false),
                trouble_left: AtomicBool::new(trouble.is_some()),
                tries: AtomicUsize::new(0),
                hanging: AtomicUsize::new(0),
            });
            let tasks = (0..count)
                .map(|id| {
                    let mut waiting = Waiting {
                        attempt: Scripted {
                            id,
                            backend: Arc::clone(&backend),
                            keys: Arc::clone(&keys),
                            script: Arc::clone(&script),
                            trouble: trouble.unwrap_or(Trouble::Fails),
                            name: named.then(|| format!("{}:w{id}", client.id()).into()),
                        },
                        start: Instant::now(),
                        deadline: None,
                    };
                    tokio::spawn(async move { wait(&mut waiting).await })
                })
                .collect();
            Self {
                server,
                client,
                keys,
                script,
                tasks,
            }
        }

        /// Frees the resource, and publishes `wake` on its channel.
        fn free(&self, wake: &Wake) {
            self.script.free.store(true, Ordering::SeqCst);
            let _: i64 =
                self.server
                    .cmd(&["PUBLISH", &self.keys.channel().to_string(), &wake.message()]);
        }
    }

    /// Two waiters sleep on a resource whose holder's TTL is 30 s; one release message wakes
    /// one of them, whose try runs into `trouble`. The other must be served at once: without the
    /// pass-on it would sleep out the TTL.
    async fn the_other_waiter_is_served(trouble: Trouble) {
        let mut waiters = Waiters::start("wake-pass", 2, Some(trouble), false).await;
        let script = &waiters.script;
        settle(script, 2).await;
        let released = Instant::now();
        waiters.free(&Wake::One);
        if let Trouble::Hangs = trouble {
            while script.hanging.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let hanging = waiters
                .tasks
                .remove(script.hanging.load(Ordering::SeqCst) - 1);
            hanging.abort();
        }
        let mut served = false;
        for waiter in waiters.tasks {
            let outcome = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("every waiter finishes")
                .expect("join");
            served |= outcome.is_ok();
        }
        assert!(served, "the other waiter got the resource");
        assert!(
            released.elapsed() < Duration::from_secs(2),
            "served {:?} after the release",
            released.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_woken_waiter_whose_try_fails_passes_the_wake_up_on() {
        the_other_waiter_is_served(Trouble::Fails).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_woken_waiter_cancelled_in_its_try_passes_the_wake_up_on() {
        the_other_waiter_is_served(Trouble::Hangs).await;
    }

    /// Three waiters registered under names sleep on a resource whose holder's TTL is 30 s; a
    /// message naming the second wakes it alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_naming_a_waiter_wakes_that_waiter_alone() {
        let mut waiters = Waiters::start("named", 3, None, true).await;
        let settled = settle(&waiters.script, 3).await;
        waiters.free(&Wake::Waiter {
            id: format!("{}:w1", waiters.client.id()),
            grant: None,
        });

        let second = waiters.tasks.remove(1);
        tokio::time::timeout(Duration::from_secs(2), second)
            .await
            .expect("the named waiter is woken at once")
            .expect("join")
            .expect("it takes the resource");
        tokio::time::sleep(Duration::from_millis(300)).await;
        for other in &waiters.tasks {
            assert!(
                !other.is_finished(),
                "a waiter the message did not name woke"
            );
        }
        assert_eq!(
            waiters.script.tries.load(Ordering::SeqCst),
            settled + 1,
            "one try after the message"
        );
    }
}
