//! The multi-lock (DESIGN 4.1): several reentrant locks all or nothing, deadlock-free whatever
//! order callers name them in, nothing left held when an acquisition fails or is cancelled, and
//! every member released even when one of them fails.

use std::time::Duration;

use lock_runtime::LockError;
use lock_tests::{
    RedisServer,
    locks::{
        assert_no_key_without_ttl, assert_released, client_with_watchdog, connect, eventually,
        is_held, lock_key,
    },
    unique_name,
};

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| unique_name(&format!("{prefix}-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_lock_holds_every_member_and_excludes_plain_locks_on_them() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let names = names("multi-basic", 3);
    let multi = a.multi_lock(names.iter().rev().cloned().chain([names[0].clone()]));
    let sorted: Vec<&str> = multi.names().collect();
    assert_eq!(sorted.len(), 3, "a name given twice is taken once");
    assert!(
        sorted.windows(2).all(|pair| pair[0] < pair[1]),
        "taken in name order"
    );

    let guard = multi.acquire().await.expect("acquire");
    assert!(names.iter().all(|name| is_held(&server, name)));
    let err = b
        .lock(&names[1])
        .try_acquire(Duration::from_millis(200), None)
        .await
        .expect_err("a member excludes the plain lock");
    assert!(err.is_timeout(), "{err}");
    let tokens: Vec<u64> = guard.guards().iter().map(|g| g.fencing_token()).collect();
    assert_eq!(tokens.len(), 3);
    guard.unlock().await.expect("unlock");
    for name in &names {
        assert_released(&server, name);
    }

    let empty = a
        .multi_lock(Vec::<String>::new())
        .acquire()
        .await
        .expect_err("empty");
    assert!(
        matches!(
            empty,
            LockError::Config {
                mistake: lock_runtime::Mistake::InvalidArgument,
                ..
            }
        ),
        "{empty}"
    );
}

/// One member held elsewhere: the multi-lock times out naming it, and gives back the members it
/// had taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_held_elsewhere_times_out_with_nothing_left_held() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let names = names("multi-busy", 3);
    let busy = b.lock(&names[2]).acquire().await.expect("held elsewhere");
    let err = a
        .multi_lock(names.clone())
        .try_acquire(Duration::from_millis(300), None)
        .await
        .expect_err("the last member is held");
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string().contains(&names[2]),
        "names the member: {err}"
    );
    for name in &names[..2] {
        assert!(!is_held(&server, name), "{name} was given back");
    }
    busy.unlock().await.expect("unlock");
    for name in &names {
        assert_released(&server, name);
        assert_no_key_without_ttl(&server, name);
    }
}

/// Dropped while it waits for its last member, after taking the others: nothing stays held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_acquisition_leaves_nothing_held() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let names = names("multi-cancel", 3);
    let busy = b.lock(&names[2]).acquire().await.expect("held elsewhere");
    let waiting = {
        let multi = a.multi_lock(names.clone());
        tokio::spawn(async move { multi.acquire().await })
    };
    assert!(
        eventually(Duration::from_secs(5), || is_held(&server, &names[0])
            && is_held(&server, &names[1]))
        .await,
        "the first members are taken"
    );
    waiting.abort();
    let _ = waiting.await;
    assert!(
        eventually(Duration::from_secs(3), || !is_held(&server, &names[0])
            && !is_held(&server, &names[1]))
        .await,
        "the members taken are given back"
    );
    busy.unlock().await.expect("unlock");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for name in &names {
        assert_released(&server, name);
    }
}

/// Tasks of three clients take the same three locks named in opposite orders, many rounds:
/// none deadlocks, and no two are ever inside at once (a Redis counter of those inside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposite_orders_never_deadlock_nor_overlap() {
    let server = RedisServer::start();
    let names = names("multi-orders", 3);
    let inside = format!("{}:inside", names[0]);
    let mut tasks = Vec::new();
    for index in 0..3 {
        let client = connect(&server).await;
        for task in 0..3 {
            let mut order = names.clone();
            if (index + task) % 2 == 0 {
                order.reverse();
            }
            let (client, inside) = (client.clone(), inside.clone());
            let mut redis = redis::Client::open(server.url())
                .expect("url")
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            tasks.push(tokio::spawn(async move {
                let mut overlaps = 0;
                for _ in 0..10 {
                    let guard = client
                        .multi_lock(order.clone())
                        .try_acquire(Duration::from_secs(20), None)
                        .await?;
                    let now: i64 = redis::cmd("INCR")
                        .arg(&inside)
                        .query_async(&mut redis)
                        .await
                        .expect("incr");
                    if now != 1 {
                        overlaps += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let _: i64 = redis::cmd("DECR")
                        .arg(&inside)
                        .query_async(&mut redis)
                        .await
                        .expect("decr");
                    guard.unlock().await?;
                }
                Ok::<_, LockError>(overlaps)
            }));
        }
    }
    let all = async {
        let mut overlaps = 0;
        for task in tasks {
            overlaps += task.await.expect("join").expect("every round acquires");
        }
        overlaps
    };
    let overlaps = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no deadlock");
    assert_eq!(overlaps, 0, "two multi-locks were inside at once");
    for name in &names {
        assert_released(&server, name);
    }
}

/// A member taken away (force-unlocked): the guard learns its lease is lost, and `unlock`
/// reports that member and still releases the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_member_is_reported_and_the_others_are_released() {
    let server = RedisServer::start();
    let client = client_with_watchdog(&server, Duration::from_secs(1)).await;
    let names = names("multi-lost", 3);
    let guard = client
        .multi_lock(names.clone())
        .acquire()
        .await
        .expect("acquire");
    assert!(client.lock(&names[1]).force_unlock().await.expect("force"));
    tokio::time::timeout(Duration::from_secs(3), guard.lease_lost())
        .await
        .expect("the watchdog notices the lost member");
    let err = guard.unlock().await.expect_err("one member was lost");
    match &err {
        LockError::MultiRelease { failed } => {
            assert_eq!(failed.len(), 1, "{err}");
            assert!(failed[0].is_not_held(), "{err}");
            assert!(err.to_string().contains(&names[1]), "{err}");
        }
        other => panic!("expected MultiRelease, got {other}"),
    }
    for name in &names {
        assert_released(&server, name);
    }
}

/// Inside the multi-lock's scope each member re-enters, and the fencing token of the scope is
/// the last member's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reenter_inside_the_multi_locks_scope() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let names = names("multi-scope", 2);
    let guard = client
        .multi_lock(names.clone())
        .acquire()
        .await
        .expect("acquire");
    let last = guard.guards()[1].fencing_token();
    let (token, reentered) = guard
        .scope(async {
            let inner = client
                .lock(&names[0])
                .try_acquire(Duration::from_millis(200), None)
                .await?;
            let token = lock_runtime::fencing_token();
            inner.unlock().await?;
            Ok::<_, LockError>((token, true))
        })
        .await
        .expect("re-entered");
    assert!(reentered);
    assert_eq!(token, Some(last));
    guard.unlock().await.expect("unlock");
    for name in &names {
        assert_released(&server, name);
    }
}

/// The PTTL of `name`'s lock key, as a duration; panics if the key is gone or has no TTL.
fn pttl(server: &RedisServer, name: &str) -> Duration {
    let pttl: i64 = server.cmd(&["PTTL", &lock_key(name)]);
    let pttl = u64::try_from(pttl)
        .unwrap_or_else(|_| panic!("{name} is not held in Redis with a TTL (PTTL {pttl})"));
    Duration::from_millis(pttl)
}

/// Issue 20, item 2: `try_acquire(5 s, Some(500 ms))` of `["a", "b"]` while `b` is held for
/// 1.5 s. `a` is taken first and its fixed lease runs out while `b` is waited for. Before the
/// fix the call returned at 1.5 s with `a`'s lease long spent, and another client took `a` at
/// once. Now no member of the guard is spent: another client cannot take `a`, and the guard's
/// lease, and each member's, is never later than its key's expiry in Redis and close to the
/// full lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_lease_member_taken_first_is_not_handed_out_spent() {
    const LEASE: Duration = Duration::from_millis(500);
    let server = RedisServer::start();
    let (ours, theirs) = (connect(&server).await, connect(&server).await);
    let names = names("multi-spent", 2);
    let (a, b) = (&names[0], &names[1]);
    let busy = theirs
        .lock(b)
        .try_acquire(Duration::ZERO, Some(Duration::from_secs(10)))
        .await
        .expect("b is free");
    let holding_b = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        busy.unlock().await
    });
    let guard = ours
        .multi_lock(names.clone())
        .try_acquire(Duration::from_secs(5), Some(LEASE))
        .await
        .expect("both, once b is released");
    holding_b.await.expect("join").expect("b released");

    let read = std::time::Instant::now();
    let ttls: Vec<Duration> = names.iter().map(|name| pttl(&server, name)).collect();
    let slack = read.elapsed() + Duration::from_millis(1);
    for (member, ttl) in guard.guards().iter().zip(&ttls) {
        let remaining = member.remaining_lease();
        assert!(
            remaining <= *ttl + slack,
            "{} counts on {remaining:?} more; Redis keeps it {ttl:?} more",
            member.name()
        );
        assert!(
            remaining > LEASE / 2,
            "{} handed out with only {remaining:?} of a {LEASE:?} lease",
            member.name()
        );
    }
    let remaining = guard.remaining_lease();
    assert!(
        ttls.iter().all(|ttl| remaining <= *ttl + slack),
        "the guard counts on {remaining:?}; the keys live {ttls:?}"
    );
    assert!(
        remaining > LEASE / 2,
        "the guard has only {remaining:?} left"
    );

    let err = theirs
        .lock(a)
        .try_acquire(Duration::ZERO, None)
        .await
        .expect_err("a is the multi-lock's");
    assert!(err.is_timeout(), "{err}");
    guard.unlock().await.expect("every member still held");
    for name in &names {
        assert_released(&server, name);
        assert_no_key_without_ttl(&server, name);
    }
}
