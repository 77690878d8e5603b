//! Who holds a lock, told to the caller who times out on it (issue "Operations"): the holder's
//! client name, how long it has held it, and the queue's length, read in the same script as the
//! caller's last try.

use std::{collections::BTreeSet, time::Duration};

use lock_runtime::{LockClient, LockError};
use lock_tests::{
    MonitoredCommand, RedisServer,
    locks::{assert_released, await_queued, client_named},
    unique_name,
};

/// What a lock client may send while it waits: its scripts (by hash, or whole after a
/// `NOSCRIPT`) and its subscriptions. Anything else is a command of its own, such as an
/// `HGET` of the holder's record.
const SENT_WHILE_WAITING: &[&str] = &[
    "evalsha",
    "eval",
    "script",
    "subscribe",
    "unsubscribe",
    "ping",
];

/// The name a client goes by when given none: this host's name and this process's id.
fn default_client_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the host's name");
    format!("{}/{}", host.trim(), std::process::id())
}

/// The holder's field of a timeout, checked against its message.
fn holder_of(err: &LockError) -> &str {
    match err {
        LockError::Timeout {
            holder: Some(holder),
            ..
        } => {
            assert!(err.to_string().contains(holder.as_str()), "{err}");
            holder
        }
        other => panic!("expected a timeout naming the holder, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_the_holder_and_how_long_it_held() {
    let server = RedisServer::start();
    let holding = client_named(&server, "orders-api@host-3").await;
    let waiting = client_named(&server, "reports@host-9").await;
    let name = unique_name("who-holds");
    let guard = holding.lock(&name).acquire().await.expect("holder");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let err = waiting
        .lock(&name)
        .try_acquire(Duration::from_millis(300), None)
        .await
        .expect_err("held");
    let holder = holder_of(&err);
    assert!(
        holder.starts_with("held by orders-api@host-3 for 1."),
        "{holder}"
    );
    assert!(holder.ends_with("1 in the queue"), "{holder}");
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// A fair lock handed over directly records the new holder's name too (it took the lock with
/// no request of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_handed_over_names_its_new_holder() {
    let server = RedisServer::start();
    let first = client_named(&server, "first").await;
    let next = client_named(&server, "next-in-line").await;
    let late = client_named(&server, "late").await;
    let name = unique_name("who-handed");
    let guard = first.fair_lock(&name).acquire().await.expect("first");
    let waiter = {
        let lock = next.fair_lock(&name);
        tokio::spawn(async move { lock.acquire().await })
    };
    await_queued(&server, &name, 1).await;
    guard.unlock().await.expect("unlock");
    let handed = waiter.await.expect("join").expect("handed over");
    let err = late
        .fair_lock(&name)
        .try_acquire(Duration::from_millis(300), None)
        .await
        .expect_err("held by the next in line");
    assert!(
        holder_of(&err).starts_with("held by next-in-line for"),
        "{err}"
    );
    // The late waiter leaves the queue in the background; were it still there, the release
    // below would hand it the lock, and its leaving would give it back a moment later.
    await_queued(&server, &name, 0).await;
    handed.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// Without a name, a client is known by its host's name and its process id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_known_by_host_and_pid_by_default() {
    let server = RedisServer::start();
    let holding = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("who-default");
    let guard = holding.lock(&name).acquire().await.expect("holder");
    let err = holding
        .lock(&name)
        .try_acquire(Duration::from_millis(200), None)
        .await
        .expect_err("held");
    let by_default = format!("held by {} for ", default_client_name());
    assert!(holder_of(&err).starts_with(&by_default), "{err}");
    guard.unlock().await.expect("unlock");

    let err = LockClient::builder()
        .url(server.url())
        .client_name("")
        .build()
        .await
        .expect_err("an empty name");
    assert!(matches!(err, LockError::Config { .. }), "{err}");
}

/// A timeout's message names the holder's client name (by default its host and pid) and how
/// long it has held the lock, and costs no command beyond the waiting itself: the holder's
/// record is read by the acquire script's last try. Counted with `MONITOR`, which tells what the
/// client sent from what its scripts ran (`INFO commandstats` counts a script's `HGET` and a
/// client's under one name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_the_holder_without_an_extra_command() {
    let server = RedisServer::start();
    let holding = LockClient::connect(&server.url()).await.expect("connect");
    let waiting = client_named(&server, "reports@host-9").await;
    let name = unique_name("who-counted");
    // A fixed lease: no renewal is sent while the commands are counted.
    let guard = holding
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(60)))
        .await
        .expect("holder");
    let time_out = || {
        let lock = waiting.lock(&name);
        async move {
            lock.try_acquire(Duration::from_millis(300), None)
                .await
                .expect_err("held")
        }
    };
    // Once uncounted, so that the scripts of a timed-out wait are loaded and sent by hash.
    time_out().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    let monitor = server.monitor();
    let err = time_out().await;
    let seen = monitor.stop();

    let holder = holder_of(&err);
    let by_default = format!("held by {} for 1.", default_client_name());
    assert!(holder.starts_with(&by_default), "{holder}");
    assert!(holder.ends_with("1 in the queue"), "{holder}");
    let sent: Vec<&MonitoredCommand> = seen.iter().filter(|c| c.sent_by_a_client()).collect();
    let extra: Vec<_> = sent
        .iter()
        .filter(|c| !SENT_WHILE_WAITING.contains(&c.name().as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "sent beyond waiting: {extra:?}\nall sent: {sent:?}"
    );
    // A try (once or more) and leaving the queue: a third script would be a read of its own.
    let scripts: BTreeSet<_> = sent
        .iter()
        .filter(|c| c.name().starts_with("eval"))
        .filter_map(|c| c.args.get(1))
        .collect();
    assert!(
        (1..=2).contains(&scripts.len()),
        "{} scripts sent: {sent:?}",
        scripts.len()
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}
