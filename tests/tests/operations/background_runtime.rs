//! A client given a runtime of the application's (`LockClientBuilder::background_runtime`):
//! its connections, listener, watchdog and background releases run there, and it keeps every
//! promise of a client on the library's own runtime while that runtime runs; once the runtime
//! has shut down, its requests are refused with a clear error, and a lock it held runs out by
//! its lease, as any lost lease does.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError, Mistake};
use lock_tests::{
    RedisServer,
    locks::{Family, assert_released, eventually, held_with_a_waiter, is_held, queue_len},
    unique_name,
};
use tokio::runtime::{Builder, Handle, Runtime};

/// A client of `server` given the runtime it is built on.
async fn client_on_this_runtime(server: &RedisServer) -> LockClient {
    LockClient::builder()
        .url(server.url())
        .background_runtime(Handle::current())
        .build()
        .await
        .expect("connect")
}

/// A multi-threaded runtime of one worker, for a test that runs two and drops one.
fn one_worker_runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A waiter on a lock of `client` that its holder took with a 5 s lease gets it from the
/// holder's release, well before the lease runs out; the lock is free after.
async fn handed_off_by_the_release(server: &RedisServer, client: &LockClient, prefix: &str) {
    let name = unique_name(prefix);
    let (holder, waiter) = held_with_a_waiter(
        Family::Reentrant,
        (client, client),
        &name,
        Some(Duration::from_secs(5)),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(2), || queue_len(server, &name) == 1).await,
        "the waiter queues"
    );
    let released = Instant::now();
    holder.unlock().await.expect("release");
    let guard = waiter.await.expect("waiter task").expect("waiter");
    assert!(
        released.elapsed() < Duration::from_secs(2),
        "woken by the release, not by the holder's 5 s lease: {:?}",
        released.elapsed()
    );
    guard.unlock().await.expect("the waiter's release");
    assert_released(server, &name);
}

/// A client on the given runtime: its tasks are that runtime's, a release wakes a waiter at
/// once (the listener runs there), and the watchdog renews a lock held past several leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_given_the_runtime_does_its_work_there() {
    let server = RedisServer::start();
    let runtime = Handle::current();
    let before = runtime.metrics().num_alive_tasks();
    let client = LockClient::builder()
        .url(server.url())
        .watchdog_timeout(Duration::from_millis(300))
        .background_runtime(runtime.clone())
        .build()
        .await
        .expect("connect");
    // At least the hub's listener, the watchdog's renewals and the task that watches the
    // runtime; a client on the library's runtime adds none here.
    let spawned = runtime.metrics().num_alive_tasks() - before;
    assert!(
        spawned >= 3,
        "{spawned} tasks of the client on this runtime"
    );

    let renewed = unique_name("given-runtime-renewed");
    let kept = client
        .lock(&renewed)
        .acquire()
        .await
        .expect("watchdog lock");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !kept.is_lease_lost() && is_held(&server, &renewed),
        "a 300 ms watchdog lease renewed for a second"
    );
    kept.unlock().await.expect("release the renewed lock");

    assert_released(&server, &renewed);
    handed_off_by_the_release(&server, &client, "given-runtime-hand-off").await;
}

/// On a current-thread runtime (the one of `#[tokio::test]`), where the client's tasks and the
/// ones they serve share the one thread: a waiter is handed the lock by the release, not by
/// the holder's lease.
#[tokio::test]
async fn a_client_given_a_current_thread_runtime_hands_off() {
    let server = RedisServer::start();
    let client = client_on_this_runtime(&server).await;
    handed_off_by_the_release(&server, &client, "given-current-thread").await;
}

/// Runtime A, given to the client, shuts down while the client holds a lock; from runtime B,
/// the client's requests are refused as a misuse naming the setting, the guard's lease is lost
/// by its deadline (no renewal, no panic), and the lock's key expires with its lease.
#[test]
fn a_client_whose_runtime_shut_down_refuses_requests() {
    let server = RedisServer::start();
    let name = unique_name("stopped-runtime");
    let lease = Duration::from_millis(1500);
    let runtime_a = one_worker_runtime();
    let (client, guard) = runtime_a.block_on(async {
        let client = client_on_this_runtime(&server).await;
        let guard = client
            .lock(&name)
            .try_acquire(Duration::from_secs(1), Some(lease))
            .await
            .expect("lock in runtime A");
        (client, guard)
    });
    drop(runtime_a);

    let runtime_b = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime B");
    runtime_b.block_on(async {
        let err = client
            .lock(unique_name("after-shutdown"))
            .try_acquire(Duration::from_secs(1), None)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                LockError::Config {
                    mistake: Mistake::Misuse,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("background_runtime"), "{err}");
        tokio::time::timeout(Duration::from_secs(3), guard.lease_lost())
            .await
            .expect("the lease is lost by its deadline");
        let unlocked = guard.unlock().await.expect_err("nothing to release with");
        assert!(unlocked.is_misuse(), "{unlocked}");
        assert!(
            eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
            "the lock's key expires with its lease"
        );
    });
    assert_released(&server, &name);
}

/// A task of runtime B waits for a lock through a client given runtime A, and runtime A shuts
/// down meanwhile: the waiter is not woken by the releases of a listener that is gone, but its
/// timer (the library's, not runtime A's, which Tokio would panic on) wakes it at the holder's
/// lease, and its next try is refused as a misuse. It took nothing.
#[test]
fn a_waiter_elsewhere_is_refused_once_the_clients_runtime_shut_down() {
    let server = RedisServer::start();
    let name = unique_name("waiting-through-shutdown");
    let runtime_a = one_worker_runtime();
    let client = runtime_a.block_on(client_on_this_runtime(&server));
    let runtime_b = one_worker_runtime();
    let (holder, waiter) = runtime_b.block_on(async {
        let other = LockClient::connect(&server.url()).await.expect("connect");
        let (holder, waiter) = held_with_a_waiter(
            Family::Reentrant,
            (&other, &client),
            &name,
            Some(Duration::from_secs(1)),
        )
        .await;
        assert!(
            eventually(Duration::from_secs(2), || queue_len(&server, &name) == 1).await,
            "the waiter queues"
        );
        (holder, waiter)
    });
    drop(runtime_a);
    runtime_b.block_on(async {
        let refused = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter ends")
            .expect("the waiter's task did not panic")
            .expect_err("refused");
        assert!(refused.is_misuse(), "{refused}");
        // Its lease of 1 s has run out by now: the release finds nothing to give back.
        let _ = holder.unlock().await;
        assert!(
            eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
            "the holder's lock expires with its lease"
        );
    });
    assert_released(&server, &name);
}

/// Runtime A, given to the client, shuts down while a release runs there in the background (its
/// Redis paused, it waits for the reply): the release is dropped with the runtime, and `flush`
/// from runtime B returns rather than wait for work that can no longer run. The lock then runs
/// out by its lease.
#[test]
fn flush_returns_once_the_clients_runtime_shut_down_under_its_work() {
    let server = RedisServer::start();
    let name = unique_name("flush-stopped");
    let runtime_a = one_worker_runtime();
    let client = runtime_a.block_on(async {
        let client = client_on_this_runtime(&server).await;
        let guard = client
            .lock(&name)
            .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(1500)))
            .await
            .expect("lock in runtime A");
        server.pause();
        drop(guard);
        tokio::time::timeout(Duration::from_millis(200), client.flush())
            .await
            .expect_err("the release waits for the paused Redis");
        client
    });
    drop(runtime_a);
    server.resume();

    let runtime_b = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime B");
    runtime_b.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), client.flush())
            .await
            .expect("nothing left to wait for");
        assert!(
            eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
            "the lock's key expires with its lease"
        );
    });
    assert_released(&server, &name);
}
