//! The default client works from any Tokio runtime (DESIGN 3.0): its background tasks (the
//! subscription hub's listener, the lease watchdog) must not die with the runtime that happened
//! to build it. A client kept in a `static` is used from many runtimes: every `#[tokio::test]`
//! has its own, and so does every `Runtime::block_on` in a program.
//!
//! Each test builds "runtime A" on a thread of its own, connects a client there, makes it the
//! default client, takes and releases a lock once, and drops runtime A. The test's own runtime
//! is "runtime B", where the default client must still wake waiters, renew leases and serve
//! `#[distribute_lock]`.
//!
//! The default client is process-wide, so these tests take turns with every test of this binary
//! that sets it ([`crate::DEFAULT_CLIENT`]).

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    RedisServer,
    locks::{assert_released, eventually, lock_key, subscribers, take_once, unlock_channel},
    unique_name,
};

use crate::DEFAULT_CLIENT;

/// Builds runtime A on its own thread, connects a client to `url` there (with this watchdog
/// timeout), makes it the default client, takes and releases a lock once, and drops runtime A.
async fn default_client_from_an_ended_runtime(url: &str, watchdog: Duration) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let runtime_a = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime A");
        runtime_a.block_on(async {
            let client = LockClient::builder()
                .url(url)
                .watchdog_timeout(watchdog)
                .build()
                .await
                .expect("connect in runtime A");
            lock_runtime::set_default_client(client.clone());
            take_once(&client, &unique_name("runtime-a")).await;
        });
        drop(runtime_a);
    })
    .await
    .expect("runtime A's thread");
}

/// In runtime B, a waiter on the default client gets the lock promptly when the holder releases
/// it: within 1.5 s, where the holder's fixed lease is 5 s. Before the core rewrite (issue 8), the hub's listener died with
/// runtime A, so the waiter never subscribes, no release wakes it, and it gets the lock only
/// when the holder's lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_on_the_default_client_is_woken_in_another_runtime() {
    let _turn = DEFAULT_CLIENT.lock().await;
    let server = RedisServer::start();
    default_client_from_an_ended_runtime(&server.url(), Duration::from_secs(30)).await;
    let client = lock_runtime::default_client()
        .await
        .expect("the default client");
    let name = unique_name("woken-in-b");

    let lease = Duration::from_secs(5);
    let holder = client
        .lock(&name)
        .try_acquire(Duration::from_secs(2), Some(lease))
        .await
        .expect("holder in runtime B");
    let lock = client.lock(&name);
    let waiter = tokio::spawn(async move {
        let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
        let acquired = Instant::now();
        guard.unlock().await?;
        Ok::<_, LockError>(acquired)
    });
    // Let the waiter subscribe (not asserted: a late subscriber retries once confirmed, and
    // before the core rewrite nobody ever subscribed, which the hand-off time below shows).
    eventually(Duration::from_secs(2), || {
        subscribers(&server, &unlock_channel(&name)) == 1
    })
    .await;

    let released = Instant::now();
    holder.unlock().await.expect("holder unlock");
    let acquired = tokio::time::timeout(Duration::from_secs(12), waiter)
        .await
        .expect("the waiter finishes within its wait")
        .expect("join")
        .expect("the waiter gets the lock");
    let hand_off = acquired.saturating_duration_since(released);
    assert!(
        hand_off < Duration::from_millis(1_500),
        "the waiter got the lock {hand_off:?} after the release (the holder's lease was \
         {lease:?}): the default client's hub died with the runtime that built it"
    );
    assert_released(&server, &name);
}

/// In runtime B, a watchdog-mode guard of the default client (watchdog timeout 1 s) keeps its
/// lock for 3 s: the lease is not lost and the key is still in Redis. Before the core rewrite (issue 8), the watchdog task
/// died with runtime A, so nothing renews the lock and it expires after 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watchdog_lease_of_the_default_client_is_renewed_in_another_runtime() {
    let _turn = DEFAULT_CLIENT.lock().await;
    let server = RedisServer::start();
    let watchdog = Duration::from_secs(1);
    default_client_from_an_ended_runtime(&server.url(), watchdog).await;
    let client = lock_runtime::default_client()
        .await
        .expect("the default client");
    let name = unique_name("renewed-in-b");

    let guard = client.lock(&name).acquire().await.expect("acquire in B");
    tokio::time::sleep(watchdog * 3).await;
    let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
    assert!(
        !guard.is_lease_lost() && pttl > 0,
        "after 3 watchdog timeouts the lease must still be held and renewed: lease lost = {}, \
         pttl = {pttl} ms (-2: the key expired): the watchdog died with the runtime that built \
         the client",
        guard.is_lease_lost()
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// Runs 2.5 s under the lock of `name` taken through the default client (watchdog mode), and
/// returns when the body started and ended.
#[distribute_lock(key = "{name}", wait = "10s")]
async fn hold_for_a_while(name: &str) -> Result<(Instant, Instant), LockError> {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    Ok((started, Instant::now()))
}

/// `#[distribute_lock]` on the default client, called in runtime B: two calls joined in one
/// task (they exclude each other) each run 2.5 s, more than twice the 1 s watchdog timeout.
/// Both must succeed, without overlapping, and the second must start within 1.5 s of the
/// first's end. Before the core rewrite (issue 8), the first call's lease is lost after ~1 s (no watchdog), so the attribute
/// aborts its body with `LeaseLost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attribute_on_the_default_client_works_in_another_runtime() {
    let _turn = DEFAULT_CLIENT.lock().await;
    let server = RedisServer::start();
    default_client_from_an_ended_runtime(&server.url(), Duration::from_secs(1)).await;
    let name = unique_name("attribute-in-b");

    let (a, b) = tokio::join!(hold_for_a_while(&name), hold_for_a_while(&name));
    let a = a.expect("the first call through the attribute");
    let b = b.expect("the second call through the attribute");
    let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    assert!(first.1 <= second.0, "the two bodies overlapped");
    let hand_off = second.0 - first.1;
    assert!(
        hand_off < Duration::from_millis(1_500),
        "the second call started {hand_off:?} after the first ended"
    );
    assert_released(&server, &name);
}
