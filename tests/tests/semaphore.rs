//! The semaphore (DESIGN 4.1): permits shared across processes, each acquisition leased like a
//! lock, released on every path, waking the waiters that fit, and misuse refused at once.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError};
use lock_tests::{
    RedisServer,
    locks::{assert_no_key_without_ttl, eventually, hold_records, lock_key, sem_key},
    unique_name,
};

async fn connect(server: &RedisServer) -> LockClient {
    LockClient::connect(&server.url()).await.expect("connect")
}

/// How many waiters queue on the semaphore.
fn queued(server: &RedisServer, name: &str) -> i64 {
    server.cmd(&["ZCARD", &format!("{}:sem:queue", lock_key(name))])
}

/// Asserts no permit is held, and every key of the semaphore but its definition (whose leases
/// are gone with the last permit) has a TTL.
fn assert_no_permit_held(server: &RedisServer, name: &str) {
    let used: Option<i64> = server.cmd(&["HGET", &format!("{}:sem", lock_key(name)), "used"]);
    assert_eq!(used.unwrap_or(0), 0, "permits of {name} are still held");
    let leases: i64 = server.cmd(&["EXISTS", &format!("{}:sem:leases", lock_key(name))]);
    assert_eq!(leases, 0, "leases of {name} are left");
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
    assert!(matches!(never_set, LockError::Config { .. }), "{never_set}");
    assert!(
        never_set.to_string().contains("try_set_permits"),
        "{never_set}"
    );

    sem.try_set_permits(2).await.expect("set");
    let zero = sem.try_acquire(0, wait, None).await.expect_err("zero");
    assert!(matches!(zero, LockError::Config { .. }), "{zero}");
    let too_many = sem
        .try_acquire(3, wait, None)
        .await
        .expect_err("more than the total");
    assert!(matches!(too_many, LockError::Config { .. }), "{too_many}");
    assert!(
        too_many.to_string().contains("2 permits in all"),
        "{too_many}"
    );
    assert!(asked.elapsed() < Duration::from_secs(1), "misuse waited");
    assert_eq!(queued(&server, &name), 0, "misuse queued");
    assert_no_permit_held(&server, &name);
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

const WORKER: &str = env!("CARGO_BIN_EXE_lock-worker");

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
