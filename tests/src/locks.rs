//! Assertions and helpers about `lock-runtime` locks, shared by the integration tests.

use std::{future::Future, time::Duration};

use lock_runtime::{LockClient, LockError};

use crate::RedisServer;

/// The Redis key of the lock `name` under the default key prefix `lock`.
pub fn lock_key(name: &str) -> String {
    format!("{{lock:{name}}}")
}

/// A client of `server` with a short watchdog timeout, so lease tests run in seconds.
///
/// # Panics
///
/// When the client cannot connect.
pub async fn client_with_watchdog(server: &RedisServer, watchdog: Duration) -> LockClient {
    LockClient::builder()
        .url(server.url())
        .watchdog_timeout(watchdog)
        .build()
        .await
        .unwrap_or_else(|err| panic!("connecting to {}: {err}", server.url()))
}

/// Panics unless the lock `name` is released and nothing of it lingers: the lock key is gone,
/// and every other key of the lock (its fencing state, request memos, abandoned marks) carries a
/// TTL.
pub fn assert_released(server: &RedisServer, name: &str) {
    let lock_key = lock_key(name);
    let held: i64 = server.cmd(&["EXISTS", &lock_key]);
    assert_eq!(held, 0, "lock key {lock_key} is still held");
    for key in server.keys(&format!("{lock_key}*")) {
        let ttl: i64 = server.cmd(&["PTTL", &key]);
        assert!(ttl > 0, "key {key} of lock {name} has no TTL (pttl {ttl})");
    }
}

/// Polls `condition` every 10 ms until it holds, for at most `limit`; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `body` with the URL of a fresh `redis-server` on a multi-threaded Tokio runtime, and
/// panics if it fails. For documentation examples that run against a real Redis.
///
/// # Panics
///
/// When `body` returns an error, or the runtime cannot be built.
pub fn run_with_redis<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), LockError>>,
{
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
    if let Err(err) = runtime.block_on(body(server.url())) {
        panic!("example failed: {err}");
    }
}

/// Sums the calls of the given commands in `INFO commandstats`.
pub fn command_calls(server: &RedisServer, commands: &[&str]) -> u64 {
    crate::command_stats(&server.info("commandstats"), "calls")
        .iter()
        .filter(|(name, _)| commands.contains(&name.as_str()))
        .map(|(_, calls)| calls)
        .sum()
}

/// The channel on which the release of lock `name` is announced (default key prefix).
pub fn unlock_channel(name: &str) -> String {
    format!("{}:unlock", lock_key(name))
}

/// Spawns `count` tasks that each wait up to `wait` for the lock `name`, then release it.
pub fn spawn_waiters(
    client: &LockClient,
    name: &str,
    count: usize,
    wait: Duration,
) -> Vec<tokio::task::JoinHandle<Result<(), LockError>>> {
    (0..count)
        .map(|_| {
            let lock = client.lock(name);
            tokio::spawn(async move { lock.try_acquire(wait, None).await?.unlock().await })
        })
        .collect()
}

/// Waits until Redis counts exactly one subscriber on the unlock channel of lock `name`: the
/// waiters of one client share one subscription.
///
/// # Panics
///
/// If that does not happen within 5 seconds.
pub async fn await_one_subscription(server: &RedisServer, name: &str) {
    let channel = unlock_channel(name);
    let subscribed = || {
        server
            .try_cmd::<(String, i64)>(&["PUBSUB", "NUMSUB", &channel])
            .is_ok_and(|(_, count)| count == 1)
    };
    assert!(
        eventually(Duration::from_secs(5), subscribed).await,
        "nobody subscribed to {channel}"
    );
}

/// Waits until no channel of `server` has a subscriber: every waiter left, and the lingering
/// subscriptions (half a second) were dropped.
///
/// # Panics
///
/// If a channel is still subscribed after 2 seconds.
pub async fn await_no_subscriptions(server: &RedisServer) {
    let unsubscribed = || {
        server
            .try_cmd::<Vec<String>>(&["PUBSUB", "CHANNELS", "*"])
            .is_ok_and(|channels| channels.is_empty())
    };
    assert!(
        eventually(Duration::from_secs(2), unsubscribed).await,
        "a channel stayed subscribed after its last waiter left"
    );
}
