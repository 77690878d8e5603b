//! The opt-in replica check: after a fresh acquisition, Redis `WAIT`s for replicas to have the
//! lock, and the acquisition fails (releasing the lock) if too few confirm in time.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError};
use lock_tests::{
    ReplicatedRedis, TcpProxy,
    locks::{assert_released, eventually, lock_key, take_once},
    unique_name,
};

async fn client_waiting_for(redis: &ReplicatedRedis, replicas: usize) -> LockClient {
    LockClient::builder()
        .url(redis.primary.url())
        .wait_for_replicas(replicas, Duration::from_millis(500))
        .build()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_acknowledged_by_the_replicas_is_on_them() {
    let redis = ReplicatedRedis::start(2);
    let client = client_waiting_for(&redis, 2).await;
    let name = unique_name("replicated");

    let guard = client
        .lock(&name)
        .acquire()
        .await
        .expect("acknowledged by both replicas");

    for replica in &redis.replicas {
        let there: i64 = replica.cmd(&["EXISTS", &lock_key(&name)]);
        assert_eq!(
            there,
            1,
            "the replica on port {} has the lock",
            replica.port()
        );
    }
    guard.unlock().await.expect("unlock");
    assert_released(&redis.primary, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_replicas_in_time_fail_the_acquisition_and_release_the_lock() {
    let redis = ReplicatedRedis::start(2);
    let client = client_waiting_for(&redis, 2).await;
    let name = unique_name("unreplicated");
    redis.replicas[1].pause();

    let started = Instant::now();
    let err = client
        .lock(&name)
        .try_acquire(Duration::from_secs(5), None)
        .await
        .expect_err("one replica is frozen");
    let waited = started.elapsed();
    redis.replicas[1].resume();

    match &err {
        LockError::NotReplicated {
            acknowledged,
            required,
            ..
        } => assert_eq!((*acknowledged, *required), (1, 2)),
        other => panic!("expected NotReplicated, got {other}"),
    }
    assert!(err.to_string().contains(&name), "{err}");
    assert!(waited < Duration::from_secs(2), "gave up after {waited:?}");
    assert_released(&redis.primary, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_replicas_than_exist_can_never_be_satisfied() {
    let redis = ReplicatedRedis::start(1);
    let client = client_waiting_for(&redis, 2).await;
    let name = unique_name("missing-replica");

    let err = client
        .lock(&name)
        .acquire()
        .await
        .expect_err("only one replica");

    assert!(
        matches!(
            err,
            LockError::NotReplicated {
                acknowledged: 1,
                required: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_released(&redis.primary, &name);
}

/// `WAIT` blocks the connection it is sent on for up to its timeout. It runs on a connection of
/// its own, so a release (or a renewal) of another lock by the same client is not queued behind
/// a fresh acquisition that waits for a frozen replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_replicas_does_not_hold_up_other_requests() {
    let redis = ReplicatedRedis::start(1);
    let client = LockClient::builder()
        .url(redis.primary.url())
        .wait_for_replicas(1, Duration::from_millis(1_500))
        .build()
        .await
        .expect("connect");
    let (held_name, waiting_name) = (unique_name("held"), unique_name("waiting"));
    let held = client.lock(&held_name).acquire().await.expect("replicated");
    redis.replicas[0].pause();

    let waiting = {
        let lock = client.lock(&waiting_name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(5), None).await })
    };
    // Let the acquisition reach Redis and start its WAIT.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    held.unlock().await.expect("unlock");
    let unlocked_in = started.elapsed();
    let outcome = waiting.await.expect("join");
    redis.replicas[0].resume();

    assert!(
        unlocked_in < Duration::from_millis(700),
        "the release waited {unlocked_in:?} behind a WAIT"
    );
    assert!(
        matches!(outcome, Err(LockError::NotReplicated { .. })),
        "the frozen replica fails the acquisition: {outcome:?}"
    );
    assert_released(&redis.primary, &held_name);
    assert_released(&redis.primary, &waiting_name);
}

/// An acquisition that took the lock but heard too few replicas gives the lock back before it
/// returns `NotReplicated`. A caller that gives up while that give-back is on the wire (its
/// bytes then lost with the connections) must still leave nothing held: the give-back is a
/// release like any other, finished in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_giving_up_while_the_lock_is_given_back_leaves_nothing_held() {
    let redis = ReplicatedRedis::start(1);
    let proxy = TcpProxy::start(redis.primary.port()).await;
    let client = LockClient::builder()
        .url(proxy.url())
        .wait_for_replicas(1, Duration::from_millis(300))
        .build()
        .await
        .expect("connect");
    let warm_up = unique_name("warm-up");
    take_once(&client, &warm_up).await;
    redis.replicas[0].pause();
    proxy.set_delay(Duration::from_millis(40));

    // How long a refused acquisition takes, its give-back's round trip included.
    let started = Instant::now();
    let refused = client
        .lock(unique_name("timing"))
        .try_acquire(Duration::from_secs(5), None)
        .await;
    assert!(
        matches!(refused, Err(LockError::NotReplicated { .. })),
        "{refused:?}"
    );
    let whole = started.elapsed();

    // Cut it within its last round trip, the give-back's, and lose whatever was written.
    for before_the_end in [70, 50, 30, 10] {
        let name = unique_name("cut-give-back");
        let cut = whole.saturating_sub(Duration::from_millis(before_the_end));
        let lock = client.lock(&name);
        let _ = tokio::time::timeout(cut, lock.try_acquire(Duration::from_secs(5), None)).await;
        proxy.drop_connections();
        let held = || redis.primary.cmd::<i64>(&["EXISTS", &lock_key(&name)]) == 1;
        assert!(
            eventually(Duration::from_secs(3), || !held()).await,
            "cut {before_the_end} ms before the end: the lock stayed held"
        );
        assert_released(&redis.primary, &name);
    }
    redis.replicas[0].resume();
}
