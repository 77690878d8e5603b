//! Deadlines on requests to Redis: a bound on every wait for an answer.
//!
//! The plain way is a Tokio timer per request. But a request is polled inside the background
//! runtime's context (see `in_context`), so its timer belongs to that runtime, and Tokio wakes a
//! runtime's thread whenever a timer registered from another thread is due before everything it
//! already waits for: on a quiet client, that is every request. Measured with a client issuing
//! one request at a time, the timer cost one more wake-up and `epoll_wait` of the background
//! thread per request, and about 9 µs of latency.
//!
//! So the bounds are entries in one table instead, and one task of the background runtime
//! sweeps it every [`TICK`] while it holds entries (and for a while after), waking the requests
//! whose time is up: a bound fires at most a tick late. Entering a bound takes a lock and never
//! wakes a thread, except the sweeper's first after it went idle.

use std::{
    future::Future,
    pin::Pin,
    sync::{Mutex, MutexGuard, OnceLock},
    task::{Context, Poll, Waker},
    time::Duration,
};

use once_cell::sync::Lazy;
use tokio::{sync::Notify, time::Instant};

use crate::transport::{
    background,
    sync::{IdMap, lock_ignoring_poison, shrink_when_sparse},
};

/// How often the sweeper looks for bounds whose time is up: how late a bound may fire.
const TICK: Duration = Duration::from_millis(10);

/// How many ticks the sweeper goes on after the table empties before it waits to be woken: a
/// client sending one request after the other keeps it ticking, so entering a bound never wakes
/// it.
const IDLE_TICKS: u32 = 100;

/// `request`, or a timed-out error if it gets no answer within `limit`, counted from its first
/// poll that finds it pending; a `limit` too large for `Instant` bounds nothing.
///
/// Not an `async fn`: one would keep `request` twice in its state, and every request in flight
/// (each waiting task's tries among them) carries that state.
pub(crate) fn within<T>(
    limit: Duration,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> impl Future<Output = redis::RedisResult<T>> {
    Within {
        request,
        limit,
        bound: None,
    }
}

/// The error of a request that got no answer within `after`.
pub(crate) fn timed_out(after: Duration) -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    )
    .into()
}

pin_project_lite::pin_project! {
    /// See [`within`].
    struct Within<F> {
        #[pin]
        request: F,
        limit: Duration,
        bound: Option<Bound>,
    }
}

impl<F, T> Future for Within<F>
where
    F: Future<Output = redis::RedisResult<T>>,
{
    type Output = redis::RedisResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(reply) = this.request.poll(cx) {
            *this.bound = None;
            return Poll::Ready(reply);
        }
        match this.bound {
            // A request whose budget is spent (a resend at the end of its time) gets no tick.
            None if this.limit.is_zero() => return Poll::Ready(Err(timed_out(*this.limit))),
            // A limit past the end of `Instant` (`Duration::MAX`: no limit) bounds nothing.
            None => {
                *this.bound = Instant::now()
                    .checked_add(*this.limit)
                    .map(|at| TABLE.enter(at, cx.waker()));
            }
            Some(bound) if Instant::now() >= bound.at => {
                *this.bound = None;
                return Poll::Ready(Err(timed_out(*this.limit)));
            }
            Some(bound) => TABLE.rewake(bound.id, cx.waker()),
        }
        Poll::Pending
    }
}

/// The bounds in force, and the sweeper that wakes them.
static TABLE: Lazy<Table> = Lazy::new(Table::default);

#[derive(Default)]
struct Table {
    entries: Mutex<Entries>,
    /// Wakes the sweeper once it went idle.
    idle: Notify,
    /// Set once the sweeper is spawned.
    sweeper: OnceLock<()>,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    bounds: IdMap<(Instant, Waker)>,
}

/// A bound in the table, taken out when dropped.
struct Bound {
    id: u64,
    at: Instant,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let mut entries = TABLE.entries();
        entries.bounds.remove(&self.id);
        shrink_when_sparse(&mut entries.bounds);
    }
}

impl Table {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        lock_ignoring_poison(&self.entries)
    }

    /// Enters a bound ending `at`, whose request `waker` wakes.
    fn enter(&'static self, at: Instant, waker: &Waker) -> Bound {
        self.sweeper.get_or_init(|| self.start_sweeper());
        let mut entries = self.entries();
        let id = entries.next_id;
        entries.next_id += 1;
        let was_empty = entries.bounds.is_empty();
        entries.bounds.insert(id, (at, waker.clone()));
        drop(entries);
        if was_empty {
            // Stores a permit if the sweeper is still ticking: it then looks once more.
            self.idle.notify_one();
        }
        Bound { id, at }
    }

    /// The request of bound `id` is now woken by `waker`.
    fn rewake(&self, id: u64, waker: &Waker) {
        if let Some((_, known)) = self.entries().bounds.get_mut(&id)
            && !known.will_wake(waker)
        {
            known.clone_from(waker);
        }
    }

    /// Spawns the sweeper on the background runtime, which every request's client has already
    /// started (a client cannot connect without it); should it fail to start here anyway, it is
    /// retried by nobody, and the failure was the client's to report.
    fn start_sweeper(&'static self) {
        match background::library() {
            Ok(runtime) => {
                runtime.handle().spawn(self.sweep());
            }
            Err(err) => tracing::error!(error = %err, "no sweeper for request deadlines"),
        }
    }

    async fn sweep(&'static self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_ticks = 0;
        loop {
            tick.tick().await;
            let now = Instant::now();
            let (due, empty): (Vec<Waker>, bool) = {
                let entries = self.entries();
                let due = entries
                    .bounds
                    .values()
                    .filter(|(at, _)| *at <= now)
                    .map(|(_, waker)| waker.clone())
                    .collect();
                (due, entries.bounds.is_empty())
            };
            due.into_iter().for_each(Waker::wake);
            idle_ticks = if empty { idle_ticks + 1 } else { 0 };
            if idle_ticks >= IDLE_TICKS {
                self.idle.notified().await;
                idle_ticks = 0;
                tick.reset();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that never gets an answer, bounded by `limit`.
    fn never_answered(limit: Duration) -> Pin<Box<impl Future<Output = redis::RedisResult<()>>>> {
        Box::pin(within(limit, std::future::pending()))
    }

    /// `request` bounded by 5 s, as [`within`] bounds it, with its bound in view.
    fn within_5s<F>(request: F) -> Pin<Box<Within<F>>> {
        Box::pin(Within {
            request,
            limit: Duration::from_secs(5),
            bound: None,
        })
    }

    /// Made outside any runtime, as a client's connect is, and polled by a runtime without
    /// timers: the bound needs neither.
    #[test]
    fn a_request_without_an_answer_times_out_whatever_runtime_polls_it() {
        let request = never_answered(Duration::from_millis(30));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let started = std::time::Instant::now();
        let err = runtime.block_on(request).expect_err("no answer");
        assert!(err.is_timeout(), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(30) && took < Duration::from_millis(30) + 20 * TICK,
            "{took:?}"
        );
    }

    #[test]
    fn a_spent_budget_times_out_at_once() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut spent = never_answered(Duration::ZERO);
        match spent.as_mut().poll(&mut cx) {
            Poll::Ready(Err(err)) => assert!(err.is_timeout(), "{err}"),
            other => panic!("timed out at once, not {other:?}"),
        }
    }

    #[test]
    fn no_limit_bounds_nothing() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut unbounded = never_answered(Duration::MAX);
        for _ in 0..2 {
            assert!(unbounded.as_mut().poll(&mut cx).is_pending());
        }
    }

    #[test]
    fn an_answer_or_a_dropped_request_leaves_no_bound_behind() {
        let mut cx = Context::from_waker(Waker::noop());
        let (answer, pending) = (
            tokio::sync::oneshot::channel::<redis::RedisResult<u8>>(),
            std::future::pending::<redis::RedisResult<u8>>(),
        );
        let (send, receive) = answer;
        let mut answered = within_5s(async move { receive.await.expect("sent") });
        let mut dropped = within_5s(pending);
        assert!(answered.as_mut().poll(&mut cx).is_pending());
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        let ids = [answered.bound.as_ref(), dropped.bound.as_ref()]
            .map(|bound| bound.expect("entered once pending").id);
        assert!(ids.iter().all(|id| TABLE.entries().bounds.contains_key(id)));

        send.send(Ok(7)).expect("receiver alive");
        assert!(matches!(
            answered.as_mut().poll(&mut cx),
            Poll::Ready(Ok(7))
        ));
        drop(dropped);
        assert!(
            ids.iter()
                .all(|id| !TABLE.entries().bounds.contains_key(id))
        );
    }
}
