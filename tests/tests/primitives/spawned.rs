//! Every primitive's wait (each acquire, the latch's wait) returns a future that owns what it
//! needs, as tokio's `Semaphore::acquire_owned` does: it can be handed to `tokio::spawn` as it
//! is, the handle it came from dropped at once. (A future that borrowed its handle would not
//! compile here.)

use std::time::Duration;

use lock_runtime::{LockClient, LockError, Redlock};
use lock_tests::{
    RedisServer,
    locks::{assert_released, assert_rw_released, connect},
    start_masters, unique_name,
};
use tokio::task::JoinHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wait_can_be_spawned_without_its_handle() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("spawned");
    let wait = Duration::from_secs(5);
    let (pool, latch) = (format!("{name}-pool"), format!("{name}-latch"));
    client
        .semaphore(&pool)
        .try_set_permits(1)
        .await
        .expect("set permits");
    client
        .count_down_latch(&latch)
        .try_set_count(1)
        .await
        .expect("set count");

    let lock = tokio::spawn(client.lock(&name).acquire());
    let fair = tokio::spawn(
        client
            .fair_lock(format!("{name}-fair"))
            .try_acquire(wait, None),
    );
    let read = tokio::spawn(
        client
            .read_write_lock(format!("{name}-rw"))
            .read()
            .acquire(),
    );
    let permit = tokio::spawn(client.semaphore(&pool).acquire(1));
    let multi = tokio::spawn(
        client
            .multi_lock([format!("{name}-a"), format!("{name}-b")])
            .acquire(),
    );
    let opened = tokio::spawn(client.count_down_latch(&latch).wait_timeout(wait));
    client
        .count_down_latch(&latch)
        .count_down()
        .await
        .expect("count down");

    joined(lock, "lock").await.unlock().await.expect("unlock");
    joined(fair, "fair").await.unlock().await.expect("unlock");
    joined(read, "read").await.unlock().await.expect("unlock");
    joined(permit, "permit")
        .await
        .release()
        .await
        .expect("release");
    joined(multi, "multi").await.unlock().await.expect("unlock");
    assert!(joined(opened, "latch").await, "the latch opened");
    for name in [
        name.clone(),
        format!("{name}-fair"),
        format!("{name}-a"),
        format!("{name}-b"),
    ] {
        assert_released(&server, &name);
    }
    assert_rw_released(&server, &format!("{name}-rw"));

    let masters = start_masters(3);
    let mut clients = Vec::new();
    for master in &masters {
        clients.push(LockClient::connect(&master.url()).await.expect("connect"));
    }
    let redlock = Redlock::new(clients).expect("redlock");
    let held = tokio::spawn(redlock.lock(&name).acquire());
    joined(held, "redlock")
        .await
        .unlock()
        .await
        .expect("unlock");
    for master in &masters {
        assert_released(master, &name);
    }
}

/// What a spawned wait returned.
async fn joined<T>(task: JoinHandle<Result<T, LockError>>, what: &str) -> T {
    task.await
        .expect("join")
        .unwrap_or_else(|err| panic!("{what}: {err}"))
}
