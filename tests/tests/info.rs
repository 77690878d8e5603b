//! What a lock tells an operator (issue "Operations"): `Lock::info` and `FairLock::info` (who
//! holds it, since when, how often re-entered, how long its lease has left, who waits, the last
//! token) and `LockClient::held_locks` (which locks are held), against a real Redis.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, LockInfo};
use lock_tests::{
    RedisServer,
    locks::{assert_released, await_queued, client_named, lock_key, spawn_waiters},
    unique_name,
};

/// Asserts that `info` describes a lock nobody holds and nobody waits for.
fn assert_free(info: &LockInfo, name: &str) {
    assert_eq!(info.name(), name);
    assert!(!info.is_held(), "{info:?}");
    assert!(info.holder().is_none(), "{info:?}");
    assert_eq!(info.waiters(), 0, "{info:?}");
    assert!(info.queue().is_empty(), "{info:?}");
}

/// What of `info` stays the same while nobody takes, releases or waits for the lock: the
/// holder's owner id, client name and hold count, the waiters and the token.
fn unchanging(info: &LockInfo) -> impl PartialEq + std::fmt::Debug + use<> {
    let holder = info.holder().map(|h| {
        (
            h.owner().to_owned(),
            h.client_name().map(str::to_owned),
            h.hold_count(),
        )
    });
    (holder, info.queue().to_vec(), info.last_fencing_token())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_free_lock_says_free() {
    let server = RedisServer::start();
    let client = client_named(&server, "inspector").await;
    let name = unique_name("info-free");
    let info = client.lock(&name).info().await.expect("info");
    assert_free(&info, &name);
    assert_eq!(info.last_fencing_token(), None, "never taken");
    assert_eq!(client.fair_lock(&name).info().await.expect("info"), info);
    // Describing writes nothing.
    assert!(server.keys(&format!("*{name}*")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_names_the_holder_since_when_its_lease_and_token() {
    let server = RedisServer::start();
    let holding = client_named(&server, "orders-api@host-3").await;
    let inspecting = client_named(&server, "inspector").await;
    let name = unique_name("info-held");
    let guard = holding
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(20)))
        .await
        .expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let info = inspecting.lock(&name).info().await.expect("info");
    assert!(info.is_held());
    let holder = info.holder().expect("held");
    assert_eq!(holder.client_name(), Some("orders-api@host-3"));
    assert!(
        holder.owner().starts_with(&format!("{}:", holding.id())),
        "{} is not an owner id of client {}",
        holder.owner(),
        holding.id()
    );
    assert_eq!(holder.hold_count(), 1);
    let held_for = holder.held_for().expect("recorded");
    assert!(
        held_for >= Duration::from_millis(250) && held_for < Duration::from_secs(5),
        "{held_for:?}"
    );
    let ttl = holder.ttl().expect("a lease");
    assert!(
        ttl > Duration::from_secs(15) && ttl <= Duration::from_secs(20),
        "{ttl:?}"
    );
    assert_eq!(info.last_fencing_token(), Some(guard.fencing_token()));
    assert_eq!(info.waiters(), 0);
    // The fair lock of the same name is the same lock (its times have moved on meanwhile).
    let fair = inspecting.fair_lock(&name).info().await.expect("info");
    assert_eq!(unchanging(&fair), unchanging(&info));

    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_counts_the_holds_of_a_reentered_lock() {
    let server = RedisServer::start();
    let client = client_named(&server, "reentrant").await;
    let name = unique_name("info-reentered");
    let lock = client.lock(&name);
    let guard = lock.acquire().await.expect("free");
    let counts = guard
        .scope(async {
            let inner = lock.acquire().await.expect("re-entered");
            // One re-entry at a time per scope: the next one nests in the inner guard's scope.
            let three = inner
                .scope(async {
                    let innermost = lock.acquire().await.expect("re-entered twice");
                    let three = lock.info().await.expect("info");
                    innermost.unlock().await.expect("unlock innermost");
                    three
                })
                .await;
            inner.unlock().await.expect("unlock inner");
            let one = lock.info().await.expect("info");
            [three, one].map(|info| info.holder().expect("held").hold_count())
        })
        .await;
    assert_eq!(counts, [3, 1]);
    let info = lock.info().await.expect("info");
    assert_eq!(
        info.last_fencing_token(),
        Some(guard.fencing_token()),
        "re-entries take no token"
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_counts_and_lists_waiting_tasks_then_none_after_release() {
    let server = RedisServer::start();
    let holding = client_named(&server, "holder").await;
    let waiting = client_named(&server, "waiter").await;
    let name = unique_name("info-waiters");
    let guard = holding.lock(&name).acquire().await.expect("free");
    let waiters = spawn_waiters(&waiting, &name, 3, Duration::from_secs(10));
    await_queued(&server, &name, 3).await;

    let info = holding.lock(&name).info().await.expect("info");
    assert_eq!(info.waiters(), 3, "{info:?}");
    assert_eq!(info.queue().len(), 3, "{info:?}");
    for owner in info.queue() {
        assert!(owner.starts_with(&format!("{}:", waiting.id())), "{owner}");
    }
    assert_eq!(info.holder().and_then(|h| h.client_name()), Some("holder"));

    guard.unlock().await.expect("unlock");
    for waiter in waiters {
        waiter
            .await
            .expect("join")
            .expect("each waiter gets the lock");
    }
    let info = holding.lock(&name).info().await.expect("info");
    assert_free(&info, &name);
    assert!(
        info.last_fencing_token().is_some(),
        "tokens were handed out"
    );
    assert_released(&server, &name);
}

/// The fair lock's queue is listed in the order it serves: the order of the waiters' first try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_lists_the_fair_queue_in_the_order_it_is_served() {
    let server = RedisServer::start();
    let holding = client_named(&server, "holder").await;
    let name = unique_name("info-fair-queue");
    let guard = holding.fair_lock(&name).acquire().await.expect("free");
    let mut clients = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..3 {
        let client = client_named(&server, &format!("waiter-{i}")).await;
        let lock = client.fair_lock(&name);
        waiters.push(tokio::spawn(
            async move { lock.acquire().await?.unlock().await },
        ));
        await_queued(&server, &name, i + 1).await;
        clients.push(client);
    }
    let info = holding.fair_lock(&name).info().await.expect("info");
    assert_eq!(info.waiters(), 3);
    let queue: Vec<_> = info.queue().iter().map(String::as_str).collect();
    for (owner, client) in queue.iter().zip(&clients) {
        assert!(owner.starts_with(&format!("{}:", client.id())), "{queue:?}");
    }
    guard.unlock().await.expect("unlock");
    for waiter in waiters {
        waiter.await.expect("join").expect("served in turn");
    }
    assert_free(&holding.fair_lock(&name).info().await.expect("info"), &name);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_key_of_another_type_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let client = client_named(&server, "inspector").await;
    let name = unique_name("info-wrong-type");
    let _: () = server.cmd(&["SET", &lock_key(&name), "someone else's"]);
    for result in [
        client.lock(&name).info().await,
        client.fair_lock(&name).info().await,
    ] {
        match result {
            Err(LockError::WrongType { found, .. }) => assert_eq!(found, "string"),
            other => panic!("expected WrongType, got {other:?}"),
        }
    }
    let err = client.lock("a{b}").info().await.expect_err("braces");
    assert!(matches!(err, LockError::InvalidName { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_held_locks_lists_the_held_locks_of_the_prefix_only() {
    let server = RedisServer::start();
    let client = client_named(&server, "lister").await;
    let base = unique_name("info-list");
    let names: Vec<String> = ["a", "b", "c"].map(|s| format!("{base}:{s}")).into();
    let mut guards = Vec::new();
    for name in &names {
        guards.push(client.lock(name).acquire().await.expect("free"));
    }
    // Neither the fair lock's waiters, a read-write lock, a released lock, a string at a lock's
    // key nor another prefix's lock is a held lock of this prefix.
    let released = format!("{base}:released");
    client
        .lock(&released)
        .acquire()
        .await
        .expect("free")
        .unlock()
        .await
        .expect("unlock");
    let read = client
        .read_write_lock(format!("{base}:rw"))
        .read()
        .acquire()
        .await
        .expect("read");
    let _: () = server.cmd(&["SET", &lock_key(&format!("{base}:string")), "x"]);
    let other = LockClient::builder()
        .url(server.url())
        .key_prefix("lock*")
        .build()
        .await
        .expect("connect");
    let foreign = other
        .lock(format!("{base}:foreign"))
        .acquire()
        .await
        .expect("free");

    let listed = client
        .held_locks(&format!("{base}:*"), 100)
        .await
        .expect("list");
    assert_eq!(listed, names);
    let one = client
        .held_locks(&format!("{base}:?"), 1)
        .await
        .expect("list");
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(names.contains(&one[0]), "{one:?}");
    assert_eq!(
        other.held_locks("*", 100).await.expect("list"),
        [format!("{base}:foreign")],
        "the prefix `lock*` is matched as written, not as a glob"
    );
    assert!(client.held_locks("*", 0).await.expect("list").is_empty());
    let err = client.held_locks("{x}", 10).await.expect_err("braces");
    assert!(matches!(err, LockError::Config { .. }), "{err}");

    for guard in guards {
        guard.unlock().await.expect("unlock");
    }
    read.unlock().await.expect("unlock");
    foreign.unlock().await.expect("unlock");
    assert!(
        client
            .held_locks(&format!("{base}:*"), 100)
            .await
            .expect("list")
            .is_empty()
    );
}
