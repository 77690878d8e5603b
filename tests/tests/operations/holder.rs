//! Who holds a lock, told to the caller who times out on it (issue "Operations"): the holder's
//! client name, how long it has held it, and the queue's length, read in the same script as the
//! caller's last try.

use std::{collections::BTreeSet, time::Duration};

use lock_runtime::{LockClient, LockError};
use lock_tests::{
    MonitoredCommand, RedisServer,
    locks::{assert_released, assert_rw_released, await_queued, client_named, sem_key},
    unique_name,
};

/// What a lock client may send while it waits: its scripts (as functions, by hash, or whole
/// after a `NOSCRIPT`), what loads them, and its subscriptions. Anything else is a command of its
/// own, such as an `HGET` of the holder's record.
const SENT_WHILE_WAITING: &[&str] = &[
    "fcall",
    "function",
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
    assert!(holder.ends_with(", no other caller waiting"), "{holder}");
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
    // Waiting on a lock its own process holds: the message says so.
    let by_default = format!(
        "held by {} (this client's name) for ",
        default_client_name()
    );
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

/// Times out once uncounted (so the wait's scripts are loaded and sent by hash), a second
/// later once more under `MONITOR`: that timeout's error, and what clients sent meanwhile.
async fn counted_timeout<F, Fut>(
    server: &RedisServer,
    time_out: F,
) -> (LockError, Vec<MonitoredCommand>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = LockError>,
{
    time_out().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let monitor = server.monitor();
    let err = time_out().await;
    let sent = monitor
        .stop()
        .into_iter()
        .filter(MonitoredCommand::sent_by_a_client)
        .collect();
    (err, sent)
}

/// Panics unless `sent` is only waiting: scripts and subscriptions, and at most two scripts
/// (a try, once or more, and leaving the queue); a third would be a read of its own.
fn assert_only_waiting(sent: &[MonitoredCommand]) {
    let extra: Vec<_> = sent
        .iter()
        .filter(|c| !SENT_WHILE_WAITING.contains(&c.name().as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "sent beyond waiting: {extra:?}\nall sent: {sent:?}"
    );
    let scripts: BTreeSet<_> = sent
        .iter()
        .filter(|c| matches!(c.name().as_str(), "fcall" | "evalsha" | "eval"))
        .filter_map(|c| c.args.get(1))
        .collect();
    assert!(
        (1..=2).contains(&scripts.len()),
        "{} scripts sent: {sent:?}",
        scripts.len()
    );
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
    let (err, sent) = counted_timeout(&server, || {
        let lock = waiting.lock(&name);
        async move {
            lock.try_acquire(Duration::from_millis(300), None)
                .await
                .expect_err("held")
        }
    })
    .await;

    let holder = holder_of(&err);
    let by_default = format!("held by {} for 1.", default_client_name());
    assert!(holder.starts_with(&by_default), "{holder}");
    assert!(holder.ends_with(", no other caller waiting"), "{holder}");
    assert_only_waiting(&sent);
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// A read-write lock's timeout names what is in the way: the writer, or the readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_on_a_read_write_lock_names_the_writer_or_the_readers() {
    let server = RedisServer::start();
    let writing = client_named(&server, "editor@host-1").await;
    let (a, b) = (
        client_named(&server, "viewer-a").await,
        client_named(&server, "viewer-b").await,
    );
    let name = unique_name("who-rw");
    let wait = Duration::from_millis(300);

    let written = writing.read_write_lock(&name).write().acquire().await;
    let err = a
        .read_write_lock(&name)
        .read()
        .try_acquire(wait, None)
        .await
        .expect_err("written");
    let holder = holder_of(&err);
    assert!(
        holder.starts_with("held by editor@host-1 (writer) for ") && holder.contains(" ms, "),
        "{holder}"
    );
    assert!(holder.ends_with(", no other caller waiting"), "{holder}");
    written.expect("free").unlock().await.expect("unlock");

    let first = a.read_write_lock(&name).read().acquire().await;
    let second = b.read_write_lock(&name).read().acquire().await;
    let err = writing
        .read_write_lock(&name)
        .write()
        .try_acquire(wait, None)
        .await
        .expect_err("read");
    let holder = holder_of(&err);
    assert!(holder.starts_with("held by 2 readers ("), "{holder}");
    assert!(
        holder.contains("viewer-a for ") && holder.contains("viewer-b for "),
        "{holder}"
    );
    assert!(holder.ends_with("), no other caller waiting"), "{holder}");
    for guard in [first, second] {
        guard.expect("shared").unlock().await.expect("unlock");
    }
    assert_rw_released(&server, &name);
}

/// A semaphore's timeout names the acquisitions holding its permits: three at most, the others
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_on_a_semaphore_names_the_permit_holders() {
    let server = RedisServer::start();
    let name = unique_name("who-sem");
    let waiting = client_named(&server, "batch@host-9").await;
    let sem = waiting.semaphore(&name);
    sem.try_set_permits(4).await.expect("set");
    let try_two = || sem.try_acquire(2, Duration::from_millis(300), None);

    let one = client_named(&server, "api-1").await;
    let mut permits = vec![one.semaphore(&name).acquire(3).await.expect("free")];
    let err = try_two().await.expect_err("one free");
    let holder = holder_of(&err);
    assert!(
        holder.starts_with("held by api-1 (permit holder) for ") && holder.contains(" ms, "),
        "{holder}"
    );
    assert!(holder.ends_with(", no other caller waiting"), "{holder}");

    permits
        .pop()
        .expect("held")
        .release()
        .await
        .expect("release");
    for i in 1..=4 {
        let client = client_named(&server, &format!("api-{i}")).await;
        permits.push(client.semaphore(&name).acquire(1).await.expect("free"));
    }
    let err = try_two().await.expect_err("none free");
    let holder = holder_of(&err);
    assert!(holder.starts_with("held by 4 permit holders ("), "{holder}");
    let named = (1..=4)
        .filter(|i| holder.contains(&format!("api-{i} for ")))
        .count();
    assert_eq!(named, 3, "{holder}");
    assert!(
        holder.ends_with(", 1 more), no other caller waiting"),
        "{holder}"
    );

    for permit in permits {
        permit.release().await.expect("release");
    }
    let _: () = server.cmd(&["DEL", &sem_key(&name)]);
    assert_released(&server, &name);
}

/// A read-write lock's and a semaphore's timeouts name their holders the same way: from the
/// last try's reply, with no command of their own (counted with `MONITOR`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_and_semaphore_timeouts_send_no_extra_command() {
    let server = RedisServer::start();
    let holding = client_named(&server, "holder@host-1").await;
    let waiting = LockClient::connect(&server.url()).await.expect("connect");
    let lease = Some(Duration::from_secs(60));
    let wait = Duration::from_millis(300);

    let name = unique_name("who-rw-counted");
    let written = holding
        .read_write_lock(&name)
        .write()
        .try_acquire(wait, lease)
        .await
        .expect("writer");
    let (err, sent) = counted_timeout(&server, || {
        let lock = waiting.read_write_lock(&name);
        async move {
            lock.read()
                .try_acquire(wait, None)
                .await
                .expect_err("written")
        }
    })
    .await;
    assert!(holder_of(&err).contains("holder@host-1"), "{err}");
    assert_only_waiting(&sent);
    written.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);

    let name = unique_name("who-sem-counted");
    let semaphore = holding.semaphore(&name);
    assert!(semaphore.try_set_permits(1).await.expect("set"));
    let permit = semaphore
        .try_acquire(1, wait, lease)
        .await
        .expect("the permit");
    let (err, sent) = counted_timeout(&server, || {
        let semaphore = waiting.semaphore(&name);
        async move {
            semaphore
                .try_acquire(1, wait, None)
                .await
                .expect_err("taken")
        }
    })
    .await;
    assert!(holder_of(&err).contains("holder@host-1"), "{err}");
    assert_only_waiting(&sent);
    permit.release().await.expect("release");
}
