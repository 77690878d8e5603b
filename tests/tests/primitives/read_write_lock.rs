//! The read-write lock (DESIGN 4.1): many readers or one writer, a waiting writer never starved
//! by new readers, re-entry, downgrade, no upgrade, a lease per hold, and nothing left behind.
//!
//! Several `LockClient`s in one test stand for several processes (each has its own pub/sub
//! connection and hub); the claims about processes run the `lock-worker` binary.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lock_runtime::{LockError, LockGuard};
use lock_tests::{
    RedisServer,
    locks::{
        assert_no_key_without_ttl, assert_rw_released, connect, eventually, rw_holds, rw_key,
        rw_leases_key,
    },
    unique_name,
};

use crate::WORKER;

/// How many waiters queue on the lock.
fn queued(server: &RedisServer, name: &str) -> i64 {
    server.cmd(&["ZCARD", &format!("{}:queue", rw_key(name))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_and_a_writer_excludes_everyone() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let name = unique_name("rw-basic");
    let short = Duration::from_millis(200);

    let one = a
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("read");
    let two = b
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("readers share");
    assert_eq!(rw_holds(&server, &name), 2);
    let err = b
        .read_write_lock(&name)
        .write()
        .try_acquire(short, None)
        .await
        .expect_err("readers hold it");
    assert!(err.is_timeout(), "{err}");
    one.unlock().await.expect("unlock");
    two.unlock().await.expect("unlock");

    let writing = a
        .read_write_lock(&name)
        .write()
        .acquire()
        .await
        .expect("write");
    for attempt in [
        b.read_write_lock(&name)
            .read()
            .try_acquire(short, None)
            .await,
        b.read_write_lock(&name)
            .write()
            .try_acquire(short, None)
            .await,
    ] {
        let err = attempt.expect_err("the writer holds it");
        assert!(err.is_timeout(), "{err}");
    }
    assert!(
        a.read_write_lock(&name)
            .is_locked()
            .await
            .expect("is_locked")
    );
    writing.unlock().await.expect("unlock");
    assert!(
        !a.read_write_lock(&name)
            .is_locked()
            .await
            .expect("is_locked")
    );
    assert_rw_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// A writer waits behind a reader; then new readers keep coming (each trying for 300 ms, from
/// another client) while the first reader still holds: none of them may get in before the
/// writer, or a stream of readers would starve it. Once the first reader lets go, the writer is
/// served, and the readers queued behind it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_is_not_overtaken_by_new_readers() {
    let server = RedisServer::start();
    let (a, b, c) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    let name = unique_name("rw-no-starve");
    let order = Arc::new(Mutex::new(Vec::new()));

    let first = a
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("read");
    let writer = {
        let (lock, order) = (b.read_write_lock(&name), Arc::clone(&order));
        tokio::spawn(async move {
            let guard = lock
                .write()
                .try_acquire(Duration::from_secs(10), None)
                .await?;
            order.lock().expect("order").push("writer");
            tokio::time::sleep(Duration::from_millis(50)).await;
            guard.unlock().await
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await,
        "the writer queues"
    );
    for _ in 0..3 {
        let err = c
            .read_write_lock(&name)
            .read()
            .try_acquire(Duration::from_millis(300), None)
            .await
            .expect_err("a new reader must not overtake the waiting writer");
        assert!(err.is_timeout(), "{err}");
    }
    let late_reader = {
        let (lock, order) = (c.read_write_lock(&name), Arc::clone(&order));
        tokio::spawn(async move {
            let guard = lock
                .read()
                .try_acquire(Duration::from_secs(10), None)
                .await?;
            order.lock().expect("order").push("reader");
            guard.unlock().await
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || queued(&server, &name) == 2).await,
        "the late reader queues behind the writer"
    );
    let released = Instant::now();
    first.unlock().await.expect("unlock");
    writer.await.expect("join").expect("the writer is served");
    late_reader.await.expect("join").expect("then the reader");
    assert!(
        released.elapsed() < Duration::from_secs(2),
        "served {:?} after the release: woken, not by a timer",
        released.elapsed()
    );
    assert_eq!(*order.lock().expect("order"), ["writer", "reader"]);
    assert_rw_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// A write release lets in every reader waiting behind it at once, across clients, and they
/// hold the lock together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_release_lets_every_waiting_reader_in_together() {
    let server = RedisServer::start();
    let writer_client = connect(&server).await;
    let name = unique_name("rw-readers-wake");
    let writing = writer_client
        .read_write_lock(&name)
        .write()
        .acquire()
        .await
        .expect("write");
    let mut readers = Vec::new();
    for _ in 0..4 {
        let lock = connect(&server).await.read_write_lock(&name);
        readers.push(tokio::spawn(async move {
            let guard = lock
                .read()
                .try_acquire(Duration::from_secs(10), None)
                .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, LockError>(guard)
        }));
    }
    assert!(
        eventually(Duration::from_secs(5), || queued(&server, &name) == 4).await,
        "every reader queues"
    );
    let released = Instant::now();
    writing.unlock().await.expect("unlock");
    assert!(
        eventually(Duration::from_secs(1), || rw_holds(&server, &name) == 4).await,
        "the four readers hold the lock together, at once after the write release"
    );
    let served = released.elapsed();
    for reader in readers {
        reader
            .await
            .expect("join")
            .expect("read")
            .unlock()
            .await
            .expect("unlock");
    }
    assert!(
        served < Duration::from_secs(1),
        "served {served:?} after the release"
    );
    assert_rw_released(&server, &name);
}

/// The last read release wakes the writer at the head at once (the reader's lease was the
/// watchdog's 30 s, and the writer would otherwise sleep up to a third of that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_read_release_wakes_the_waiting_writer() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let name = unique_name("rw-writer-wake");
    let one = a
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("read");
    let two = a
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("read");
    let writer = {
        let lock = b.read_write_lock(&name);
        tokio::spawn(async move {
            lock.write()
                .try_acquire(Duration::from_secs(10), None)
                .await
        })
    };
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    one.unlock().await.expect("unlock");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "a reader still holds the lock");
    let released = Instant::now();
    two.unlock().await.expect("unlock");
    let writing = writer.await.expect("join").expect("write");
    assert!(released.elapsed() < Duration::from_secs(1));
    writing.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

/// Re-entry in both modes keeps the owner id, the lease and the token; a read asked under the
/// scope's own write is granted at once (downgrade), and survives the write's release, which
/// lets other readers in but not writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentry_and_downgrade_work_within_a_scope() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let name = unique_name("rw-downgrade");
    let lock = a.read_write_lock(&name);

    let writing = lock.write().acquire().await.expect("write");
    let token = writing.fencing_token();
    let (rewriting, reading): (LockGuard, LockGuard) = writing
        .scope(async {
            let again = lock.write().acquire().await?;
            let reading = lock.read().acquire().await?;
            Ok::<_, LockError>((again, reading))
        })
        .await
        .expect("re-entry and downgrade");
    assert_eq!(
        rewriting.fencing_token(),
        token,
        "a re-entry keeps the token"
    );
    assert_eq!(
        reading.fencing_token(),
        token,
        "a read joining the scope's write carries its token"
    );
    rewriting.unlock().await.expect("inner write");
    writing.unlock().await.expect("outer write");
    assert_eq!(
        rw_holds(&server, &name),
        1,
        "the downgraded read hold stays"
    );

    let short = Duration::from_millis(200);
    let other = b
        .read_write_lock(&name)
        .read()
        .try_acquire(short, None)
        .await
        .expect("another reader joins the downgraded hold");
    let err = b
        .read_write_lock(&name)
        .write()
        .try_acquire(short, None)
        .await
        .expect_err("readers hold it");
    assert!(err.is_timeout(), "{err}");
    other.unlock().await.expect("unlock");
    reading.unlock().await.expect("unlock");

    let next = b
        .read_write_lock(&name)
        .write()
        .acquire()
        .await
        .expect("write");
    assert!(next.fencing_token() > token, "a write takes a fresh token");
    next.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// A write asked under the scope's own read hold is refused at once, naming the upgrade, rather
/// than waiting for that read hold forever; the read hold is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_is_refused_at_once() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("rw-upgrade");
    let lock = client.read_write_lock(&name);
    let reading = lock.read().acquire().await.expect("read");
    let asked = Instant::now();
    let err = reading
        .scope(lock.write().try_acquire(Duration::from_secs(10), None))
        .await
        .expect_err("an upgrade is refused");
    assert!(
        matches!(
            err,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
    assert!(asked.elapsed() < Duration::from_millis(100));
    assert_eq!(rw_holds(&server, &name), 1);
    reading.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

/// A queued writer that gives up (its wait runs out) lets the readers it held back in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_gives_up_lets_the_readers_behind_it_in() {
    let server = RedisServer::start();
    let (a, b, c) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    let name = unique_name("rw-writer-leaves");
    let first = a
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("read");
    let writer = {
        let lock = b.read_write_lock(&name);
        tokio::spawn(async move {
            lock.write()
                .try_acquire(Duration::from_millis(800), None)
                .await
        })
    };
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    let reader = {
        let lock = c.read_write_lock(&name);
        tokio::spawn(async move { lock.read().try_acquire(Duration::from_secs(10), None).await })
    };
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 2).await);
    let err = writer
        .await
        .expect("join")
        .expect_err("the writer times out");
    assert!(err.is_timeout(), "{err}");
    let gave_up = Instant::now();
    let reading = reader.await.expect("join").expect("the reader gets in");
    assert!(gave_up.elapsed() < Duration::from_secs(1));
    reading.unlock().await.expect("unlock");
    first.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// Each read hold has its own lease: a reader with a fixed lease of 600 ms frees its share when
/// that ends, though another reader holds on (watchdog), and a writer then waits for the other
/// reader only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_hold_ends_with_its_own_lease() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("rw-own-lease");
    let lock = client.read_write_lock(&name);
    let short = lock
        .read()
        .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(600)))
        .await
        .expect("read");
    let long = lock.read().acquire().await.expect("read");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(short.is_lease_lost());
    assert!(
        short
            .unlock()
            .await
            .expect_err("its lease ended")
            .is_not_held()
    );
    assert_eq!(rw_holds(&server, &name), 1, "only the live reader holds");
    assert!(!long.is_lease_lost());
    long.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

/// A hold taken on a lock nobody holds or waits for is lone: the lock keeps no leases, its own
/// TTL is the hold's lease. So neither the acquire nor the release asks Redis for the time: the
/// acquire runs `EXISTS`, `HSET`, `PEXPIRE` and reads or raises the fencing token; the release,
/// finding its hold, and no leases (no hold was granted beside it) and no queue, knows its hold
/// is the only one and live, and frees the lock in one `DEL`. A hold next to another still runs the full
/// release (see
/// `a_read_hold_ends_with_its_own_lease`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_hold_is_taken_and_released_in_a_few_commands() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("rw-lone-hold");
    let lock = client.read_write_lock(&name);
    // A fixed lease: no renewal runs while the commands are watched.
    let (wait, lease) = (Duration::from_secs(1), Some(Duration::from_secs(60)));
    // A name's first write starts its fencing state (`TIME`, `SET`): done before watching.
    let first = lock.write().try_acquire(wait, lease).await.expect("write");
    first.unlock().await.expect("unlock");
    for write in [false, true] {
        let monitor = server.monitor();
        let guard = if write {
            lock.write().try_acquire(wait, lease).await
        } else {
            lock.read().try_acquire(wait, lease).await
        }
        .expect("acquire");
        let leases: i64 = server.cmd(&["EXISTS", &rw_leases_key(&name)]);
        let ttl: i64 = server.cmd(&["PTTL", &rw_key(&name)]);
        guard.unlock().await.expect("unlock");
        let mut calls: Vec<_> = lock_tests::ran_by_each_call(&monitor.stop())
            .into_iter()
            .filter(|ran| !ran.is_empty())
            .collect();
        let kind = if write { "write" } else { "read" };
        lock_tests::drop_fence_catch_ups(&mut calls);
        // Either hold takes the free lock: the fencing state is counted before the hold is
        // written, and the token then reads the clock its lease started at. The release counts
        // the state past it and writes no memo.
        let acquire = vec![
            "exists",
            "incr",
            "hset",
            "pexpire",
            server.version().lease_clock_command(),
        ];
        assert_eq!(
            calls,
            [acquire, vec!["hget", "exists", "incr", "del"]],
            "the commands the acquire and the release of a lone {kind} hold ran"
        );
        assert_eq!(leases, 0, "a lone {kind} hold keeps no leases");
        assert!(
            55_000 < ttl && ttl <= 60_000,
            "the lock's TTL is the lone {kind} hold's lease: {ttl} ms"
        );
        assert_rw_released(&server, &name);
    }
}

/// A second hold spreads the lone one's lease into the leases (from the lock's TTL) before it
/// joins: the first reader, whose lease is the longer, keeps its hold when the second releases
/// (a release of the only hold in the leases deletes the lock) and when the second's lease would
/// have ended, and a writer stays out until the first releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_hold_keeps_its_lease_when_a_second_reader_comes_and_goes() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("rw-spread");
    let lock = client.read_write_lock(&name);
    let wait = Duration::from_secs(1);
    let first = lock
        .read()
        .try_acquire(wait, Some(Duration::from_secs(60)))
        .await
        .expect("read");
    let second = lock
        .read()
        .try_acquire(wait, Some(Duration::from_millis(500)))
        .await
        .expect("read");
    let lease_ends: Vec<String> = server.cmd(&["ZRANGE", &rw_leases_key(&name), "0", "-1"]);
    assert_eq!(
        lease_ends.len(),
        2,
        "both holds' leases are kept: {lease_ends:?}"
    );
    second.unlock().await.expect("unlock");
    assert_eq!(rw_holds(&server, &name), 1, "the first reader still holds");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rw_holds(&server, &name), 1, "past the second's lease, too");
    let ttl: i64 = server.cmd(&["PTTL", &rw_key(&name)]);
    assert!(
        ttl > 50_000,
        "the lock lives as long as the first's lease: {ttl} ms"
    );
    assert!(
        lock.write()
            .try_acquire(Duration::from_millis(200), None)
            .await
            .expect_err("a reader holds")
            .is_timeout()
    );
    assert!(!first.is_lease_lost());
    first.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

/// Three processes of four tasks each mix reads and writes (one in three a write) on one lock:
/// no writer is ever inside with anyone, the writers' non-atomic read-modify-write of a counter
/// loses no increment, and readers were inside together.
#[test]
fn writers_exclude_and_readers_share_across_processes() {
    let server = RedisServer::start();
    let name = unique_name("rw-mix");
    let (processes, tasks, iterations) = (3, 4, 15);
    let mut workers = lock_tests::Workers::command(WORKER);
    for _ in 0..processes {
        workers = workers.worker([
            "rw-mix".to_owned(),
            server.url(),
            name.clone(),
            tasks.to_string(),
            iterations.to_string(),
        ]);
    }
    let outputs = workers.spawn().wait_all(Duration::from_secs(120));
    let (mut writes, mut most) = (0u64, 0u64);
    for output in &outputs {
        output.assert_success();
        assert_eq!(output.field("violations"), "0", "{}", output.stdout);
        writes += output.field("writes").parse::<u64>().expect("writes");
        most = most.max(output.field("max_readers").parse().expect("max_readers"));
    }
    let counter: u64 = server.cmd(&["GET", &format!("{name}:counter")]);
    assert_eq!(counter, writes, "a write was lost: writers overlapped");
    assert!(
        most >= 2,
        "readers never shared the lock (at most {most} inside at once)"
    );
    assert_rw_released(&server, &name);
}

/// Three reader processes hold the lock together (each prints `held` while the others hold it);
/// they are SIGKILLed, and each frees its share when its own lease ends (watchdog mode, 1 s),
/// though a reader of this test holds on with a fixed lease of 30 s: the next script to look (a
/// writer's try) drops them. When this test's reader lets go, the waiting writer is served at
/// once, not when the last lease in the lock ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_several_processes_share_and_a_killed_readers_share_ends_with_its_lease() {
    let server = RedisServer::start();
    let name = unique_name("rw-processes");
    let client = connect(&server).await;
    let mut workers = lock_tests::Workers::command(WORKER);
    for _ in 0..3 {
        workers = workers.worker(["rw-hold", &server.url(), &name, "read", "0", "1000"]);
    }
    let mut readers = workers.spawn();
    for i in 0..3 {
        assert!(
            readers.wait_for_stdout(i, "held=1", Duration::from_secs(20)),
            "reader process {i} did not get in beside the others: {}",
            readers.stdout_so_far(i)
        );
    }
    let mine = client
        .read_write_lock(&name)
        .read()
        .try_acquire(Duration::from_secs(5), Some(Duration::from_secs(30)))
        .await
        .expect("a fourth reader");
    assert_eq!(rw_holds(&server, &name), 4);
    for i in 0..3 {
        readers.kill(i);
    }
    // Their leases end at most one watchdog timeout (1 s) after their last renewal.
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let writer = {
        let lock = client.read_write_lock(&name);
        tokio::spawn(async move {
            lock.write()
                .try_acquire(Duration::from_secs(10), None)
                .await
        })
    };
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    assert_eq!(
        rw_holds(&server, &name),
        1,
        "the writer's try found the killed readers' leases over and dropped their shares"
    );
    let released = Instant::now();
    mine.unlock().await.expect("unlock");
    let writing = writer.await.expect("join").expect("the writer is served");
    assert!(released.elapsed() < Duration::from_secs(1));
    writing.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
}

/// A read hold taken under the scope's write hold (a downgrade) is renewed on its own once the
/// write hold is released (Redisson issue 4217 lost it): with a watchdog timeout of 1 s it is
/// still held 2.5 s later, and a writer still cannot get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgraded_read_hold_is_renewed_after_the_write_is_released() {
    let server = RedisServer::start();
    let client = lock_tests::locks::client_with_watchdog(&server, Duration::from_secs(1)).await;
    let name = unique_name("rw-downgrade-renewed");
    let lock = client.read_write_lock(&name);
    let writing = lock.write().acquire().await.expect("write");
    let reading = writing
        .scope(lock.read().acquire())
        .await
        .expect("downgrade");
    writing.unlock().await.expect("release the write");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        !reading.is_lease_lost(),
        "the downgraded read hold lost its lease"
    );
    assert_eq!(
        rw_holds(&server, &name),
        1,
        "the read hold expired: it was not renewed"
    );
    let err = connect(&server)
        .await
        .read_write_lock(&name)
        .write()
        .try_acquire(Duration::from_millis(200), None)
        .await
        .expect_err("the reader holds it");
    assert!(err.is_timeout(), "{err}");
    reading.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}
