//! Deadlines on requests to Redis: a bound on every wait for an answer.

use std::{future::Future, time::Duration};

/// `request`, or a timed-out error if it gets no answer within `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| Err(timed_out(limit)))
}

/// The error of a request that got no answer within `after`.
pub(crate) fn timed_out(after: Duration) -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    )
    .into()
}
