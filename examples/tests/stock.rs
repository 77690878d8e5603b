//! The stock service under real contention: worker processes of `stock-demo`, a real Redis, one
//! SQLite file. Every assertion reads the database's audit table.

use std::{path::Path, time::Duration};

use lock_examples::{SaleRecord, StockService, open_database};
use lock_tests::{RedisServer, WorkerOutput, Workers, locks::assert_released};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

const DEMO: &str = env!("CARGO_BIN_EXE_stock-demo");
const PRODUCT: u64 = 1;

struct Setup {
    server: RedisServer,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    service: StockService,
}

async fn setup(stock: u32) -> Setup {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("stock.db");
    let service = StockService::new(open_database(&db).await.expect("open db"))
        .await
        .expect("schema");
    service.seed(PRODUCT, stock).await.expect("seed");
    Setup {
        server,
        _dir: dir,
        db,
        service,
    }
}

fn worker_args(setup: &Setup, tasks: usize, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "worker".to_owned(),
        "--redis-url".to_owned(),
        setup.server.url(),
        "--db".to_owned(),
        setup.db.display().to_string(),
        "--tasks".to_owned(),
        tasks.to_string(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

fn run_workers(setup: &Setup, processes: usize, tasks: usize, extra: &[&str]) -> Vec<WorkerOutput> {
    let mut workers = Workers::command(DEMO);
    for _ in 0..processes {
        workers = workers.worker(worker_args(setup, tasks, extra));
    }
    let outputs = workers.spawn().wait_all(Duration::from_secs(120));
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}\n{}",
            output.status,
            output.stderr
        );
    }
    outputs
}

fn count(outputs: &[WorkerOutput], kind: &str) -> usize {
    outputs
        .iter()
        .flat_map(|output| output.stdout.lines())
        .filter(|line| line.split(' ').next() == Some(kind))
        .count()
}

/// Sales that did not read the stock the previous sale wrote.
fn stale_reads(sales: &[SaleRecord]) -> usize {
    sales
        .windows(2)
        .filter(|pair| pair[1].stock_before != pair[0].stock_after)
        .count()
}

fn assert_consistent(sales: &[SaleRecord], initial: u32, final_stock: u32) {
    let sold: u32 = sales.iter().map(|sale| sale.qty).sum();
    assert_eq!(final_stock + sold, initial, "stock and sales disagree");
    assert_eq!(stale_reads(sales), 0, "a sale worked from a stale stock");
    if let Some(first) = sales.first() {
        assert_eq!(first.stock_before, initial);
    }
    let tokens: Vec<u64> = sales.iter().filter_map(|sale| sale.fencing_token).collect();
    assert_eq!(
        tokens.len(),
        sales.len(),
        "every sale was made under a lock"
    );
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "tokens increase in commit order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lock_exactly_the_stock_is_sold() {
    let setup = setup(100).await;

    let outputs = run_workers(&setup, 4, 50, &["--think-ms", "1"]);

    assert_eq!(count(&outputs, "sale"), 100);
    assert_eq!(count(&outputs, "out-of-stock"), 100);
    assert_eq!(count(&outputs, "timeout") + count(&outputs, "failed"), 0);
    let sales = setup.service.sales(PRODUCT).await.expect("sales");
    assert_eq!(sales.len(), 100);
    let final_stock = setup.service.stock(PRODUCT).await.expect("stock");
    assert_eq!(final_stock, 0);
    assert_consistent(&sales, 100, final_stock);
    assert_released(&setup.server, "stock:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_lock_the_same_workload_oversells() {
    let setup = setup(100).await;

    // 5 ms between read and write: every buyer reads before the first one writes.
    let outputs = run_workers(&setup, 4, 50, &["--no-lock", "--think-ms", "5"]);

    let sales = setup.service.sales(PRODUCT).await.expect("sales");
    let sold: u32 = sales.iter().map(|sale| sale.qty).sum();
    let final_stock = setup.service.stock(PRODUCT).await.expect("stock");
    assert_eq!(count(&outputs, "sale"), sales.len());
    assert!(
        sold > 100,
        "expected overselling without the lock, sold {sold} of 100"
    );
    assert!(stale_reads(&sales) > 0, "expected lost updates");
    assert_ne!(
        final_stock + sold,
        100,
        "the stock no longer matches the sales"
    );
}

/// True while some connection holds SQLite's write lock (a write transaction is open).
async fn write_transaction_open(db: &Path) -> bool {
    let mut connection = SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .expect("connect");
    let outcome = sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK;")
        .execute(&mut connection)
        .await;
    let _ = connection.close().await;
    outcome.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_transaction_is_rolled_back_and_the_others_go_on() {
    let setup = setup(20).await;
    let mut victim = Workers::command(DEMO)
        .worker(worker_args(
            &setup,
            1,
            &["--hold-in-transaction-ms", "60000"],
        ))
        .spawn();
    let mut in_transaction = false;
    for _ in 0..500 {
        if write_transaction_open(&setup.db).await {
            in_transaction = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(in_transaction, "the victim never opened its transaction");
    let victim_pid = victim.pid(0);

    victim.kill(0);
    // The others wait out the victim's 3 s lease (within their 5 s wait), then sell the rest.
    let outputs = run_workers(&setup, 3, 10, &[]);

    let sales = setup.service.sales(PRODUCT).await.expect("sales");
    assert!(
        sales.iter().all(|sale| sale.process_id != victim_pid),
        "the killed sale was rolled back"
    );
    assert_eq!(count(&outputs, "sale"), 20);
    assert_eq!(count(&outputs, "out-of-stock"), 10);
    assert_eq!(count(&outputs, "timeout") + count(&outputs, "failed"), 0);
    let final_stock = setup.service.stock(PRODUCT).await.expect("stock");
    assert_eq!(final_stock, 0);
    assert_consistent(&sales, 20, final_stock);
    assert_released(&setup.server, "stock:1");
}
