//! A purchase slower than its lease is stopped and its transaction rolled back: nothing partial
//! is written. (Its own test binary: it sets the process-wide default client.)

use std::time::{Duration, Instant};

use lock_examples::{StockError, StockService, open_database};
use lock_runtime::LockClient;
use lock_tests::{RedisServer, locks::assert_released};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_its_lease_is_aborted_and_rolled_back() {
    let server = RedisServer::start();
    lock_runtime::set_default_client(LockClient::connect(&server.url()).await.expect("connect"));
    let dir = tempfile::tempdir().expect("temp dir");
    let pool = open_database(&dir.path().join("stock.db"))
        .await
        .expect("db");
    let service = StockService::new(pool).await.expect("schema");
    service.seed(1, 10).await.expect("seed");

    // `decrease` holds its lock for at most 3 s; this one would sit 10 s in its transaction.
    let slow = service
        .clone()
        .with_hold_in_transaction(Duration::from_secs(10));
    let started = Instant::now();
    let outcome = slow.decrease(1, 4).await;
    let elapsed = started.elapsed();

    match outcome {
        Err(StockError::Lock(err)) => assert!(err.is_lease_lost(), "{err}"),
        other => panic!("expected a lost lease, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(4),
        "stopped at the lease's end, after {elapsed:?}"
    );
    assert_eq!(
        service.stock(1).await.expect("stock"),
        10,
        "nothing written"
    );
    assert!(
        service.sales(1).await.expect("sales").is_empty(),
        "no audit row"
    );

    // The database and the lock are free again: a normal purchase goes through at once.
    let started = Instant::now();
    let sale = service.decrease(1, 4).await.expect("a normal purchase");
    assert_eq!(sale.remaining, 6);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_released(&server, "stock:1");
}
