//! Deadlines on requests to Redis: a bound on every wait for an answer.

use std::{future::Future, time::Duration};

use futures_util::{FutureExt, future};

/// `request`, or a timed-out error if it gets no answer within `limit`.
///
/// Not an `async fn`: one would keep `request` twice in its state, once as its argument and
/// once inside the timeout it awaits, and every request in flight (each waiting task's tries
/// among them) carries that state: about 2 KiB more per script call. Still lazy, as an
/// `async fn` is: the timeout is made when the future is first polled, so its timer belongs to
/// the runtime whose context polls it (the library's own, see `in_context`), not to the one
/// that made the future, which may have no timers at all.
pub(crate) fn within<T>(
    limit: Duration,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> impl Future<Output = redis::RedisResult<T>> {
    future::lazy(move |_| tokio::time::timeout(limit, request))
        .flatten()
        .map(move |reply| reply.unwrap_or_else(|_| Err(timed_out(limit))))
}

/// The error of a request that got no answer within `after`.
pub(crate) fn timed_out(after: Duration) -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made outside any runtime, as a client's connect is (then polled in the library's
    /// runtime): nothing about the bound may need a runtime before the first poll.
    #[test]
    fn the_bound_starts_at_the_first_poll_in_the_runtime_that_polls_it() {
        let request = within(
            Duration::from_millis(10),
            std::future::pending::<redis::RedisResult<()>>(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let err = runtime.block_on(request).expect_err("no answer");
        assert!(err.is_timeout(), "{err}");
    }
}
