//! The semaphore (DESIGN 4.1): permits shared across processes, each acquisition leased like a
//! lock, released on every path, waking the waiters that fit, and misuse refused at once.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError, Semaphore};
use lock_tests::{
    RedisServer, TcpProxy,
    late::{assert_resend_answers, deliver_after_the_memos, first_copy_held, quick_client_through},
    locks::{
        A_LIST_ITEM, assert_no_key_without_ttl, assert_reports_wrong_type, await_subscribers,
        client_with_watchdog, connect, eventually, hold_records, lock_key, put_a_list, sem_key,
    },
    unique_name,
};
use tokio::task::JoinHandle;

use crate::WORKER;

/// How many waiters queue on the semaphore.
fn queued(server: &RedisServer, name: &str) -> i64 {
    server.cmd(&["ZCARD", &format!("{}:sem:queue", lock_key(name))])
}

/// Asserts no permit is held, and every key of the semaphore but its definition (whose leases,
/// and lone lease, are gone with the last permit) has a TTL.
fn assert_no_permit_held(server: &RedisServer, name: &str) {
    let used: Option<i64> = server.cmd(&["HGET", &format!("{}:sem", lock_key(name)), "used"]);
    assert_eq!(used.unwrap_or(0), 0, "permits of {name} are still held");
    let leases: i64 = server.cmd(&["EXISTS", &format!("{}:sem:leases", lock_key(name))]);
    assert_eq!(leases, 0, "leases of {name} are left");
    let lone: i64 = server.cmd(&["EXISTS", &format!("{}:sem:lone", lock_key(name))]);
    assert_eq!(lone, 0, "the lone acquisition of {name} is left");
    let records = hold_records(server, &sem_key(name));
    assert!(
        records.is_empty(),
        "records of {name} are left: {records:?}"
    );
    for key in server.keys(&format!("{}*", lock_key(name))) {
        if key == format!("{}:sem", lock_key(name)) {
            continue;
        }
        let ttl: i64 = server.cmd(&["PTTL", &key]);
        assert!(
            ttl > 0,
            "key {key} of semaphore {name} has no TTL (pttl {ttl})"
        );
    }
}

/// Who holds permits of `sem`, and how many each, as `info` tells.
async fn permits_held(sem: &Semaphore) -> Vec<(String, u64)> {
    let info = sem.info().await.expect("info");
    info.holders()
        .iter()
        .map(|holder| (holder.id().to_owned(), holder.permits()))
        .collect()
}

/// An acquire that finds no permit used and nobody queued takes its permits lone: it looks for
/// no ended lease (there is none), asks no time, and writes one key, its lease that key's TTL,
/// instead of the hash and the leases, and counts the lone acquisitions up in the hash (its
/// token); its release, the only acquisition's, deletes that key and counts one past, which
/// answers a resend (no memo). Four commands, then three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_acquire_and_release_run_seven_commands() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-commands");
    let sem = client.semaphore(&name);
    assert!(sem.try_set_permits(2).await.expect("set"));
    let monitor = server.monitor();
    // A fixed lease: no renewal runs while the commands are watched.
    let permit = sem
        .try_acquire(1, Duration::from_secs(1), Some(Duration::from_secs(60)))
        .await
        .expect("free");
    permit.release().await.expect("release");
    // The scripts' first calls load them first (a call that ran nothing, `FUNCTION LOAD`).
    let calls: Vec<_> = lock_tests::ran_by_each_call(&monitor.stop())
        .into_iter()
        .filter(|ran| !ran.is_empty())
        .collect();
    assert_eq!(
        calls,
        [
            vec!["hmget", "exists", "set", "hincrby"],
            vec!["get", "del", "hincrby"],
        ],
        "the acquire's and the release's commands"
    );
    assert_no_permit_held(&server, &name);
}

/// A release wakes the waiter its permits fit on that waiter's client's own channel of the
/// semaphore, which no other client subscribes to (as the locks' releases do, see
/// `lock::waiting`): the message reaches the waiter's process only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_the_waiter_on_its_clients_own_channel() {
    let server = RedisServer::start();
    let (holding, waiting) = (connect(&server).await, connect(&server).await);
    let name = unique_name("sem-own-channel");
    // Fixed leases: no renewal runs while the commands are watched.
    let lease = Some(Duration::from_secs(60));
    assert!(
        holding
            .semaphore(&name)
            .try_set_permits(1)
            .await
            .expect("set")
    );
    let permit = holding
        .semaphore(&name)
        .try_acquire(1, Duration::from_secs(1), lease)
        .await
        .expect("free");
    let waiter = {
        let sem = waiting.semaphore(&name);
        tokio::spawn(async move { sem.try_acquire(1, Duration::from_secs(10), lease).await })
    };
    assert!(
        eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await,
        "the waiter never queued"
    );
    let own = format!("{}:unlock:{}", sem_key(&name), waiting.id());
    await_subscribers(&server, &own, 1).await;

    let monitor = server.monitor();
    permit.release().await.expect("release");
    let served = waiter.await.expect("join").expect("the waiter");
    assert_eq!(lock_tests::published_channels(&monitor.stop()), [own]);
    served.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_are_set_once_counted_taken_and_given_back() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-basic");
    let sem = client.semaphore(&name);
    assert_eq!(sem.available_permits().await.expect("count"), 0);
    assert!(sem.try_set_permits(3).await.expect("set"));
    assert!(!sem.try_set_permits(10).await.expect("set once"));
    assert_eq!(sem.available_permits().await.expect("count"), 3);

    let two = sem.acquire(2).await.expect("two");
    assert_eq!(two.permits(), 2);
    let one = sem.acquire(1).await.expect("one");
    assert_ne!(one.id(), two.id(), "one permit id per acquisition");
    assert_eq!(sem.available_permits().await.expect("count"), 0);
    let err = sem
        .try_acquire(1, Duration::from_millis(200), None)
        .await
        .expect_err("none free");
    assert!(err.is_timeout(), "{err}");
    two.release().await.expect("release");
    assert_eq!(sem.available_permits().await.expect("count"), 2);
    sem.add_permits(2).await.expect("add");
    assert_eq!(sem.available_permits().await.expect("count"), 4);
    drop(one);
    assert!(
        eventually(Duration::from_secs(2), || {
            let used: i64 = server.cmd(&["HGET", &format!("{}:sem", lock_key(&name)), "used"]);
            used == 0
        })
        .await,
        "a dropped permit is released"
    );
    assert_no_permit_held(&server, &name);
    assert_no_key_without_ttl(&server, &format!("{name}:sem:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_is_an_error_at_once() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-misuse");
    let sem = client.semaphore(&name);
    let wait = Duration::from_secs(10);
    let asked = Instant::now();
    let never_set = sem.try_acquire(1, wait, None).await.expect_err("never set");
    assert!(
        matches!(
            never_set,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{never_set}"
    );
    assert!(
        never_set.to_string().contains("try_set_permits"),
        "{never_set}"
    );

    sem.try_set_permits(2).await.expect("set");
    let zero = sem.try_acquire(0, wait, None).await.expect_err("zero");
    assert!(
        matches!(
            zero,
            LockError::Config {
                mistake: lock_runtime::Mistake::InvalidArgument,
                ..
            }
        ),
        "{zero}"
    );
    let too_many = sem
        .try_acquire(3, wait, None)
        .await
        .expect_err("more than the total");
    assert!(
        matches!(
            too_many,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{too_many}"
    );
    assert!(
        too_many.to_string().contains("2 permits in all"),
        "{too_many}"
    );
    assert!(asked.elapsed() < Duration::from_secs(1), "misuse waited");
    assert_eq!(queued(&server, &name), 0, "misuse queued");
    assert_no_permit_held(&server, &name);
}

/// A key of another type where the semaphore keeps its lone acquisition or its leases (an
/// operator's or another program's): the acquisition fails with an error that says so and names
/// the semaphore, takes no permit, and leaves the key as it was. The lone key is looked at
/// before any permit is taken; the leases once another acquisition holds permits in the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_among_the_semaphores_fails_the_acquisition_and_takes_nothing() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let wait = Duration::from_millis(300);
    for (suffix, held_beside) in [("lone", 0), ("leases", 2)] {
        let name = unique_name("sem-wrong-type");
        let sem = client.semaphore(&name);
        sem.try_set_permits(3).await.expect("set");
        // Two acquisitions hold a permit each: the second moves the first's lone key into the
        // hash and the leases, where the acquisition under test will look.
        let mut beside = Vec::new();
        for _ in 0..held_beside {
            beside.push(
                sem.try_acquire(1, wait, None)
                    .await
                    .expect("a permit beside"),
            );
        }
        let key = format!("{}:sem:{suffix}", lock_key(&name));
        put_a_list(&server, &key);
        let err = sem
            .try_acquire(1, wait, None)
            .await
            .expect_err("a key of another type");
        assert_reports_wrong_type(&err, &name, suffix);
        // Read from the hash: `info()` reads the lone key too, and fails the same way.
        assert_eq!(
            hold_records(&server, &sem_key(&name)).len(),
            held_beside,
            "{suffix}: the failed acquisition took no permit"
        );
        let kept: Vec<String> = server.cmd(&["LRANGE", &key, "0", "-1"]);
        assert_eq!(kept, [A_LIST_ITEM], "{suffix}: the key is left as it was");
        let _: i64 = server.cmd(&["DEL", &key]);
        for permit in beside {
            permit.release().await.expect("release a permit beside");
        }
        assert_no_permit_held(&server, &name);
    }
}

/// One acquisition holds all three permits; three waiters of three clients (standing for three
/// processes) want one each. The release wakes all three at once, by name, not one per process
/// and not by their timers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_of_n_permits_wakes_n_waiters_across_clients() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-wake-n");
    let sem = client.semaphore(&name);
    sem.try_set_permits(3).await.expect("set");
    let all = sem.acquire(3).await.expect("all three");
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let sem = connect(&server).await.semaphore(&name);
        waiters.push(tokio::spawn(async move {
            let permit = sem.try_acquire(1, Duration::from_secs(10), None).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            permit.release().await
        }));
    }
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 3).await);
    let released = Instant::now();
    all.release().await.expect("release");
    assert!(
        eventually(Duration::from_secs(1), || queued(&server, &name) == 0).await,
        "the three waiters were all served at once"
    );
    let served = released.elapsed();
    for waiter in waiters {
        waiter.await.expect("join").expect("served and released");
    }
    assert!(
        served < Duration::from_secs(1),
        "served {served:?} after the release"
    );
    assert_no_permit_held(&server, &name);
}

/// Permits with a fixed lease come back when it ends, though nobody released them; a waiter
/// is served then (it sleeps at most until the nearest lease end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_come_back_when_their_lease_ends() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-lease");
    let sem = client.semaphore(&name);
    sem.try_set_permits(1).await.expect("set");
    let leased = sem
        .try_acquire(1, Duration::from_secs(1), Some(Duration::from_millis(500)))
        .await
        .expect("leased");
    let asked = Instant::now();
    let next = sem
        .try_acquire(1, Duration::from_secs(5), None)
        .await
        .expect("served when the lease ends");
    assert!(asked.elapsed() < Duration::from_millis(1_200));
    assert!(leased.is_lease_lost());
    assert!(
        leased
            .release()
            .await
            .expect_err("lease ended")
            .is_not_held()
    );
    next.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

/// Three processes of six tasks each take 1 or 2 of 5 permits, 20 times each: never more than
/// 5 in use at once, and the permits were shared (more than 2 in use at some point).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_total_in_use_across_processes() {
    let server = RedisServer::start();
    let name = unique_name("sem-mix");
    let total = 5;
    let sem = connect(&server).await.semaphore(&name);
    sem.try_set_permits(total).await.expect("set");
    let mut workers = lock_tests::Workers::command(WORKER);
    for _ in 0..3 {
        workers = workers.worker([
            "sem-mix".to_owned(),
            server.url(),
            name.clone(),
            "6".to_owned(),
            "20".to_owned(),
            total.to_string(),
        ]);
    }
    let mut most = 0u64;
    for output in workers
        .spawn()
        .wait_all_async(Duration::from_secs(120))
        .await
    {
        output.assert_success();
        assert_eq!(
            output.field("violations"),
            "0",
            "over-granted: {}",
            output.stdout
        );
        most = most.max(output.field("max_in_use").parse().expect("max_in_use"));
    }
    assert!(
        most > 2,
        "the permits were never shared (at most {most} in use)"
    );
    assert_no_permit_held(&server, &name);
}

/// A holder's process SIGKILLed (watchdog timeout 1 s): its permits come back when its lease
/// ends, and a waiter of another process is served then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_permits_come_back() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-killed");
    let sem = client.semaphore(&name);
    sem.try_set_permits(2).await.expect("set");
    let mut holder = lock_tests::Workers::command(WORKER)
        .worker(["sem-hold", &server.url(), &name, "2", "1000"])
        .spawn();
    assert!(
        holder.wait_for_stdout(0, "id=", Duration::from_secs(20)),
        "the holder did not take the permits: {}",
        holder.stdout_so_far(0)
    );
    holder.kill(0);
    let killed = Instant::now();
    let permit = sem
        .try_acquire(2, Duration::from_secs(10), None)
        .await
        .expect("the killed holder's permits come back");
    assert!(
        killed.elapsed() < Duration::from_millis(2_000),
        "served {:?} after the kill; the lease is 1 s",
        killed.elapsed()
    );
    permit.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

/// An acquisition that took its permits lone (nobody else held any) stays lone while the
/// watchdog renews it: each renewal re-arms the lone key's TTL, so the permits stay held long
/// past the first lease, counted by `info` and `available_permits`, and leave with the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_acquisition_is_renewed_in_its_own_key() {
    let server = RedisServer::start();
    let watchdog = Duration::from_millis(600);
    let client = client_with_watchdog(&server, watchdog).await;
    let name = unique_name("sem-lone-renewed");
    let sem = client.semaphore(&name);
    sem.try_set_permits(3).await.expect("set");
    let permit = sem.acquire(2).await.expect("free");
    let lone = format!("{}:sem:lone", lock_key(&name));
    tokio::time::sleep(watchdog * 4).await;
    assert_eq!(sem.available_permits().await.expect("count"), 1);
    assert_eq!(
        permits_held(&sem).await,
        [(permit.id().to_owned(), 2)],
        "held past four leases"
    );
    let ttl: i64 = server.cmd(&["PTTL", &lone]);
    assert!(
        0 < ttl && ttl <= 600,
        "still lone, its lease the key's TTL: {ttl} ms"
    );
    permit.release().await.expect("release");
    assert_eq!(sem.available_permits().await.expect("count"), 3);
    assert_no_permit_held(&server, &name);
}

/// Another process's permits released by id: the release says so, the permits are free, and
/// the holder learns its lease is lost at its next renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_are_released_by_id_from_another_process() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-by-id");
    let sem = client.semaphore(&name);
    sem.try_set_permits(1).await.expect("set");
    let mut holder = lock_tests::Workers::command(WORKER)
        .worker(["sem-hold", &server.url(), &name, "1", "900"])
        .spawn();
    assert!(holder.wait_for_stdout(0, "id=", Duration::from_secs(20)));
    let id = holder
        .stdout_so_far(0)
        .lines()
        .find_map(|line| line.strip_prefix("id="))
        .expect("id")
        .to_owned();
    assert!(sem.release_by_id(&id).await.expect("release by id"));
    assert!(
        !sem.release_by_id(&id).await.expect("again"),
        "released once"
    );
    assert_eq!(sem.available_permits().await.expect("count"), 1);
    assert!(
        holder.wait_for_stdout(0, "lost=1", Duration::from_secs(3)),
        "the holder learns its permits are gone: {}",
        holder.stdout_so_far(0)
    );
    assert_no_permit_held(&server, &name);
}

/// A waiter whose future is dropped leaves the queue, and one that times out too: nothing of
/// them stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_that_give_up_leave_nothing_behind() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-give-up");
    let sem = client.semaphore(&name);
    sem.try_set_permits(1).await.expect("set");
    let held = sem.acquire(1).await.expect("held");
    let dropped = {
        let sem = sem.clone();
        tokio::spawn(async move { sem.acquire(1).await })
    };
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    dropped.abort();
    let _ = dropped.await;
    assert!(eventually(Duration::from_secs(2), || queued(&server, &name) == 0).await);
    let err = sem
        .try_acquire(1, Duration::from_millis(200), None)
        .await
        .expect_err("held");
    assert!(err.is_timeout());
    assert!(eventually(Duration::from_secs(2), || queued(&server, &name) == 0).await);
    held.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

/// `add_permits` whose first copy is stuck on a retired connection: the client resends it and
/// is answered, and the copy landing after the client's memos are gone adds nothing (DESIGN 3.2:
/// a copy counts once, however late). Before, it was sent once: the call failed after one
/// response timeout though the copy added the permits later, so a caller who tried again added
/// them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_add_permits_adds_once() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;
    let name = unique_name("sem-late-add");
    let sem = client.semaphore(&name);
    sem.try_set_permits(1).await.expect("set");
    sem.add_permits(1).await.expect("warm-up");

    let added = first_copy_held(&proxy, sem.add_permits(2)).await;
    added.expect("resent after a response timeout, and answered");
    assert_eq!(sem.available_permits().await.expect("count"), 4);
    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    assert_eq!(
        sem.available_permits().await.expect("count"),
        4,
        "the late copy added the permits again"
    );
    assert_no_permit_held(&server, &name);
}

/// `try_set_permits` resent after its reply was lost still says it set the total; and its first
/// copy, landing after the semaphore was deleted (the documented way to remove one) and after
/// the client's memos are gone, does not make the semaphore again. Before, the resend answered
/// `false`, and the late copy set the total again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_set_permits_resent_or_late_sets_once() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;

    // Warm-up: the script is cached, so the first attempt runs (a NOSCRIPT reply lost with
    // the others would leave nothing to resend over).
    let warm_up = client.semaphore(unique_name("sem-warm-up"));
    assert!(warm_up.try_set_permits(1).await.expect("warm-up"));
    let name = unique_name("sem-resent-set");
    let sem = client.semaphore(&name);
    proxy.drop_replies(true);
    let setting = tokio::spawn({
        let sem = sem.clone();
        async move { sem.try_set_permits(5).await }
    });
    let total = || server.cmd::<Option<i64>>(&["HGET", &sem_key(&name), "total"]);
    assert!(
        eventually(Duration::from_secs(3), || total() == Some(5)).await,
        "the first attempt ran"
    );
    proxy.drop_replies(false);
    assert!(
        setting.await.expect("join").expect("set"),
        "the resend said the total was set already, though its first attempt set it"
    );

    let name = unique_name("sem-late-set");
    let sem = client.semaphore(&name);
    let set = first_copy_held(&proxy, sem.try_set_permits(3)).await;
    assert!(set.expect("set"));
    let _: i64 = server.cmd(&["DEL", &sem_key(&name)]);
    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    let exists: i64 = server.cmd(&["EXISTS", &sem_key(&name)]);
    assert_eq!(
        exists, 0,
        "the late copy made the deleted semaphore again, with 3 permits"
    );
    assert_no_key_without_ttl(&server, &name);
}

/// A permit release, and a release by id, whose first copies land after the client's memos are
/// gone, while a later acquisition holds the permits: they free nothing of it, because each
/// names its permit id, which left the semaphore with the first release. (Idempotent by
/// construction; this guards it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_permit_release_frees_nothing_of_a_later_acquisition() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;
    let name = unique_name("sem-late-release");
    let sem = client.semaphore(&name);
    sem.try_set_permits(2).await.expect("set");
    let first = sem.acquire(1).await.expect("first");
    let second = sem.acquire(1).await.expect("second");
    let second_id = second.id().to_owned();

    let (released, by_id) = first_copy_held(&proxy, async {
        tokio::join!(first.release(), sem.release_by_id(&second_id))
    })
    .await;
    released.expect("release");
    assert!(by_id.expect("release by id"), "the second was held");
    assert!(
        second
            .release()
            .await
            .expect_err("released by id")
            .is_not_held(),
        "released by id already"
    );
    let later = sem
        .acquire(2)
        .await
        .expect("both permits, for a later acquisition");

    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    assert_eq!(
        sem.available_permits().await.expect("count"),
        0,
        "a late release copy freed permits of a later acquisition"
    );
    assert_eq!(
        permits_held(&sem).await,
        [(later.id().to_owned(), 2)],
        "the later acquisition still holds its permits"
    );
    later.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

/// Spawns a task that takes `permits` of `sem` within `wait`, then holds them `hold` and
/// releases them; it returns how long after `since` it was served.
fn spawn_served_at(
    sem: Semaphore,
    permits: u32,
    wait: Duration,
    hold: Duration,
    since: Instant,
) -> JoinHandle<Result<Duration, LockError>> {
    tokio::spawn(async move {
        let permit = sem.try_acquire(permits, wait, None).await?;
        let served = since.elapsed();
        tokio::time::sleep(hold).await;
        permit.release().await?;
        Ok(served)
    })
}

/// First come, first served, for newcomers too: a waiter of one client queues for both permits
/// while one is held; a newcomer of another client asking for the free one does not take it
/// ahead of the queued waiter, who is served as soon as the held permit comes back. Before, the
/// newcomer took it at once and the queued waiter waited for it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_does_not_overtake_a_queued_waiter_across_clients() {
    let server = RedisServer::start();
    let (queued_client, newcomer_client) = (connect(&server).await, connect(&server).await);
    let name = unique_name("sem-fifo-newcomer");
    let sem = queued_client.semaphore(&name);
    sem.try_set_permits(2).await.expect("set");
    let held = sem.acquire(1).await.expect("one of two");
    let start = Instant::now();
    let waiter = spawn_served_at(
        sem.clone(),
        2,
        Duration::from_secs(10),
        Duration::ZERO,
        start,
    );
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);

    let newcomer = newcomer_client
        .semaphore(&name)
        .try_acquire(1, Duration::from_millis(500), None)
        .await;
    let err = newcomer.expect_err("the newcomer took the free permit ahead of the queued waiter");
    assert!(err.is_timeout(), "{err}");

    let released = start.elapsed();
    held.release().await.expect("release");
    let served = waiter.await.expect("join").expect("served");
    assert!(
        served - released < Duration::from_secs(1),
        "the queued waiter was served {:?} after the permit it waited for came back",
        served - released
    );
    assert_no_permit_held(&server, &name);
}

/// A large request at the head of the queue is not passed by a smaller one behind it, even when
/// the smaller one would fit: a permit whose fixed lease ends comes back while the head (two
/// permits, of one client) and a waiter for one (of another client) queue; both wake at the
/// lease end, and the small one waits for the head, which is served first once the other
/// permit comes back. Before, the small one took the permit at the lease end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_waiter_does_not_pass_a_large_head_across_clients() {
    let server = RedisServer::start();
    let (head_client, small_client) = (connect(&server).await, connect(&server).await);
    let name = unique_name("sem-fifo-head");
    let sem = head_client.semaphore(&name);
    sem.try_set_permits(2).await.expect("set");
    let held = sem.acquire(1).await.expect("one of two");
    let lease = Duration::from_millis(600);
    let leased = sem
        .try_acquire(1, Duration::from_secs(1), Some(lease))
        .await
        .expect("the other, leased");
    let start = Instant::now();
    let (wait, hold) = (Duration::from_secs(10), Duration::from_millis(200));
    let head = spawn_served_at(sem.clone(), 2, wait, hold, start);
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    let small = spawn_served_at(small_client.semaphore(&name), 1, wait, hold, start);
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 2).await);

    tokio::time::sleep(lease + Duration::from_millis(700)).await;
    assert!(leased.is_lease_lost(), "set-up: the lease ended");
    assert!(
        !small.is_finished(),
        "the small waiter took the permit that came back ahead of the large head"
    );
    assert_eq!(queued(&server, &name), 2, "both still queue");

    held.release().await.expect("release");
    let head_served = head.await.expect("join").expect("head served");
    let small_served = small.await.expect("join").expect("small served");
    assert!(
        head_served < small_served,
        "the head was served at {head_served:?}, after the small waiter at {small_served:?}"
    );
    drop(leased);
    assert!(
        eventually(Duration::from_secs(2), || queued(&server, &name) == 0).await,
        "nobody queues"
    );
    assert_no_permit_held(&server, &name);
}

/// A small waiter queued behind a large head that gives up is served at once, not at its timer:
/// the head leaving wakes whoever now fits. The small waiter's client looks again only every
/// 200 s, and the held permit's lease lasts 30 s, so a wake within a second is the head's.
/// Before, the small waiter did not queue at all: it took the free permit ahead of the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_waiter_behind_a_head_that_gives_up_is_served_at_once() {
    let server = RedisServer::start();
    let head_client = connect(&server).await;
    let small_client = client_with_watchdog(&server, Duration::from_secs(600)).await;
    let name = unique_name("sem-fifo-give-up");
    let sem = head_client.semaphore(&name);
    sem.try_set_permits(2).await.expect("set");
    let held = sem.acquire(1).await.expect("one of two");
    let start = Instant::now();
    let head_wait = Duration::from_secs(1);
    let head = spawn_served_at(sem.clone(), 2, head_wait, Duration::ZERO, start);
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    let small = spawn_served_at(
        small_client.semaphore(&name),
        1,
        Duration::from_secs(10),
        Duration::ZERO,
        start,
    );
    assert!(
        eventually(Duration::from_secs(5), || queued(&server, &name) == 2).await,
        "the small waiter queues behind the head (it did not take the free permit)"
    );

    let gave_up = head.await.expect("join").expect_err("the head's wait ends");
    assert!(gave_up.is_timeout(), "{gave_up}");
    let head_left = start.elapsed();
    let served = small.await.expect("join").expect("small served");
    assert!(
        served.saturating_sub(head_left) < Duration::from_secs(1),
        "the small waiter was served {:?} after the head gave up",
        served.saturating_sub(head_left)
    );
    held.release().await.expect("release");
    assert_no_permit_held(&server, &name);
}

/// How the permits of a release whose reply is lost left before its resend lands, in
/// [`a_resent_permit_release_answers_what_its_first_copy_did`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PermitsEnd {
    /// Taken lone; the first copy released them, and another acquisition came and went lone.
    Released,
    /// Taken lone; the key expired (deleted here) before the first copy ran, and another
    /// acquisition came (noting it) and went.
    Lost,
    /// Kept in the hash beside another acquisition; the first copy released them.
    ReleasedBeside,
    /// Kept in the hash beside another acquisition; their lease ended before the first copy
    /// ran, which dropped them (noted).
    LostBeside,
}

/// A permit release whose first copy runs in Redis but whose reply is lost is resent after the
/// response timeout (default settings). The resend answers what the first copy did, from the
/// semaphore's count of lone acquisitions and its notes of lost ones, with no memo: `Ok` if
/// that copy released the permits, `NotHeld` if they were gone already. With `deleted`, the
/// semaphore is deleted (`delete_if_unused`) and set again before the resend lands, and lone
/// acquisitions come and go three times: the count carries over the deletion, or the resend
/// would answer from a count started anew (`NotHeld` for a release that ran, `Ok` for permits
/// whose lease had ended).
async fn a_resent_permit_release_answers_what_its_first_copy_did(end: PermitsEnd, deleted: bool) {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = lock_runtime::LockClient::connect(&proxy.url())
        .await
        .expect("connect");
    let other = connect(&server).await;
    let name = unique_name("sem-resent");
    let (sem, theirs) = (client.semaphore(&name), other.semaphore(&name));
    theirs.try_set_permits(2).await.expect("set");
    // The scripts are cached in Redis before the fault.
    for sem in [&sem, &theirs] {
        sem.acquire(1)
            .await
            .expect("warm-up")
            .release()
            .await
            .expect("warm-up");
    }
    let beside = matches!(end, PermitsEnd::ReleasedBeside | PermitsEnd::LostBeside);
    let (permit, kept) = if beside {
        let kept = theirs.acquire(1).await.expect("another acquisition");
        (sem.acquire(1).await.expect("kept in the hash"), Some(kept))
    } else {
        (sem.acquire(1).await.expect("lone"), None)
    };
    match end {
        PermitsEnd::Lost => {
            let _: i64 = server.cmd(&["DEL", &format!("{}:lone", sem_key(&name))]);
        }
        PermitsEnd::LostBeside => {
            let leases = format!("{}:leases", sem_key(&name));
            let ended: i64 = server.cmd(&["ZADD", &leases, "XX", "CH", "1", permit.id()]);
            assert_eq!(ended, 1, "its lease ends");
        }
        PermitsEnd::Released | PermitsEnd::ReleasedBeside => {}
    }
    let id = permit.id().to_owned();

    proxy.drop_replies(true);
    let releasing = tokio::spawn(permit.release());
    let holds = || {
        let held: Option<String> = server.cmd(&["HGET", &sem_key(&name), &id]);
        let lone: Option<String> = server.cmd(&["GET", &format!("{}:lone", sem_key(&name))]);
        held.is_some() || lone.is_some_and(|lone| lone.starts_with(&id))
    };
    let first_copy_ran = eventually(Duration::from_secs(2), || {
        proxy.dropped_bytes() > 0 && !holds()
    })
    .await;
    assert!(first_copy_ran, "the release's first copy never ran");
    if deleted {
        assert!(theirs.delete_if_unused().await.expect("delete"), "unused");
        assert!(theirs.try_set_permits(2).await.expect("set again"));
    }
    let cycles = match (beside, deleted) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 3,
    };
    for _ in 0..cycles {
        let next = theirs.acquire(1).await.expect("the next acquisition");
        next.release().await.expect("the next release");
    }
    proxy.drop_replies(false);

    let released = matches!(end, PermitsEnd::Released | PermitsEnd::ReleasedBeside);
    assert_resend_answers(releasing, released, &format!("{end:?}")).await;
    if let Some(kept) = kept {
        kept.release().await.expect("the other acquisition");
    }
    assert_no_permit_held(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_permit_release_answers_what_its_first_copy_did_lone() {
    for end in [PermitsEnd::Released, PermitsEnd::Lost] {
        a_resent_permit_release_answers_what_its_first_copy_did(end, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_permit_release_answers_what_its_first_copy_did_across_a_deletion() {
    for end in [PermitsEnd::Released, PermitsEnd::Lost] {
        a_resent_permit_release_answers_what_its_first_copy_did(end, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_permit_release_answers_what_its_first_copy_did_beside_another() {
    for end in [PermitsEnd::ReleasedBeside, PermitsEnd::LostBeside] {
        a_resent_permit_release_answers_what_its_first_copy_did(end, false).await;
    }
}

/// Whether the semaphore `name` is defined: its hash has a total.
fn defined(server: &RedisServer, name: &str) -> bool {
    server.cmd::<i64>(&["HEXISTS", &sem_key(name), "total"]) == 1
}

/// `delete_if_unused` leaves a semaphore whose permits are held, and one whose permits are all
/// free while a live waiter is queued for them (its process cut off between its wake-up and its
/// try); it deletes it once nobody uses it, leaving no key without a TTL, and the name is then a
/// semaphore whose permits were never set. A holder whose lease ended (it crashed) does not keep
/// it in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_leaves_a_semaphore_in_use_and_deletes_an_unused_one() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("sem-delete");
    let sem = client.semaphore(&name);
    assert!(
        sem.delete_if_unused().await.expect("none"),
        "nothing to delete"
    );
    sem.try_set_permits(1).await.expect("set");
    let held = sem.acquire(1).await.expect("free");
    assert!(
        !sem.delete_if_unused().await.expect("in use"),
        "a permit is held"
    );
    assert!(defined(&server, &name));

    let proxy = TcpProxy::start(server.port()).await;
    let cut_off = LockClient::connect(&proxy.url())
        .await
        .expect("connect")
        .semaphore(&name);
    let waiter =
        tokio::spawn(async move { cut_off.try_acquire(1, Duration::from_secs(20), None).await });
    assert!(eventually(Duration::from_secs(5), || queued(&server, &name) == 1).await);
    proxy.blackhole(true);
    held.release().await.expect("release");
    assert!(
        !sem.delete_if_unused().await.expect("in use"),
        "a live waiter is queued for the free permit"
    );
    assert!(defined(&server, &name));
    proxy.blackhole(false);
    let served = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("served once its process is back")
        .expect("join")
        .expect("the permit it waited for");
    served.release().await.expect("release");

    // Two holders crash: the second acquisition keeps both in the hash and the leases.
    sem.add_permits(1).await.expect("a second permit");
    for _ in 0..2 {
        let crashed = sem
            .try_acquire(1, Duration::ZERO, Some(Duration::from_secs(2)))
            .await
            .expect("free");
        std::mem::forget(crashed);
    }
    let used: i64 = server.cmd(&["HGET", &sem_key(&name), "used"]);
    assert_eq!(used, 2, "set-up: both holds are counted in the hash");
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert!(
        sem.delete_if_unused().await.expect("unused"),
        "the crashed holders' leases ended"
    );
    assert!(!defined(&server, &name));
    assert_no_key_without_ttl(&server, &name);
    assert!(
        sem.delete_if_unused().await.expect("gone"),
        "deleted already: nothing to delete"
    );
    let err = sem
        .try_acquire(1, Duration::ZERO, None)
        .await
        .expect_err("deleted");
    assert!(err.to_string().contains("has no permits"), "{err}");
    assert!(sem.try_set_permits(2).await.expect("set again"));
    assert_eq!(sem.available_permits().await.expect("count"), 2);
    let ttl: i64 = server.cmd(&["PTTL", &sem_key(&name)]);
    assert_eq!(ttl, -1, "set again, the semaphore lasts");
    assert!(sem.delete_if_unused().await.expect("unused"));
    sem.add_permits(1).await.expect("added, after a deletion");
    let ttl: i64 = server.cmd(&["PTTL", &sem_key(&name)]);
    assert_eq!(ttl, -1, "made again by add_permits, the semaphore lasts");

    let other = unique_name("sem-delete-list");
    put_a_list(&server, &sem_key(&other));
    let err = client
        .semaphore(&other)
        .delete_if_unused()
        .await
        .expect_err("a key of another type");
    assert!(matches!(err, LockError::WrongType { .. }), "{err}");
    assert!(
        err.to_string().contains(&other) && !err.to_string().contains("not a lock"),
        "names the semaphore, not a lock: {err}"
    );
    let kept: Vec<String> = server.cmd(&["LRANGE", &sem_key(&other), "0", "-1"]);
    assert_eq!(kept, [A_LIST_ITEM], "left as it was");
}

/// A `delete_if_unused` whose first copy lands after the client's memos are gone deletes
/// nothing: not a semaphore set again since the resend deleted it, nor one that the resend found
/// in use and whose holder then released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_delete_if_unused_deletes_nothing() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;
    let name = unique_name("sem-late-delete");
    let sem = client.semaphore(&name);
    sem.try_set_permits(1).await.expect("set");
    assert_eq!(sem.available_permits().await.expect("warm-up"), 1);

    let deleted = first_copy_held(&proxy, sem.delete_if_unused()).await;
    assert!(deleted.expect("resent and answered"), "unused");
    assert!(!defined(&server, &name));
    assert!(sem.try_set_permits(3).await.expect("set again"));
    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    assert_eq!(
        sem.available_permits().await.expect("count"),
        3,
        "the late copy deleted the semaphore set again"
    );

    let held = sem.acquire(1).await.expect("free");
    let deleted = first_copy_held(&proxy, sem.delete_if_unused()).await;
    assert!(!deleted.expect("resent and answered"), "in use");
    held.release().await.expect("release");
    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    assert!(
        defined(&server, &name),
        "the late copy deleted the semaphore its first attempt was told was in use"
    );
    assert_no_permit_held(&server, &name);
}
