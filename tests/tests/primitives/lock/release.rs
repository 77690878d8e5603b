//! Every way a holder lets go (unlock, drop, panic, a cancelled future), waiting with a deadline,
//! and reentrancy by scope.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::LockClient;
use lock_tests::{
    RedisServer, TcpProxy, Workers,
    locks::{assert_released, await_no_subscriptions, connect, eventually, is_held, queue_len},
    unique_name,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_acquire_times_out_after_the_wait_while_another_holds_the_lock() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("timeout");
    let holder = client.lock(&name).acquire().await.expect("acquire");

    let wait = Duration::from_millis(700);
    let started = Instant::now();
    let err = client
        .lock(&name)
        .try_acquire(wait, None)
        .await
        .expect_err("held by another");
    let waited = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string().contains(&name),
        "the message names the lock: {err}"
    );
    assert!(waited >= wait, "gave up early, after {waited:?}");
    assert!(
        waited < wait + Duration::from_millis(300),
        "gave up late, after {waited:?}"
    );

    holder.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_releases_the_lock() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("dropped");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    assert!(is_held(&server, &name));

    drop(guard);

    assert!(eventually(Duration::from_secs(2), || !is_held(&server, &name)).await);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_cancelled_while_holding_releases_the_lock() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("cancelled");
    let lock = client.lock(&name);

    let work = async {
        let _guard = lock.acquire().await?;
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, lock_runtime::LockError>(())
    };
    tokio::time::timeout(Duration::from_millis(200), work)
        .await
        .expect_err("the timeout cancels the holder");

    assert!(eventually(Duration::from_secs(2), || !is_held(&server, &name)).await);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_holder_releases_the_lock() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("panicked");
    let lock = client.lock(&name);

    let task = tokio::spawn({
        let lock = lock.clone();
        async move {
            let _guard = lock.acquire().await.expect("acquire");
            panic!("the critical section failed");
        }
    });
    assert!(task.await.expect_err("the task panicked").is_panic());

    assert!(eventually(Duration::from_secs(2), || !is_held(&server, &name)).await);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiters_leave_nothing_behind() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("cancelled-waiters");
    let holder = client.lock(&name).acquire().await.expect("acquire");

    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let lock = client.lock(&name);
            tokio::spawn(async move { lock.acquire().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for waiter in &waiters {
        waiter.abort();
    }
    for waiter in waiters {
        assert!(waiter.await.expect_err("aborted").is_cancelled());
    }
    holder.unlock().await.expect("unlock");

    await_no_subscriptions(&server).await;
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_millis(100), None)
        .await
        .expect("nothing was left holding the lock");
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reacquiring_inside_the_guards_scope_reenters_without_a_new_token() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("reentrant");
    let lock = client.lock(&name);

    let outer = lock.acquire().await.expect("acquire");
    let token = outer.fencing_token();
    outer
        .scope(async {
            assert_eq!(lock_runtime::fencing_token(), Some(token));
            let inner = lock
                .try_acquire(Duration::from_millis(100), None)
                .await
                .expect("re-entry does not wait for itself");
            assert_eq!(inner.fencing_token(), token, "re-entry keeps the token");
            let holds = lock_tests::locks::hold_counts(&server, &name);
            assert_eq!(holds, vec![2]);
            inner.unlock().await.expect("inner unlock");
            assert!(is_held(&server, &name), "the outer hold remains");
        })
        .await;
    assert_eq!(lock_runtime::fencing_token(), None);
    outer.unlock().await.expect("outer unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_futures_joined_in_one_task_exclude_each_other() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("joined");
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));

    let critical_section = || {
        let lock = client.lock(&name);
        let inside = Arc::clone(&inside);
        let overlaps = Arc::clone(&overlaps);
        async move {
            for _ in 0..5 {
                let guard = lock.acquire().await.expect("acquire");
                guard
                    .scope(async {
                        if inside.fetch_add(1, Ordering::SeqCst) > 0 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                guard.unlock().await.expect("unlock");
            }
        }
    };
    tokio::join!(critical_section(), critical_section());

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two scopes held the lock at once"
    );
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_does_not_swallow_the_next_waiters_wake_up() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("forwarded");
    let holder = client.lock(&name).acquire().await.expect("acquire");

    let first = tokio::spawn({
        let lock = client.lock(&name);
        async move { lock.acquire().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = tokio::spawn({
        let lock = client.lock(&name);
        async move { lock.try_acquire(Duration::from_secs(20), None).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    holder.unlock().await.expect("unlock");

    let started = Instant::now();
    let guard = second.await.expect("join").expect("second waiter");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the wake-up was lost: the waiter slept until the TTL"
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// A guard dropped on a plain thread, after the runtime that took the lock is gone, still
/// releases the lock: the release runs on the library's background runtime.
#[test]
fn a_guard_dropped_outside_any_runtime_is_released() {
    let server = RedisServer::start();
    let name = unique_name("no-runtime");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let guard = runtime.block_on(async {
        let client = connect(&server).await;
        client.lock(&name).acquire().await.expect("acquire")
    });
    drop(runtime);
    assert!(is_held(&server, &name), "held until the guard goes");

    drop(guard);

    let deadline = Instant::now() + Duration::from_secs(2);
    while is_held(&server, &name) {
        assert!(
            Instant::now() < deadline,
            "the lock stayed held after its guard was dropped outside any runtime"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_released(&server, &name);
}

/// `LockClient::flush` returns once the releases and undos the client runs in the background
/// have reached Redis: a dropped guard, an `unlock()` cancelled on the wire, a waiter given up
/// while queued. Every round trip takes 300 ms more through the proxy, so had it not waited,
/// the locks would still be held when it returns. Dropped itself, it leaves the work running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_the_work_running_in_the_background() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = LockClient::connect(&proxy.url()).await.expect("connect");
    let names = ["dropped", "unlock-cancelled", "waited-on"].map(unique_name);
    let mut guards = Vec::new();
    for name in &names {
        guards.push(client.lock(name).acquire().await.expect("acquire"));
    }
    let waiter = {
        let lock = client.lock(&names[2]);
        tokio::spawn(async move { lock.acquire().await.map(drop) })
    };
    assert!(
        eventually(Duration::from_secs(5), || queue_len(&server, &names[2])
            == 1)
        .await
    );
    proxy.set_delay(Duration::from_millis(150));

    waiter.abort();
    let [dropped, unlocked, waited_on] = <[_; 3]>::try_from(guards).expect("three guards");
    drop(dropped);
    tokio::time::timeout(Duration::from_millis(10), unlocked.unlock())
        .await
        .expect_err("the unlock is cancelled on the wire");
    drop(waited_on);
    let started = Instant::now();
    client.flush().await;
    let waited = started.elapsed();

    for name in &names {
        assert!(!is_held(&server, name), "`{name}` still held after flush");
    }
    assert_eq!(
        queue_len(&server, &names[2]),
        0,
        "the waiter left the queue"
    );
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );

    let name = unique_name("flush-dropped");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    drop(guard);
    tokio::time::timeout(Duration::from_millis(20), client.flush())
        .await
        .expect_err("the release is still on its way");
    assert!(eventually(Duration::from_secs(3), || !is_held(&server, &name)).await);
    // Its reply is still 150 ms away.
    client.flush().await;

    proxy.set_delay(Duration::ZERO);
    let started = Instant::now();
    client.flush().await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "nothing to wait for"
    );
    for name in names.iter().chain([&name]) {
        assert_released(&server, name);
    }
}

/// A process that drops a guard and exits releases the lock if it flushes first: its release,
/// 400 ms on its way through the proxy, reaches Redis before the process ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_flushes_before_exiting_leaves_no_lock_held() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let name = unique_name("exit");
    proxy.set_delay(Duration::from_millis(200));

    let outputs = Workers::command(env!("CARGO_BIN_EXE_lock-worker"))
        .worker(["drop-and-exit", &proxy.url(), &name])
        .spawn()
        .wait_all_async(Duration::from_secs(30))
        .await;

    assert!(outputs[0].status.success(), "{}", outputs[0].stderr);
    assert!(
        outputs[0].stdout.contains("flushed=1"),
        "{}",
        outputs[0].stdout
    );
    assert!(!is_held(&server, &name), "the lock outlived the process");
    assert_released(&server, &name);
}
