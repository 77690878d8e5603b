//! Re-entry is for nested calls, and stays exclusive and cancel-safe (DESIGN 3.2, 3.3): two
//! futures joined inside a held scope that both re-enter it run one at a time (or a body's
//! `join!(withdraw(), deposit())` would race under its own lock), and a re-entry cancelled after
//! its request ran in Redis leaves no extra hold behind.
//!
//! Exclusion is shown with a read-modify-write of a Redis counter (GET, 20 ms pause, SET + 1)
//! through a plain connection: two that overlap lose an increment.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    RedisServer, TcpProxy,
    locks::{assert_released, eventually, hold_counts, lock_key, take_once},
    ran_by_each_call, unique_name,
};

/// A server, a client, a lock name, and the counter the critical sections increment.
struct Fixture {
    server: RedisServer,
    client: LockClient,
    name: String,
    counter: String,
    redis: redis::aio::MultiplexedConnection,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        let redis = server.async_connection().await;
        let name = unique_name(prefix);
        Self {
            counter: format!("counter-of-{name}"),
            server,
            client,
            name,
            redis,
        }
    }

    /// GET the counter, pause 20 ms, SET it one higher: not atomic, so two at once lose one.
    async fn read_modify_write(&self) {
        let mut redis = self.redis.clone();
        let value: Option<i64> = redis::cmd("GET")
            .arg(&self.counter)
            .query_async(&mut redis)
            .await
            .expect("GET");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let () = redis::cmd("SET")
            .arg(&self.counter)
            .arg(value.unwrap_or(0) + 1)
            .query_async(&mut redis)
            .await
            .expect("SET");
    }

    fn counter(&self) -> i64 {
        self.server
            .cmd::<Option<i64>>(&["GET", &self.counter])
            .unwrap_or(0)
    }
}

/// Inside the scope of a held lock, two joined futures each re-enter the lock and do a
/// read-modify-write of the counter, then unlock their re-entry. They must take turns: the
/// counter ends at 2. Before the core rewrite (issue 8), re-entry never waits, so both read 0 and the counter ends at 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentries_joined_inside_one_scope_exclude_each_other() {
    let f = Fixture::new("joined-reentries").await;
    let lock = f.client.lock(&f.name);
    let outer = lock.acquire().await.expect("outer");

    let increment = || async {
        let inner = lock
            .try_acquire(Duration::from_secs(5), None)
            .await
            .expect("re-entry");
        f.read_modify_write().await;
        inner.unlock().await.expect("re-entry unlock");
    };
    outer
        .scope(async { tokio::join!(increment(), increment()) })
        .await;

    assert_eq!(
        f.counter(),
        2,
        "two re-entries of one scope ran their read-modify-write at the same time"
    );
    outer.unlock().await.expect("outer unlock");
    assert_released(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client, wait = "5s")]
async fn add_one(f: &Fixture) -> Result<(), LockError> {
    f.read_modify_write().await;
    Ok(())
}

#[distribute_lock(key = "{f.name}", client = f.client, wait = "5s")]
async fn add_two_at_once(f: &Fixture) -> Result<(), LockError> {
    let (first, second) = tokio::join!(add_one(f), add_one(f));
    first.and(second)
}

/// The same through the attribute: a locked function joins two calls of another locked
/// function with the same key, which both re-enter its lock. They must take turns: the counter
/// ends at 2 (1 before the core rewrite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_calls_joined_inside_a_locked_call_exclude_each_other() {
    let f = Fixture::new("joined-attribute-reentries").await;

    add_two_at_once(&f).await.expect("the locked calls");

    assert_eq!(
        f.counter(),
        2,
        "two re-entering calls joined inside a locked call ran at the same time"
    );
    assert_released(&f.server, &f.name);
}

/// A re-entry cancelled after its request ran in Redis but before the reply came back is
/// undone. Through a proxy that delays each direction by 150 ms (a round trip of 300 ms or
/// more), inside the outer guard's scope, `tokio::time::timeout(200 ms, lock.acquire())` gives
/// up while the re-entry's request is already on its way: Redis counts a second hold the
/// client never sees. Then `outer.unlock()` must succeed and the lock must be gone within
/// 1.5 s. Before the core rewrite (issue 8), the dropped re-entry is not undone: the outer unlock only takes the hold count
/// from 2 to 1, and the lock stays until its watchdog lease (30 s) runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentry_cancelled_after_its_request_ran_leaves_no_extra_hold() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = LockClient::connect(&proxy.url()).await.expect("connect");
    let name = unique_name("cancelled-reentry");
    let lock = client.lock(&name);
    // Take and release once, so the scripts are cached and the re-entry runs at first send.
    lock.acquire()
        .await
        .expect("warm-up")
        .unlock()
        .await
        .expect("warm-up unlock");

    let outer = lock.acquire().await.expect("outer");
    proxy.set_delay(Duration::from_millis(150));
    outer
        .scope(async {
            let reentry = tokio::time::timeout(Duration::from_millis(200), lock.acquire()).await;
            assert!(
                reentry.is_err(),
                "the re-entry must still wait for its reply when cancelled (150 ms each way): {:?}",
                reentry.map(|inner| inner.map(|guard| guard.fencing_token()))
            );
        })
        .await;

    outer.unlock().await.expect("outer unlock");
    let released = eventually(Duration::from_millis(1_500), || {
        server.cmd::<i64>(&["EXISTS", &lock_key(&name)]) == 0
    })
    .await;
    if !released {
        let holds = lock_tests::locks::hold_counts(&server, &name);
        let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
        panic!(
            "the lock is still held 1.5 s after the outer unlock, with hold count {holds:?} and \
             pttl {pttl} ms: the cancelled re-entry's hold was never undone"
        );
    }
    assert_released(&server, &name);
}

/// A re-entry waiting for its scope's turn (another re-entry of the same scope holds it) may be
/// dropped there: nothing was sent, nothing is counted, and the turn goes to the next re-entry
/// once the first is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentry_dropped_while_waiting_for_its_turn_takes_nothing() {
    let f = Fixture::new("turn-dropped").await;
    let lock = f.client.lock(&f.name);
    let outer = lock.acquire().await.expect("acquire");
    outer
        .scope(async {
            let first = lock.acquire().await.expect("first re-entry");
            let second = tokio::time::timeout(Duration::from_millis(200), lock.acquire()).await;
            assert!(
                second.is_err(),
                "the second re-entry waited for the first's turn"
            );
            let holds = hold_counts(&f.server, &f.name);
            assert_eq!(holds, vec![2], "the dropped re-entry counted no hold");
            first.unlock().await.expect("first unlock");
            let third = tokio::time::timeout(Duration::from_millis(500), lock.acquire())
                .await
                .expect("the turn is free again")
                .expect("third re-entry");
            third.unlock().await.expect("third unlock");
        })
        .await;
    outer.unlock().await.expect("outer unlock");
    assert_released(&f.server, &f.name);
}

/// A guard's scope may outlive the guard (`scope` does not borrow it). Once the guard's release
/// began, a re-entry from that scope is refused without a request: the release named its hold
/// as the owner's only one, which reads no re-entry record (see `Reentries`), so no re-entry
/// may count after it. Without that rule the re-entry is sent, and a copy of the release landing
/// after it would free the lock under the re-entry's guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_outlives_its_guard_reenters_nothing_once_the_release_began() {
    let f = Fixture::new("reentry-after-release").await;
    let lock = f.client.lock(&f.name);
    // Scripts loaded, so each call below runs at once.
    take_once(&f.client, &f.name).await;
    let outer = lock.acquire().await.expect("outer");
    let scope = outer.scope(async { lock.acquire().await });
    let monitor = f.server.monitor();
    outer.unlock().await.expect("outer unlock");
    let reentry = scope.await;
    let calls = ran_by_each_call(&monitor.stop());
    assert!(
        matches!(reentry, Err(LockError::LeaseLost { .. })),
        "a re-entry once its guard's release began: {:?}",
        reentry.map(|guard| guard.fencing_token())
    );
    assert_eq!(
        calls,
        [["hget", "incr", "del", "exists"]],
        "one request, the release of the only hold: no re-entry sent"
    );
    assert_released(&f.server, &f.name);
}

/// A re-entry whose guard leaves the scope (it is returned from it) may outlive the guard of
/// the acquisition. That release then names the acquisition's hold by its number and reads the
/// owner's re-entry record: the lock stays held by the re-entry, and is freed by its release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentry_outliving_the_acquisitions_guard_keeps_the_lock_until_its_own_release() {
    let f = Fixture::new("reentry-outlives-outer").await;
    let lock = f.client.lock(&f.name);
    // Scripts loaded, so each call below runs at once.
    take_once(&f.client, &f.name).await;
    let outer = lock.acquire().await.expect("outer");
    let inner = outer
        .scope(async { lock.acquire().await })
        .await
        .expect("re-entry");
    let monitor = f.server.monitor();
    outer.unlock().await.expect("outer unlock");
    let calls = ran_by_each_call(&monitor.stop());
    assert_eq!(
        calls,
        [["hmget", "hset"]],
        "the acquisition's hold released by number, the re-entry's left"
    );
    assert_eq!(
        hold_counts(&f.server, &f.name),
        [1],
        "the re-entry's hold is left"
    );
    inner.unlock().await.expect("inner unlock");
    assert_released(&f.server, &f.name);
}
