//! Leases: the watchdog keeps a lock alive, fixed leases end, loss is reported, and a crashed
//! holder's lock frees itself when its lease ends, not before.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockGuard};
use lock_tests::{
    RedisServer, TcpProxy, Workers,
    locks::{assert_released, client_with_watchdog, lock_key},
    unique_name,
};

use crate::WORKER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_keeps_a_lock_for_three_times_its_timeout() {
    let server = RedisServer::start();
    let watchdog = Duration::from_millis(900);
    let holder = client_with_watchdog(&server, watchdog).await;
    let rival = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("watchdog");

    let guard = holder.lock(&name).acquire().await.expect("acquire");
    let err = rival
        .lock(&name)
        .try_acquire(watchdog * 3, None)
        .await
        .expect_err("the holder's lock must survive three watchdog timeouts");
    assert!(err.is_timeout(), "{err}");
    assert!(!guard.is_lease_lost());
    let ttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
    assert!(ttl > 0, "renewed lock has a TTL, got {ttl}");

    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_fires_when_the_lock_is_deleted_behind_the_holder() {
    let server = RedisServer::start();
    let watchdog = Duration::from_millis(600);
    let client = client_with_watchdog(&server, watchdog).await;
    let name = unique_name("deleted");
    let guard = client.lock(&name).acquire().await.expect("acquire");

    let _: i64 = server.cmd(&["DEL", &lock_key(&name)]);
    tokio::time::timeout(watchdog, guard.lease_lost())
        .await
        .expect("the next renewal (every third of the watchdog timeout) reports the loss");
    assert!(guard.is_lease_lost());

    let err = guard
        .unlock()
        .await
        .expect_err("the lock was not ours any more");
    assert!(err.is_not_held(), "{err}");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_fires_when_the_lock_is_taken_over() {
    let server = RedisServer::start();
    let watchdog = Duration::from_millis(600);
    let client = client_with_watchdog(&server, watchdog).await;
    let name = unique_name("taken-over");
    let guard = client.lock(&name).acquire().await.expect("acquire");

    assert!(
        client
            .lock(&name)
            .force_unlock()
            .await
            .expect("force unlock")
    );
    let thief = client.lock(&name).acquire().await.expect("the freed lock");
    tokio::time::timeout(watchdog, guard.lease_lost())
        .await
        .expect("renewal finds another owner");
    assert!(!thief.is_lease_lost());
    thief.unlock().await.expect("unlock");
    drop(guard);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_lease_ends_at_its_deadline_and_is_never_renewed() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("fixed");
    let lease = Duration::from_millis(500);
    let started = Instant::now();
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(lease))
        .await
        .expect("acquire");
    let acquired = Instant::now();
    // Where the guard's deadline lies, read from the guard rather than from when its loss is
    // noticed (a loaded machine wakes a task late): before Redis expires the key, whose lease
    // started after `started`, and not much before either (the clock-drift margin only).
    let deadline = acquired + guard.remaining_lease();
    assert!(
        deadline < started + lease,
        "the deadline is not before Redis expires the key: {:?} after the request",
        deadline - started
    );
    assert!(
        deadline > started + lease * 9 / 10,
        "the deadline is much earlier than the lease: {:?} after the request",
        deadline - started
    );

    guard.lease_lost().await;
    assert!(
        Instant::now() >= deadline,
        "the lease was lost before its deadline"
    );
    // The key's lease started before the reply came: it has expired in Redis by now.
    tokio::time::sleep_until((acquired + lease + Duration::from_millis(20)).into()).await;
    assert!(!client.lock(&name).is_locked().await.expect("is_locked"));
    let err = guard.unlock().await.expect_err("expired");
    assert!(err.is_not_held(), "{err}");
    assert_released(&server, &name);
}

/// A holder process killed with SIGKILL: its lock is free once the lease ends, and not before.
async fn killed_holder_frees_the_lock_after(lease_ms: u64, watchdog_ms: u64, free_after: Duration) {
    let server = RedisServer::start();
    let name = unique_name("killed");
    let mut workers = Workers::command(WORKER)
        .worker([
            "hold",
            &server.url(),
            &name,
            &lease_ms.to_string(),
            &watchdog_ms.to_string(),
        ])
        .spawn();
    assert!(
        workers.wait_for_stdout(0, "token=", Duration::from_secs(20)),
        "the holder never took the lock"
    );
    let acquired_by_holder = Instant::now();
    workers.kill(0);

    let client = LockClient::connect(&server.url()).await.expect("connect");
    let guard = client
        .lock(&name)
        .try_acquire(free_after * 3, None)
        .await
        .expect("the lock frees when the dead holder's lease ends");
    let waited = acquired_by_holder.elapsed();
    assert!(
        waited >= free_after * 8 / 10,
        "acquired after {waited:?}, before the dead holder's lease ended"
    );
    assert!(
        waited <= free_after + Duration::from_secs(1),
        "acquired only after {waited:?}: the waiter overslept the holder's TTL"
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_with_a_fixed_lease_frees_the_lock_after_the_lease() {
    killed_holder_frees_the_lock_after(2_000, 30_000, Duration::from_millis(2_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_in_watchdog_mode_frees_the_lock_after_the_watchdog_timeout() {
    killed_holder_frees_the_lock_after(0, 1_500, Duration::from_millis(1_500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_fires_when_redis_stays_unreachable_past_the_deadline() {
    let server = RedisServer::start();
    let watchdog = Duration::from_millis(900);
    let client = client_with_watchdog(&server, watchdog).await;
    let name = unique_name("unreachable");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let acquired = Instant::now();

    server.pause();
    let lost = tokio::time::timeout(watchdog * 3, guard.lease_lost()).await;
    let after = acquired.elapsed();
    server.resume();

    lost.expect("the deadline passed without a renewal");
    assert!(
        after >= watchdog * 9 / 10,
        "lost after {after:?}, before the lease could end"
    );
    drop(guard);
    let client_check = LockClient::connect(&server.url()).await.expect("connect");
    let guard = client_check
        .lock(&name)
        .try_acquire(Duration::from_secs(3), None)
        .await
        .expect("the lock frees once the server runs again");
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// Waits until `guard`'s lease is renewed (its remaining lease jumps up), for at most `within`;
/// returns whether it was.
async fn renewed_within(guard: &LockGuard, within: Duration) -> bool {
    let started = Instant::now();
    let mut before = guard.remaining_lease();
    while started.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = guard.remaining_lease();
        if now > before + Duration::from_millis(50) {
            return true;
        }
        before = now;
    }
    false
}

/// A renewal whose connection is reset under it (what a Redis Cluster master dying under it
/// answers: "broken pipe") proves nothing about whether it ran; a renewal is safe to resend, so
/// it is resent at once on a new connection, not left to the next tick. Here the first attempt
/// of each of three renewals in a row is cut; two failed ticks in a row are all a lease has
/// room for (ticks come every third of the watchdog timeout), so without the resend the lease
/// runs out at the third.
///
/// Default settings but the watchdog timeout, the setting under test: 3 s, so that three ticks
/// take seconds (the default 30 s would make them take a minute and a half).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_cut_on_the_wire_is_resent_and_the_lease_is_kept() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let watchdog = Duration::from_secs(3);
    let client = LockClient::builder()
        .url(proxy.url())
        .watchdog_timeout(watchdog)
        .build()
        .await
        .expect("connect");
    let name = unique_name("renewal-cut");
    let guard = client.lock(&name).acquire().await.expect("free");
    let tick = watchdog / 3;
    assert!(
        renewed_within(&guard, tick * 2).await,
        "set-up: the watchdog renews every {tick:?}"
    );

    for cut in 1..=3 {
        // The connection open now holds what the client sends next: the next tick's renewal.
        proxy.hold_connections();
        let waiting = Instant::now();
        while proxy.held_bytes() == 0 {
            assert!(
                waiting.elapsed() < tick * 2,
                "set-up: no renewal went out within {:?}",
                tick * 2
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Its first attempt is on the wire: reset the connection under it.
        proxy.drop_connections();
        assert!(
            renewed_within(&guard, tick / 2).await,
            "renewal {cut}: its first attempt was cut, and it was not resent within {:?} \
             (the next tick comes {tick:?} after it)",
            tick / 2
        );
        assert!(!guard.is_lease_lost(), "renewal {cut}: lease lost");
        let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
        let redis_left = Duration::from_millis(u64::try_from(pttl).unwrap_or(0));
        assert!(
            guard.remaining_lease() <= redis_left,
            "renewal {cut}: the guard trusts {:?} of lease, Redis keeps the key {pttl} ms",
            guard.remaining_lease()
        );
        // Let any resend of this renewal finish before the next one is held.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!guard.is_lease_lost(), "lease lost");
    guard.unlock().await.expect("still held: unlock");
    assert_released(&server, &name);
}
