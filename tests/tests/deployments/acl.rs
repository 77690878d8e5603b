//! A Redis 7 ACL user without channel rights (`resetchannels`, the default for new users since
//! Redis 7 with `acl-pubsub-default resetchannels`) can still use locks: its `SUBSCRIBE` and the
//! release script's `PUBLISH` are refused with `NOPERM`, and the client must cope without a
//! reconnect storm, report a release that happened as a success, and still hand the lock on
//! (by the holder's TTL at worst, since no release message can reach it).

use std::time::{Duration, Instant};

use lock_runtime::LockClient;
use lock_tests::{
    Capability, RedisServer,
    locks::{
        assert_released, assert_rw_released, await_subscribers, client_with_channel_rights,
        client_without_channel_rights, command_calls, connect, eventually, is_held, subscribers,
        unlock_channel,
    },
    skip_without, unique_name,
};

/// A server with the user `app`, who may use no pub/sub channel, and a client connected as
/// that user (see `client_without_channel_rights`).
async fn a_client_without_channel_rights() -> (RedisServer, LockClient) {
    let server = RedisServer::start();
    let client = client_without_channel_rights(&server).await;
    (server, client)
}

fn connections_received(server: &RedisServer) -> u64 {
    server
        .info_field("stats", "total_connections_received")
        .and_then(|count| count.parse().ok())
        .expect("INFO stats has total_connections_received")
}

/// While one task holds the lock (fixed lease 10 s) and another waits, the client opens fewer
/// than 20 connections in 2 s. The count is Redis's `total_connections_received`, which also
/// counts the kit's own two `INFO` connections. Before the core rewrite (issue 8), the hub reconnects at once after every
/// refused `SUBSCRIBE`: thousands of connections per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_without_channel_rights_causes_no_reconnect_storm() {
    let (server, client) = a_client_without_channel_rights().await;
    let name = unique_name("acl-storm");
    let holder = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(10)))
        .await
        .expect("holder");

    let before = connections_received(&server);
    let lock = client.lock(&name);
    let waiter = tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await });
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let opened = connections_received(&server) - before;
    waiter.abort();
    assert!(
        opened < 20,
        "{opened} connections were opened in {window:?} of waiting: the refused SUBSCRIBE \
         (NOPERM) must not make the client reconnect in a loop"
    );

    drop(holder);
    assert!(
        eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
        "the dropped holder's lock is released"
    );
    assert_released(&server, &name);
}

/// `unlock()` returns `Ok` and the lock is gone. Before the core rewrite (issue 8), the release script deletes the lock, then
/// its `PUBLISH` fails with `NOPERM`, so `unlock()` reports a Redis error for a release that
/// happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_without_channel_rights_succeeds() {
    let (server, client) = a_client_without_channel_rights().await;
    let name = unique_name("acl-unlock");
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(10)))
        .await
        .expect("acquire");

    let unlocked = guard.unlock().await;
    assert!(
        unlocked.is_ok(),
        "unlock() must succeed for a user without channel rights, got: {}",
        unlocked
            .as_ref()
            .err()
            .map(|err| format!("{err} ({:?})", std::error::Error::source(err)))
            .unwrap_or_default()
    );
    assert!(!is_held(&server, &name), "the lock is gone after unlock()");
    assert_released(&server, &name);
}

/// A waiter (wait 10 s) still gets the lock after the holder (fixed lease 1.5 s) lets go: within
/// 3 s of the holder's acquisition, that is by the holder's TTL plus slack at worst, because no
/// release message can reach it. The holder and the waiter let go by dropping their guards, so
/// this test does not depend on `unlock()` reporting success (see the test above). This holds
/// before the core rewrite too (the waiter sleeps at most the holder's TTL); it guards against, for
/// example, failing the wait because the subscription is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_without_channel_rights_still_gets_the_lock() {
    let (server, client) = a_client_without_channel_rights().await;
    let name = unique_name("acl-waiter");
    let lease = Duration::from_millis(1_500);
    let holder = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(lease))
        .await
        .expect("holder");
    let held_since = Instant::now();

    let lock = client.lock(&name);
    let waiter = tokio::spawn(async move {
        let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
        let acquired = Instant::now();
        drop(guard);
        Ok::<_, lock_runtime::LockError>(acquired)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(holder);
    let acquired = tokio::time::timeout(Duration::from_secs(12), waiter)
        .await
        .expect("the waiter finishes within its wait")
        .expect("join")
        .expect("the waiter gets the lock");
    let waited = acquired.saturating_duration_since(held_since);
    assert!(
        waited < lease + Duration::from_millis(1_500),
        "the waiter got the lock {waited:?} after the holder took it (lease {lease:?})"
    );

    assert!(
        eventually(Duration::from_secs(3), || !is_held(&server, &name)).await,
        "the dropped guards release the lock"
    );
    assert_released(&server, &name);
}

/// A fair waiter (watchdog mode, so it takes a direct hand-over) is handed the lock by the
/// release, whose message Redis refuses to publish. The waiter wakes at its timer (the holder's
/// remaining lease, 1.5 s fixed, at its last try) and finds the lock its own at that try: it
/// must not queue behind its own hold until that hold's lease (its watchdog timeout, 30 s) runs
/// out, past its wait of 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_waiter_handed_the_lock_unannounced_takes_it_at_its_next_try() {
    let (server, client) = a_client_without_channel_rights().await;
    let name = unique_name("acl-fair-handed");
    let lease = Duration::from_millis(1_500);
    let holder = client
        .fair_lock(&name)
        .try_acquire(Duration::from_secs(1), Some(lease))
        .await
        .expect("holder");
    let held_since = Instant::now();

    let lock = client.fair_lock(&name);
    let waiter = tokio::spawn(async move {
        let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
        let acquired = Instant::now();
        guard.unlock().await?;
        Ok::<_, lock_runtime::LockError>(acquired)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.unlock().await.expect("unlock");
    assert!(
        is_held(&server, &name),
        "the release handed the lock to the waiter"
    );
    let acquired = tokio::time::timeout(Duration::from_secs(12), waiter)
        .await
        .expect("the waiter finishes within its wait")
        .expect("join")
        .expect("the waiter gets the lock and releases it");
    let waited = acquired.saturating_duration_since(held_since);
    assert!(
        waited < lease + Duration::from_millis(1_500),
        "the waiter got the lock {waited:?} after the holder took it (lease {lease:?})"
    );
    assert_released(&server, &name);
}

/// A client of `server` logged in as a user whose ACL rules are `rules` (after `+@all`).
async fn client_of_user(server: &RedisServer, rules: &[&str]) -> LockClient {
    let mut command = vec![
        "ACL", "SETUSER", "scripts", "on", ">pw", "~*", "&*", "+@all",
    ];
    command.extend_from_slice(rules);
    let _: () = server.cmd(&command);
    let url = format!("redis://scripts:pw@127.0.0.1:{}", server.port());
    LockClient::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("connecting as `scripts` to {url}: {err}"))
}

/// Takes and gives back the lock, the fair lock, both locks of the read-write lock and a
/// permit of `client`, each under a name of its own, and checks Redis keeps nothing of them.
async fn every_primitive_works(server: &RedisServer, client: &LockClient) {
    let lock = unique_name("acl-lock");
    client
        .lock(&lock)
        .acquire()
        .await
        .expect("lock")
        .unlock()
        .await
        .expect("unlock");
    assert_released(server, &lock);
    let fair = unique_name("acl-fair");
    let guard = client.fair_lock(&fair).acquire().await.expect("fair lock");
    guard.unlock().await.expect("fair unlock");
    assert_released(server, &fair);
    let rw = unique_name("acl-rw");
    let read = client
        .read_write_lock(&rw)
        .read()
        .acquire()
        .await
        .expect("read");
    read.unlock().await.expect("read unlock");
    let write = client
        .read_write_lock(&rw)
        .write()
        .acquire()
        .await
        .expect("write");
    write.unlock().await.expect("write unlock");
    assert_rw_released(server, &rw);
    let semaphore = client.semaphore(unique_name("acl-semaphore"));
    assert!(semaphore.try_set_permits(1).await.expect("set permits"));
    let permit = semaphore.acquire(1).await.expect("permit");
    permit.release().await.expect("release");
    assert_eq!(semaphore.available_permits().await.expect("available"), 1);
}

/// The libraries of lock-runtime's functions `server` holds.
fn our_libraries(server: &RedisServer) -> usize {
    let libraries: Vec<redis::Value> =
        server.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "lock_runtime_*"]);
    libraries.len()
}

/// A Redis user denied `FCALL` and `FUNCTION` (an ACL written before Redis 7.0, granting
/// `EVALSHA`) still uses every primitive: its client finds Functions refused and sends its
/// scripts with `EVALSHA`, as on a server without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_denied_functions_runs_every_primitive_with_evalsha() {
    if skip_without(Capability::Functions) {
        return;
    }
    let server = RedisServer::start();
    let client = client_of_user(&server, &["-fcall", "-fcall_ro", "-function"]).await;
    every_primitive_works(&server, &client).await;
    assert_eq!(our_libraries(&server), 0, "nothing could be loaded");
}

/// A user who may call functions but not load them: the first call finds its function missing,
/// the load is refused, and the client turns to `EVALSHA` for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_may_not_load_functions_runs_every_primitive_with_evalsha() {
    if skip_without(Capability::Functions) {
        return;
    }
    let server = RedisServer::start();
    let client = client_of_user(&server, &["-function"]).await;
    every_primitive_works(&server, &client).await;
    assert_eq!(our_libraries(&server), 0, "nothing could be loaded");
}

/// With every right, the scripts run as Redis Functions: each one used is a library of its own,
/// loaded once, however many calls and clients use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_as_functions_loaded_once_per_script() {
    if skip_without(Capability::Functions) {
        return;
    }
    let server = RedisServer::start();
    let first = LockClient::connect(&server.url()).await.expect("connect");
    let second = LockClient::connect(&server.url()).await.expect("connect");
    every_primitive_works(&server, &first).await;
    let loaded = our_libraries(&server);
    assert!(loaded > 0, "the scripts ran as functions");
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    every_primitive_works(&server, &second).await;
    every_primitive_works(&server, &first).await;
    assert_eq!(
        our_libraries(&server),
        loaded,
        "the same scripts, the same libraries"
    );
    assert_eq!(
        command_calls(&server, &["function|load", "evalsha", "eval"]),
        0,
        "nothing loaded or sent by hash again"
    );
}

/// A Redis user whose channel rights cover the locks' channels (`*:unlock`) but not each
/// client's own channel of a lock (`<channel>:<client id>`) is refused the own channels: its
/// waiters are named on the locks' channels, as a version before own channels was, and woken by
/// the release at once (the holder's lease is 30 s), also after the pub/sub connection was cut
/// and the channels subscribed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_to_the_locks_channels_alone_still_wake_a_waiter_at_the_release() {
    let server = RedisServer::start();
    let holding = connect(&server).await;
    let waiting = client_with_channel_rights(&server, &["*:unlock"]).await;
    let name = unique_name("acl-no-own");
    let channel = unlock_channel(&name);
    let holder = holding
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(30)))
        .await
        .expect("holder");
    let lock = waiting.lock(&name);
    let waiter = tokio::spawn(async move {
        let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
        let acquired = Instant::now();
        guard.unlock().await?;
        Ok::<_, lock_runtime::LockError>(acquired)
    });
    let own = format!("{channel}:{}", waiting.id());
    await_subscribers(&server, &channel, 1).await;
    // Its own channel was asked for right after, and refused. So it is on resubscribing, after
    // the pub/sub connection was cut.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(subscribers(&server, &own), 0);
    assert_eq!(
        server.client_kill("TYPE pubsub"),
        1,
        "the waiter's pub/sub connection"
    );
    await_subscribers(&server, &channel, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(subscribers(&server, &own), 0);

    let released = Instant::now();
    holder.unlock().await.expect("unlock");
    let acquired = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter finishes within its wait")
        .expect("join")
        .expect("the waiter gets the lock");
    assert!(
        acquired.saturating_duration_since(released) < Duration::from_secs(2),
        "woken {:?} after the release: by a timer, not by the release",
        acquired.saturating_duration_since(released)
    );
    assert_released(&server, &name);
}
