//! Fencing tokens with bounded state (DESIGN 3.3): every fresh acquisition gets a token strictly
//! greater than every earlier one for that lock name, and a lock name leaves no key without a
//! TTL after its last release, because millions of names (`stock:{product_id}`) are normal.
//!
//! Tokens are a hybrid logical clock: a counter started from the server's time in µs that counts
//! up by one, is brought up to the clock when it has fallen 100 ms behind, and expires ten
//! minutes after it started. So these tests assume nothing about where tokens start or by how
//! much they grow: only that they strictly increase, also after the state kept between
//! acquisitions is gone (simulated by deleting every key of the name but the lock itself) or
//! rolled back (simulated by writing an older state back, as a failover to a replica that had
//! not received the last acquisitions leaves it).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lock_tests::{
    RedisServer,
    locks::{
        Family, assert_no_key_without_ttl, assert_released, client_with_watchdog, connect,
        eventually, is_held, spawn_waiters, take_once,
    },
    unique_name,
};

/// Panics unless `tokens` strictly increase, naming the first pair that does not.
fn assert_strictly_increasing(tokens: &[u64], what: &str) {
    if let Some(pair) = tokens.windows(2).find(|pair| pair[1] <= pair[0]) {
        panic!(
            "{what}: token {} came after {}: tokens must strictly increase (all: {tokens:?})",
            pair[1], pair[0]
        );
    }
}

/// After every way of using a lock (watchdog and fixed leases, a re-entry, waiters that queue
/// and take it in turn, a guard dropped instead of unlocked), once it is released nothing of
/// the name stays in Redis without a TTL. Before the core rewrite (issue 8), the fencing counter `{lock:NAME}:fence` has
/// none: one key left for ever per lock name ever used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lock_leaves_no_key_without_a_ttl() {
    let server = RedisServer::start();
    let client = client_with_watchdog(&server, Duration::from_secs(3)).await;
    let name = unique_name("bounded");
    let lock = client.lock(&name);

    lock.acquire()
        .await
        .expect("watchdog acquire")
        .unlock()
        .await
        .expect("unlock");
    lock.try_acquire(Duration::from_secs(1), Some(Duration::from_secs(5)))
        .await
        .expect("fixed-lease acquire")
        .unlock()
        .await
        .expect("unlock");
    let outer = lock.acquire().await.expect("outer");
    outer
        .scope(async {
            let inner = lock.acquire().await.expect("re-entry");
            inner.unlock().await.expect("inner unlock");
        })
        .await;
    let waiters = spawn_waiters(&client, &name, 3, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(200)).await;
    outer.unlock().await.expect("outer unlock");
    for waiter in waiters {
        waiter.await.expect("join").expect("waiter");
    }
    drop(lock.acquire().await.expect("acquire, then drop"));
    assert!(
        eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
        "the dropped guard's lock is released"
    );

    assert_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// Tokens strictly increase over many acquisitions: one after the other through one client,
/// alternating between two clients, and under contention between two clients with two tasks
/// each (each holder records its token while it holds the lock, so the record is in acquisition
/// order). This held with the plain `INCR` counter too; it guards the clock-based scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_strictly_increase_across_acquisitions_and_clients() {
    let server = RedisServer::start();
    let first = connect(&server).await;
    let second = connect(&server).await;
    let name = unique_name("increasing");

    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(take_once(&first, &name).await);
    }
    for round in 0..10 {
        let client = if round % 2 == 0 { &first } else { &second };
        tokens.push(take_once(client, &name).await);
    }
    assert_strictly_increasing(&tokens, "one acquisition after the other");

    let recorded = Arc::new(Mutex::new(vec![*tokens.last().expect("tokens")]));
    let tasks: Vec<_> = [&first, &first, &second, &second]
        .into_iter()
        .map(|client| {
            let lock = client.lock(&name);
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                for _ in 0..5 {
                    let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
                    recorded.lock().expect("record").push(guard.fencing_token());
                    guard.unlock().await?;
                }
                Ok::<_, lock_runtime::LockError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("contended acquisitions");
    }
    let recorded = recorded.lock().expect("record").clone();
    assert_eq!(recorded.len(), 21, "every acquisition recorded its token");
    assert_strictly_increasing(&recorded, "contended acquisitions of two clients");
    assert_released(&server, &name);
}

/// The state kept between acquisitions (the fencing counter) expires: simulated here by deleting
/// every key of the name once it is released. The next token must still be greater than every
/// earlier one, through the same client and through another. (With a plain counter without the
/// clock, it started again from 1.)
///
/// Before each acquisition after a deletion the test pauses 20 ms, so the server clock has
/// moved on from the tokens already handed out (a clock-based token may run a few µs ahead of
/// the clock when many are taken at once); this is slack for the scheme, not a timing check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_increasing_after_the_fence_state_expired() {
    let server = RedisServer::start();
    let first = connect(&server).await;
    let second = connect(&server).await;
    let name = unique_name("fence-expired");

    let forget_everything_but_the_lock = || {
        assert!(!is_held(&server, &name), "the lock is released");
        for key in server.keys(&format!("*{name}*")) {
            let _: i64 = server.cmd(&["DEL", &key]);
        }
    };

    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(take_once(&first, &name).await);
    }
    forget_everything_but_the_lock();
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokens.push(take_once(&first, &name).await);
    assert_strictly_increasing(&tokens, "through the same client, after the state expired");

    forget_everything_but_the_lock();
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokens.push(take_once(&second, &name).await);
    assert_strictly_increasing(&tokens, "through another client, after the state expired");
    assert_released(&server, &name);
}

/// A failover to a replica that had the fencing state but not its last increments: the promoted
/// replica's state is an older one, and counting on from it would hand out again tokens that
/// the failed primary already gave to holders (who may still write with them). Simulated on one
/// server by writing back the state (value and TTL) read after the first of four acquisitions,
/// 200 ms after the last (a failover takes longer; the scheme reads the clock at every
/// acquisition and brings a state 100 ms behind it up to it). The next token of the exclusive
/// lock, the fair lock and the write lock must be above all four. (With the plain counter it
/// was the second one's again.) `faults::failover_window` does it with a real failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_increasing_after_the_state_was_rolled_back() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    for family in [Family::Reentrant, Family::Fair, Family::Write] {
        let name = unique_name("fence-rolled-back");
        let fence = format!("{}:fence", family.key(&name));
        let take = || async {
            let guard = family
                .try_acquire(&client, &name, Duration::from_secs(10), None)
                .await
                .unwrap_or_else(|err| panic!("taking {name}: {err}"));
            let token = guard.fencing_token();
            guard.unlock().await.expect("unlock");
            token
        };
        let mut tokens = vec![take().await];
        let (old_state, old_ttl): (String, i64) =
            (server.cmd(&["GET", &fence]), server.cmd(&["PTTL", &fence]));
        for _ in 0..3 {
            tokens.push(take().await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _: () = server.cmd(&["SET", &fence, &old_state, "PX", &old_ttl.to_string()]);
        tokens.push(take().await);
        assert_strictly_increasing(&tokens, &format!("{family:?}, after a rollback"));
        family.assert_released(&server, &name);
    }
}
