//! What a lock tells an operator (issue "Operations"): `Lock::info` and `FairLock::info` (who
//! holds it, since when, how often re-entered, how long its lease has left, who waits, the last
//! token), the `info` of every other primitive (read-write lock, semaphore, latch, multi-lock,
//! Redlock) and `LockClient::held_locks` (which locks are held), against a real Redis.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, LockInfo, Redlock};
use lock_tests::{
    RedisServer,
    locks::{
        assert_released, assert_rw_released, await_queued, client_named, eventually, hold_records,
        lock_key, redlock_on_every_master, rw_key, sem_key, spawn_waiters, take_once,
    },
    start_masters, unique_name,
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
    // The last token handed out, not the fencing state its release counted one past it.
    let again = holding.lock(&name).acquire().await.expect("free");
    let last = again.fencing_token();
    again.unlock().await.expect("unlock");
    let released = holding.lock(&name).info().await.expect("info");
    assert_eq!(released.last_fencing_token(), Some(last));
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
    let _: () = server.cmd(&["SET", &rw_key(&name), "x"]);
    let _: () = server.cmd(&["SET", &format!("{}:sem", lock_key(&name)), "x"]);
    let rw = client.read_write_lock(&name).info().await.map(drop);
    let sem = client.semaphore(&name).info().await.map(drop);
    for result in [rw, sem] {
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
    take_once(&client, &released).await;
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
    assert!(
        matches!(
            err,
            LockError::Config {
                mistake: lock_runtime::Mistake::InvalidArgument,
                ..
            }
        ),
        "{err}"
    );

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

/// Asserts that `owner` is an owner id (or permit id) handed out by `client`.
fn assert_owned_by(owner: &str, client: &LockClient) {
    assert!(
        owner.starts_with(&format!("{}:", client.id())),
        "{owner} is not an id of client {}",
        client.id()
    );
}

/// Asserts that `held_for` was recorded, at least `at_least` and under 5 s.
fn assert_held_for(held_for: Option<Duration>, at_least: Duration) {
    let held_for = held_for.expect("recorded");
    assert!(
        held_for >= at_least && held_for < Duration::from_secs(5),
        "held for {held_for:?}, expected at least {at_least:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_read_write_lock_names_two_readers_then_nothing() {
    let server = RedisServer::start();
    let reading = client_named(&server, "reader-a").await;
    let other = client_named(&server, "reader-b").await;
    let name = unique_name("info-rw-read");
    let doc = reading.read_write_lock(&name);
    let free = doc.info().await.expect("info");
    assert!(!free.is_locked() && free.writer().is_none() && free.readers().is_empty());
    assert!(
        server.keys(&format!("*{name}*")).is_empty(),
        "describing writes nothing"
    );

    let first = doc
        .read()
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(20)))
        .await
        .expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = other
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("shared");
    let info = doc.info().await.expect("info");
    assert_eq!(info.name(), name);
    assert!(info.is_locked() && info.writer().is_none(), "{info:?}");
    assert_eq!(info.read_holds(), 2);
    // Soonest lease end first: the fixed 20 s lease ends before the 30 s watchdog lease.
    let [a, b] = info.readers() else {
        panic!("two readers: {info:?}")
    };
    assert_owned_by(a.owner(), &reading);
    assert_eq!(a.client_name(), Some("reader-a"));
    assert_held_for(a.held_for(), Duration::from_millis(300));
    assert_owned_by(b.owner(), &other);
    assert_eq!(b.client_name(), Some("reader-b"));
    assert_held_for(b.held_for(), Duration::ZERO);
    assert!(b.held_for() < a.held_for(), "{info:?}");
    for reader in info.readers() {
        assert_eq!(reader.hold_count(), 1);
        assert!(
            reader
                .ttl()
                .is_some_and(|ttl| ttl <= Duration::from_secs(30))
        );
    }
    let ttls: Vec<_> = info.readers().iter().filter_map(|r| r.ttl()).collect();
    assert!(
        ttls[0] <= Duration::from_secs(20) && ttls[1] > Duration::from_secs(20),
        "{ttls:?}"
    );
    assert_eq!(info.last_fencing_token(), Some(first.fencing_token()));

    first.unlock().await.expect("unlock");
    second.unlock().await.expect("unlock");
    let info = doc.info().await.expect("info");
    assert!(!info.is_locked() && info.readers().is_empty(), "{info:?}");
    assert_rw_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_read_write_lock_names_the_writer_its_reentries_and_a_waiting_reader() {
    let server = RedisServer::start();
    let writing = client_named(&server, "writer").await;
    let waiting = client_named(&server, "waiter").await;
    let name = unique_name("info-rw-write");
    let doc = writing.read_write_lock(&name);
    let guard = doc
        .write()
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(20)))
        .await
        .expect("free");
    let again = guard
        .scope(doc.write().acquire())
        .await
        .expect("re-entered");
    let reader = {
        let lock = waiting.read_write_lock(&name);
        tokio::spawn(async move { lock.read().try_acquire(Duration::from_secs(10), None).await })
    };
    let queue = format!("{}:queue", rw_key(&name));
    let queued = eventually(Duration::from_secs(5), || {
        server.cmd::<i64>(&["ZCARD", &queue]) == 1
    })
    .await;
    assert!(queued, "the reader never queued");

    let info = doc.info().await.expect("info");
    let writer = info.writer().expect("written");
    assert_owned_by(writer.owner(), &writing);
    assert_eq!(writer.client_name(), Some("writer"));
    assert_held_for(writer.held_for(), Duration::ZERO);
    assert_eq!(writer.hold_count(), 2, "re-entered once");
    let ttl = writer.ttl().expect("a lease");
    assert!(
        ttl > Duration::from_secs(15) && ttl <= Duration::from_secs(20),
        "{ttl:?}"
    );
    assert_eq!(info.read_holds(), 0);
    assert_eq!(info.last_fencing_token(), Some(guard.fencing_token()));
    assert_eq!(info.waiters(), 1, "{info:?}");
    let waiter = &info.queue()[0];
    assert_owned_by(waiter.owner(), &waiting);
    assert!(!waiter.wants_write(), "it waits to read");

    again.unlock().await.expect("unlock the re-entry");
    guard.unlock().await.expect("unlock");
    let read = reader
        .await
        .expect("join")
        .expect("let in after the writer");
    let info = doc.info().await.expect("info");
    assert!(info.writer().is_none() && info.waiters() == 0, "{info:?}");
    assert_eq!(info.read_holds(), 1);
    read.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_semaphore_lists_permits_by_holder_and_its_waiter() {
    let server = RedisServer::start();
    let one = client_named(&server, "one").await;
    let two = client_named(&server, "two").await;
    let name = unique_name("info-sem");
    let sem = one.semaphore(&name);
    let unset = sem.info().await.expect("info");
    assert_eq!(
        (unset.total_permits(), unset.available_permits()),
        (None, 0)
    );
    assert!(sem.try_set_permits(5).await.expect("set"));

    let a = sem
        .try_acquire(2, Duration::from_secs(1), Some(Duration::from_secs(20)))
        .await
        .expect("free");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = two.semaphore(&name).acquire(3).await.expect("free");
    let waiter = {
        let sem = two.semaphore(&name);
        tokio::spawn(async move { sem.try_acquire(4, Duration::from_secs(10), None).await })
    };
    let queue = format!("{}:sem:queue", lock_key(&name));
    let queued = eventually(Duration::from_secs(5), || {
        server.cmd::<i64>(&["ZCARD", &queue]) == 1
    })
    .await;
    assert!(queued, "the waiter never queued");

    let info = sem.info().await.expect("info");
    assert_eq!(info.name(), name);
    let named: Vec<_> = info.holders().iter().map(|h| h.client_name()).collect();
    assert_eq!(named, [Some("one"), Some("two")]);
    assert_held_for(info.holders()[0].held_for(), Duration::from_millis(200));
    assert!(info.holders()[1].held_for() < info.holders()[0].held_for());
    assert_eq!(info.total_permits(), Some(5));
    assert_eq!((info.used_permits(), info.available_permits()), (5, 0));
    assert_eq!(info.acquisitions(), 2);
    let held: Vec<_> = info
        .holders()
        .iter()
        .map(|h| (h.id(), h.permits()))
        .collect();
    // Soonest lease end first: the fixed 20 s lease, then the 30 s watchdog lease.
    assert_eq!(held, [(a.id(), 2), (b.id(), 3)]);
    assert_owned_by(a.id(), &one);
    assert_owned_by(b.id(), &two);
    let ttl = info.holders()[0].ttl().expect("a lease");
    assert!(
        ttl > Duration::from_secs(15) && ttl <= Duration::from_secs(20),
        "{ttl:?}"
    );
    assert_eq!(info.waiters(), 1);
    assert_eq!(info.queue()[0].permits(), 4);
    assert_owned_by(info.queue()[0].id(), &two);

    a.release().await.expect("release");
    b.release().await.expect("release");
    let taken = waiter.await.expect("join").expect("four fit now");
    let info = sem.info().await.expect("info");
    assert_eq!((info.used_permits(), info.available_permits()), (4, 1));
    assert_eq!(info.waiters(), 0);
    taken.release().await.expect("release");
    let info = sem.info().await.expect("info");
    assert!(
        info.holders().is_empty() && info.available_permits() == 5,
        "{info:?}"
    );
    let records = hold_records(&server, &sem_key(&name));
    assert!(records.is_empty(), "records left: {records:?}");
    // The definition stays (it has no TTL, by design); nothing else of it is left.
    let _: () = server.cmd(&["DEL", &sem_key(&name)]);
    assert_released(&server, &name);
}

/// The record of who took a hold lives exactly as long as the hold: a read hold's and a
/// permit's goes with its release, with the end of its lease (dropped by the next script that
/// writes), with a release by id and with a force-unlock; a semaphore's hash, which has no TTL,
/// keeps none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_holders_go_with_their_holds() {
    let server = RedisServer::start();
    let client = client_named(&server, "short-lived").await;
    let name = unique_name("info-records");
    let short = Some(Duration::from_millis(300));

    let doc = client.read_write_lock(&name);
    let ending = doc
        .read()
        .try_acquire(Duration::ZERO, short)
        .await
        .expect("free");
    let staying = doc.read().acquire().await.expect("shared");
    let released = doc.read().acquire().await.expect("shared");
    let records = || hold_records(&server, &rw_key(&name));
    assert_eq!(records().len(), 3);
    released.unlock().await.expect("unlock");
    assert_eq!(records().len(), 2, "released");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The next acquisition drops the hold whose lease ended, and its record.
    let writer = doc
        .write()
        .try_acquire(Duration::from_millis(50), None)
        .await;
    assert!(writer.expect_err("read held").is_timeout());
    let info = doc.info().await.expect("info");
    assert_eq!(records(), [info.readers()[0].owner()], "lease ended");
    assert!(doc.force_unlock().await.expect("force-unlock"));
    assert!(records().is_empty(), "force-unlocked");
    for guard in [ending, staying] {
        assert!(guard.unlock().await.expect_err("gone").is_not_held());
    }
    assert_rw_released(&server, &name);

    let sem = client.semaphore(&name);
    sem.try_set_permits(3).await.expect("set");
    let ending = sem
        .try_acquire(1, Duration::ZERO, short)
        .await
        .expect("free");
    let by_id = sem.acquire(1).await.expect("free");
    let released = sem.acquire(1).await.expect("free");
    let records = || hold_records(&server, &sem_key(&name));
    assert_eq!(records().len(), 3);
    released.release().await.expect("release");
    assert!(sem.release_by_id(by_id.id()).await.expect("by id"));
    assert_eq!(records(), [ending.id()], "released");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sem.available_permits().await.expect("count"), 3);
    assert!(records().is_empty(), "lease ended");
    for permit in [ending, by_id] {
        assert!(permit.release().await.expect_err("gone").is_not_held());
    }
    let _: () = server.cmd(&["DEL", &sem_key(&name)]);
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_latch_gives_its_count_and_time_left() {
    let server = RedisServer::start();
    let client = client_named(&server, "latch").await;
    let name = unique_name("info-latch");
    let latch = client.count_down_latch(&name);
    let unset = latch.info().await.expect("info");
    assert!(!unset.is_set());
    assert_eq!(
        (unset.name(), unset.count(), unset.ttl()),
        (name.as_str(), 0, None)
    );
    assert!(latch.try_set_count(2).await.expect("set"));
    latch.count_down().await.expect("count down");
    let info = latch.info().await.expect("info");
    assert!(info.is_set());
    assert_eq!(info.count(), 1);
    let ttl = info.ttl().expect("a TTL");
    let day = lock_runtime::CountDownLatch::TTL;
    assert!(ttl <= day && ttl > day - Duration::from_secs(60), "{ttl:?}");
    latch.count_down().await.expect("count down");
    assert!(!latch.info().await.expect("info").is_set());
    assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_multi_lock_describes_each_member_in_name_order() {
    let server = RedisServer::start();
    let client = client_named(&server, "multi").await;
    let base = unique_name("info-multi");
    let names = [format!("{base}:b"), format!("{base}:a")];
    let multi = client.multi_lock(names.clone());
    let free = multi.info().await.expect("info");
    assert_eq!(free.len(), 2);
    assert!(free.iter().all(|member| !member.is_held()));

    let both = multi.acquire().await.expect("free");
    let info = multi.info().await.expect("info");
    let listed: Vec<_> = info.iter().map(LockInfo::name).collect();
    assert_eq!(
        listed,
        [names[1].as_str(), names[0].as_str()],
        "in name order"
    );
    for (member, guard) in info.iter().zip(both.guards()) {
        let holder = member.holder().expect("held");
        assert_eq!(holder.client_name(), Some("multi"));
        assert_eq!(member.last_fencing_token(), Some(guard.fencing_token()));
    }
    both.unlock().await.expect("unlock");
    assert!(
        multi
            .info()
            .await
            .expect("info")
            .iter()
            .all(|m| !m.is_held())
    );
    for name in &names {
        assert_released(&server, name);
    }
    let none = client.multi_lock(Vec::<String>::new());
    assert!(none.info().await.expect("info").is_empty());
}

/// A master that does not answer (frozen with SIGSTOP) is reported, with the others' answers;
/// it neither fails the call nor holds it up past the node timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_redlock_reports_each_master_and_one_that_is_paused() {
    let masters = start_masters(3);
    let mut clients = Vec::new();
    for (i, master) in masters.iter().enumerate() {
        clients.push(client_named(master, &format!("red-{i}")).await);
    }
    let redlock = Redlock::builder(clients)
        .node_timeout(Duration::from_millis(200))
        .build()
        .expect("a Redlock");
    let name = unique_name("info-redlock");
    let lock = redlock.lock(&name);
    let guard = redlock_on_every_master(&redlock, &name, None).await;
    let info = lock.info().await;
    assert_eq!((info.name(), info.quorum()), (name.as_str(), 2));
    assert_eq!((info.held_on(), info.answered()), (3, 3));

    masters[1].pause();
    let started = std::time::Instant::now();
    let info = lock.info().await;
    let took = started.elapsed();
    masters[1].resume();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!((info.held_on(), info.answered()), (2, 2));
    let answers = info.masters();
    assert!(answers[1].is_err(), "{answers:?}");
    for i in [0, 2] {
        let master = answers[i].as_ref().expect("answered");
        let holder = master.holder().expect("held");
        assert_eq!(holder.client_name(), Some(format!("red-{i}").as_str()));
        assert_owned_by(holder.owner(), &redlock.clients()[i]);
    }

    guard.unlock().await.expect("unlock");
    let info = lock.info().await;
    assert_eq!((info.held_on(), info.answered()), (0, 3));
    for master in &masters {
        assert_released(master, &name);
    }
}
