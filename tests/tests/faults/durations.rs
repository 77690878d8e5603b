//! Any `Duration` is valid input and nothing panics (DESIGN 3.2): `Duration::MAX` as a wait means
//! "wait forever", huge leases either work or are refused with `LockError::Config` (`InvalidArgument`) and
//! builder timeouts with `LockError::Config`, and a lease under 1 ms is refused instead of
//! becoming `PEXPIRE 0`.
//!
//! A panic on `Instant + Duration` overflow may happen in the caller's future or in one of the
//! client's background tasks (hub listener, watchdog, a release sent from `Drop`), where no
//! `JoinHandle` would show it. So each case runs through [`run_catching_panics`]: on a runtime of
//! its own whose threads are watched by a panic hook, and the test fails on any panic there (or in
//! library code on any other thread). That is why these tests are plain `#[test]`s that build
//! their runtime, and not `#[tokio::test]`s.

use std::{future::Future, time::Duration};

use lock_runtime::{LockClient, LockClientBuilder, LockError};
use lock_tests::{
    RedisServer,
    locks::{CaughtPanic, assert_released, eventually, lock_key, run_catching_panics},
    unique_name,
};

/// Runs `case` with [`run_catching_panics`] and fails on any panic it caused, wherever it was
/// raised, listing them apart from the failed checks of the test itself.
fn without_panics<F, Fut>(case: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (finished, panics) = run_catching_panics(case);
    let (checks, panics): (Vec<_>, Vec<_>) = panics.into_iter().partition(|p| p.in_tests);
    let list = |panics: &[CaughtPanic]| {
        panics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        panics.is_empty(),
        "nothing may panic on any Duration, but the code under test panicked {} time(s):\n{}\n\
         and the test's checks said:\n{}",
        panics.len(),
        list(&panics),
        list(&checks)
    );
    assert!(
        checks.is_empty() && finished.is_some(),
        "the test failed:\n{}",
        list(&checks)
    );
}

/// Whether a spawned task panicked, as a message for the assertion.
fn panicked<T>(outcome: &Result<T, tokio::task::JoinError>) -> Option<String> {
    match outcome {
        Err(err) if err.is_panic() => Some(format!("it panicked: {err}")),
        Err(err) => Some(format!("the task did not finish: {err}")),
        Ok(_) => None,
    }
}

/// `try_acquire(Duration::MAX, ..)` is "wait forever": it takes a free lock at once, and on a held
/// lock it is still waiting after a second, then gets the lock when the holder releases it.
/// The acquire runs in a spawned task so that a panic (before the core rewrite: `Instant + Duration::MAX`
/// overflows when the deadline is computed) shows as a failed join, not as a crashed test.
#[test]
fn a_wait_of_duration_max_waits_for_ever() {
    without_panics(|| async {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        let name = unique_name("wait-max");

        let lock = client.lock(&name);
        let free = tokio::spawn(async move { lock.try_acquire(Duration::MAX, None).await });
        let free = tokio::time::timeout(Duration::from_secs(5), free)
            .await
            .expect("a free lock is taken at once, even with a wait of Duration::MAX");
        if let Some(problem) = panicked(&free) {
            panic!("try_acquire(Duration::MAX, None) on a free lock: {problem}");
        }
        let guard = free.expect("joined").expect("a free lock is acquired");
        guard.unlock().await.expect("unlock");

        let holder = client.lock(&name).acquire().await.expect("holder");
        let lock = client.lock(&name);
        let waiter = tokio::spawn(async move {
            lock.try_acquire(Duration::MAX, Some(Duration::from_secs(5)))
                .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        if waiter.is_finished() {
            let outcome = waiter.await;
            if let Some(problem) = panicked(&outcome) {
                panic!("try_acquire(Duration::MAX, ..) on a held lock: {problem}");
            }
            panic!(
                "try_acquire(Duration::MAX, ..) on a held lock gave up within a second: {:?}",
                outcome.expect("joined").map(|guard| guard.fencing_token())
            );
        }
        holder.unlock().await.expect("holder unlock");
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter gets the lock once the holder released it");
        if let Some(problem) = panicked(&outcome) {
            panic!("try_acquire(Duration::MAX, ..) on a held lock: {problem}");
        }
        let guard = outcome.expect("joined").expect("the waiter's lock");
        guard.unlock().await.expect("waiter unlock");
        assert_released(&server, &name);
    });
}

/// Huge leases (`Duration::MAX`, leases whose milliseconds overflow Redis's 64-bit signed
/// expiry, a century) either give a working lock or `LockError::Config` (`InvalidArgument`), never a panic and never
/// a Redis error, and none leaves the lock held. Every lease is tried and every problem listed.
/// Before the core rewrite (issue 8), `Duration::MAX` panics computing the guard's deadline, and a lease of `u64::MAX`
/// milliseconds reaches `PEXPIRE`, which Redis refuses after the script already wrote the lock.
#[test]
fn huge_leases_work_or_are_refused_and_leave_nothing_held() {
    without_panics(|| async {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let leases = [
            ("Duration::MAX", Duration::MAX),
            ("u64::MAX seconds", Duration::from_secs(u64::MAX)),
            ("u64::MAX milliseconds", Duration::from_millis(u64::MAX)),
            (
                "i64::MAX milliseconds",
                Duration::from_millis(i64::MAX.unsigned_abs()),
            ),
            ("a century", century),
        ];
        let mut problems = Vec::new();
        for (label, lease) in leases {
            let name = unique_name("huge-lease");
            let lock = client.lock(&name);
            let outcome = tokio::spawn(async move {
                match lock.try_acquire(Duration::from_secs(1), Some(lease)).await {
                    Ok(guard) => guard.unlock().await.map(|()| "acquired and released"),
                    Err(err) => Err(err),
                }
            })
            .await;
            match outcome {
                Err(err) => problems.push(format!(
                    "lease {label}: {}",
                    panicked::<()>(&Err(err)).unwrap_or_default()
                )),
                Ok(Ok(_)) => {}
                Ok(Err(LockError::Config { mistake: lock_runtime::Mistake::InvalidArgument, .. })) => {}
                Ok(Err(err)) => problems.push(format!(
                    "lease {label}: neither a lock nor LockError::Config (InvalidArgument), but: {err}"
                )),
            }
            let released = eventually(Duration::from_secs(2), || {
                server.cmd::<i64>(&["EXISTS", &lock_key(&name)]) == 0
            })
            .await;
            if !released {
                let ttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
                problems.push(format!("lease {label}: the lock is left held (pttl {ttl})"));
                let _: i64 = server.cmd(&["DEL", &lock_key(&name)]);
            }
            assert_released(&server, &name);
        }
        assert!(
            problems.is_empty(),
            "huge leases must work or give LockError::Config (InvalidArgument):\n{}",
            problems.join("\n")
        );
    });
}

/// A lease under one millisecond is refused with `LockError::Config` (`InvalidArgument`): Redis counts leases in
/// whole milliseconds, and before the core rewrite 500 µs becomes `PEXPIRE 0`, which deletes the lock the script
/// has just written while the caller is handed a guard.
#[test]
fn a_lease_under_a_millisecond_is_refused() {
    without_panics(|| async {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        for lease in [
            Duration::from_micros(500),
            Duration::from_nanos(1),
            Duration::from_micros(999),
        ] {
            let name = unique_name("sub-ms-lease");
            let outcome = client
                .lock(&name)
                .try_acquire(Duration::from_secs(1), Some(lease))
                .await;
            match outcome {
                Err(err) => assert!(
                    matches!(
                        err,
                        LockError::Config {
                            mistake: lock_runtime::Mistake::InvalidArgument,
                            ..
                        }
                    ),
                    "a lease of {lease:?} must be refused with LockError::Config (InvalidArgument), got: {err}"
                ),
                Ok(guard) => {
                    let unlocked = guard.unlock().await;
                    panic!(
                        "a lease of {lease:?} must be refused with LockError::Config (InvalidArgument), but it \
                         gave a guard (its unlock then said {unlocked:?})"
                    );
                }
            }
            assert_released(&server, &name);
        }
    });
}

/// Builds a client with one setting at `Duration::MAX` and checks the outcome: `build()` gives
/// `LockError::Config`, or a client with which an uncontended lock/unlock (watchdog mode) and a
/// contended wait both work. The waiter must get the lock within 3 s of the holder's release
/// (the holder's lease is 10 s), so a dead subscription hub shows. Every operation runs in a
/// spawned task, and [`without_panics`] also catches panics in the client's background tasks.
fn a_client_setting_of_duration_max(
    setting: &'static str,
    set: fn(LockClientBuilder) -> LockClientBuilder,
) {
    without_panics(move || async move {
        let server = RedisServer::start();
        let url = server.url();
        let built =
            tokio::spawn(async move { set(LockClient::builder().url(url)).build().await }).await;
        if let Some(problem) = panicked(&built) {
            panic!("build() with {setting}(Duration::MAX): {problem}");
        }
        let client = match built.expect("joined") {
            Err(err) => {
                assert!(
                    matches!(err, LockError::Config { .. }),
                    "{setting}(Duration::MAX): build() must work or give LockError::Config, got: {err}"
                );
                return;
            }
            Ok(client) => client,
        };
        let name = unique_name("max-setting");

        let lock = client.lock(&name);
        let cycle = tokio::spawn(async move { lock.acquire().await?.unlock().await }).await;
        if let Some(problem) = panicked(&cycle) {
            panic!("{setting}(Duration::MAX): acquire + unlock: {problem}");
        }
        cycle
            .expect("joined")
            .unwrap_or_else(|err| panic!("{setting}(Duration::MAX): acquire + unlock: {err}"));

        let holder = client
            .lock(&name)
            .try_acquire(Duration::from_secs(5), Some(Duration::from_secs(10)))
            .await
            .unwrap_or_else(|err| panic!("{setting}(Duration::MAX): holder: {err}"));
        let lock = client.lock(&name);
        let waiter = tokio::spawn(async move {
            lock.try_acquire(Duration::from_secs(8), None)
                .await?
                .unlock()
                .await
        });
        // Time to find the lock taken and subscribe; a late subscriber retries once confirmed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let unlocked = tokio::spawn(holder.unlock()).await;
        if let Some(problem) = panicked(&unlocked) {
            panic!("{setting}(Duration::MAX): holder unlock: {problem}");
        }
        unlocked
            .expect("joined")
            .unwrap_or_else(|err| panic!("{setting}(Duration::MAX): holder unlock: {err}"));
        let waited = tokio::time::timeout(Duration::from_secs(3), waiter).await;
        let Ok(waited) = waited else {
            panic!(
                "{setting}(Duration::MAX): the waiter did not get the lock within 3 s of its \
                 release (the holder's lease was 10 s): waiters are not woken"
            );
        };
        if let Some(problem) = panicked(&waited) {
            panic!("{setting}(Duration::MAX): contended wait: {problem}");
        }
        waited
            .expect("joined")
            .unwrap_or_else(|err| panic!("{setting}(Duration::MAX): contended wait: {err}"));
        assert_released(&server, &name);
    });
}

/// `retry_timeout(Duration::MAX)`: before the core rewrite `retry_timeout + response_timeout` (the request memo's
/// TTL) overflows and the release panics.
#[test]
fn a_retry_timeout_of_duration_max_works_or_is_refused() {
    a_client_setting_of_duration_max("retry_timeout", |builder| {
        builder.retry_timeout(Duration::MAX)
    });
}

/// `response_timeout(Duration::MAX)`: before the core rewrite the request memo's TTL overflows as above.
#[test]
fn a_response_timeout_of_duration_max_works_or_is_refused() {
    a_client_setting_of_duration_max("response_timeout", |builder| {
        builder.response_timeout(Duration::MAX)
    });
}

/// `connect_timeout(Duration::MAX)`: every use of it goes through `tokio::time::timeout`, which
/// saturates, so this held before the core rewrite too; it guards it.
#[test]
fn a_connect_timeout_of_duration_max_works_or_is_refused() {
    a_client_setting_of_duration_max("connect_timeout", |builder| {
        builder.connect_timeout(Duration::MAX)
    });
}

/// `pubsub_ping_interval(Duration::MAX)`: the hub's ping timer is a `tokio::time::Interval`,
/// which clamps its period, so this held before the core rewrite too; it guards it (a panic in the hub's
/// listener would leave waiters unwoken, which the 3 s hand-off check catches).
#[test]
fn a_pubsub_ping_interval_of_duration_max_works_or_is_refused() {
    a_client_setting_of_duration_max("pubsub_ping_interval", |builder| {
        builder.pubsub_ping_interval(Duration::MAX)
    });
}

/// `watchdog_timeout(Duration::MAX)`: before the core rewrite `acquire()` panics computing the guard's deadline.
#[test]
fn a_watchdog_timeout_of_duration_max_works_or_is_refused() {
    a_client_setting_of_duration_max("watchdog_timeout", |builder| {
        builder.watchdog_timeout(Duration::MAX)
    });
}
