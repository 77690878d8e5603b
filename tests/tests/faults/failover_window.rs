//! The fault suite's failover window: a primary killed under Sentinel after a lock was taken
//! on it but before its replica had it. Without `wait_for_replicas` the lock is handed out, lost
//! in the failover, and taken again by another client while the first still has its guard: its
//! `lease_lost()` tells it, and the fencing token still goes up, though the new primary's
//! fencing state is the one from before the lost acquisition. With `wait_for_replicas` no lock
//! is handed out that the replica has not confirmed. The window itself (how long after an
//! acquisition the replica has it) is what `WAIT` measures; the test prints it.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockClientBuilder, LockError};
use lock_tests::{
    SentinelRedis,
    locks::{eventually, last_token, lock_key},
    unique_name,
};

/// A client of `redis`'s primary through its Sentinels, with the default settings.
fn through_sentinels(redis: &SentinelRedis) -> LockClientBuilder {
    LockClient::builder().sentinel(SentinelRedis::MASTER_NAME, redis.urls())
}

/// Freezes the only replica and closes its replication link on the primary, so that nothing
/// written from now on reaches it: freezing alone is not enough, since the primary's writes
/// would wait in the frozen replica's socket buffer, and whether they are applied after the
/// thaw would depend on how the killed primary's connection ends (a reset drops them, a close
/// does not).
fn cut_off_the_replica(redis: &SentinelRedis) {
    redis.nodes.replicas[0].pause();
    assert_eq!(
        redis.primary().client_kill("TYPE replica"),
        1,
        "the replica's link is closed"
    );
}

/// Kills the primary while its only replica is cut off (see [`cut_off_the_replica`]), thaws
/// the replica and waits until the Sentinels promote it.
fn fail_over_with_the_replica_behind(redis: &SentinelRedis) {
    let old = redis.primary().port();
    redis.primary().kill();
    redis.nodes.replicas[0].resume();
    redis.wait_for_new_primary(old, Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_for_replicas_a_lock_lost_in_a_failover_is_taken_again() {
    let redis = SentinelRedis::start(1, 3);
    // The watchdog timeout is what this test waits on: the first holder learns of its loss at
    // its next renewal, which comes every third of it (every 10 s by default, so up to 10 s
    // after the failover). The loss, the second acquisition and the fencing tokens do not
    // depend on it.
    let first = through_sentinels(&redis)
        .watchdog_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("connect");
    let name = unique_name("failover-lost");
    let before = first.lock(&name).acquire().await.expect("free");
    let replicated_token = before.fencing_token();
    before.unlock().await.expect("unlock");
    // The replica has the fencing state of that acquisition: the new primary will count on
    // from it, without the next acquisition's increment.
    let fence = format!("{}:fence", lock_key(&name));
    let replica_has_it = || {
        redis.nodes.replicas[0]
            .cmd::<Option<u64>>(&["GET", &fence])
            .map(last_token)
            == Some(replicated_token)
    };
    assert!(
        eventually(Duration::from_secs(5), replica_has_it).await,
        "the replica never had the fencing state"
    );

    cut_off_the_replica(&redis);
    let guard = first.lock(&name).acquire().await.expect("free");
    assert!(guard.fencing_token() > replicated_token);
    fail_over_with_the_replica_behind(&redis);

    assert_eq!(
        redis.primary().cmd::<i64>(&["EXISTS", &lock_key(&name)]),
        0,
        "the new primary never had the lock"
    );
    let second = through_sentinels(&redis).build().await.expect("connect");
    let taken = second
        .lock(&name)
        .try_acquire(Duration::from_secs(10), None)
        .await
        .expect("the lock is free on the new primary");
    assert!(
        taken.fencing_token() > guard.fencing_token(),
        "tokens still go up: the new primary's clock is past the token it never saw"
    );
    tokio::time::timeout(Duration::from_secs(10), guard.lease_lost())
        .await
        .expect("the first holder's renewal finds its lock gone");
    taken.unlock().await.expect("unlock");
    assert!(guard.unlock().await.expect_err("lost").is_not_held());
}

/// The median time of 50 acquisitions and releases of `name`.
async fn round_trips(client: &LockClient, name: &str) -> Duration {
    let mut times = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let guard = client.lock(name).acquire().await.expect("free");
        guard.unlock().await.expect("unlock");
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_replicas_no_unreplicated_lock_is_handed_out() {
    let redis = SentinelRedis::start(1, 3);
    let client = through_sentinels(&redis)
        .wait_for_replicas(1, Duration::from_millis(200))
        .build()
        .await
        .expect("connect");
    let name = unique_name("failover-kept");

    // The window: how much longer an acquisition takes when it waits for the replica's
    // confirmation, measured beside the same work without it (printed, not asserted).
    let plain = through_sentinels(&redis).build().await.expect("connect");
    let without = round_trips(&plain, &name).await;
    let with = round_trips(&client, &name).await;
    println!(
        "acquire + release over loopback, p50: {without:?} without WAIT, {with:?} with `WAIT 1`"
    );

    cut_off_the_replica(&redis);
    let refused = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), None)
        .await
        .expect_err("the replica cannot confirm");
    assert!(
        matches!(refused, LockError::NotReplicated { .. }),
        "{refused}"
    );
    assert_eq!(
        redis.primary().cmd::<i64>(&["EXISTS", &lock_key(&name)]),
        0,
        "the unconfirmed lock was given back"
    );
    fail_over_with_the_replica_behind(&redis);

    // The promoted replica has no replica of its own: still nothing unconfirmed is handed out.
    let refused = client
        .lock(&name)
        .try_acquire(Duration::from_secs(10), None)
        .await
        .expect_err("no replica to confirm");
    assert!(
        matches!(refused, LockError::NotReplicated { .. }),
        "{refused}"
    );
    assert_eq!(redis.primary().cmd::<i64>(&["EXISTS", &lock_key(&name)]), 0);
}
