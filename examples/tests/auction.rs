//! The auction under real contention: worker processes of `auction-demo`, a real Redis. Every
//! assertion reads the items back from Redis: the bid standing and the log of accepted bids.

use std::time::Duration;

use lock_examples::{Auction, Item};
use lock_tests::{RedisServer, WorkerOutput, Workers, locks::assert_released_beside};

const DEMO: &str = env!("CARGO_BIN_EXE_auction-demo");
const OPENING: u64 = 100;
const ITEMS: u64 = 3;

/// One line of a worker: `OUTCOME ITEM AMOUNT MICROS [MESSAGE]`.
struct Bid {
    outcome: String,
    item: u64,
    amount: u64,
}

fn bids(outputs: &[WorkerOutput]) -> Vec<Bid> {
    outputs
        .iter()
        .flat_map(|output| output.stdout.lines())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, ' ').collect();
            assert!(fields.len() >= 4, "not a bid line: {line:?}");
            Bid {
                outcome: fields[0].to_owned(),
                item: fields[1].parse().expect("item"),
                amount: fields[2].parse().expect("amount"),
            }
        })
        .collect()
}

async fn open_items(server: &RedisServer) -> Auction {
    let auction = Auction::connect(&server.url()).await.expect("connect");
    for item in 1..=ITEMS {
        auction.open(item, OPENING).await.expect("open");
    }
    auction
}

async fn items(auction: &Auction) -> Vec<(u64, Item)> {
    let mut items = Vec::new();
    for item in 1..=ITEMS {
        items.push((item, auction.item(item).await.expect("item")));
    }
    items
}

/// The item's lock is free and nothing of it lingers but the item's own data.
fn assert_released(server: &RedisServer, item: u64) {
    let tag = Auction::hash_tag(item);
    let data = [format!("{tag}:auction"), format!("{tag}:accepted")];
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    assert_released_beside(server, &format!("item:{item}"), &data);
}

/// 4 processes x 10 tasks x 5 bids on 3 items.
async fn run_workers(server: &RedisServer, extra: &[&str]) -> Vec<WorkerOutput> {
    let mut workers = Workers::command(DEMO);
    for _ in 0..4 {
        let mut args = vec![
            "worker".to_owned(),
            "--redis-url".to_owned(),
            server.url(),
            "--tasks".to_owned(),
            "10".to_owned(),
            "--bids".to_owned(),
            "5".to_owned(),
            "--items".to_owned(),
            ITEMS.to_string(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        workers = workers.worker(args);
    }
    let outputs = workers
        .spawn()
        .wait_all_async(Duration::from_secs(120))
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lock_every_item_ends_at_its_highest_bid() {
    let server = RedisServer::start();
    let auction = open_items(&server).await;

    let bids = bids(&run_workers(&server, &["--think-ms", "1"]).await);

    assert_eq!(bids.len(), 200);
    assert!(
        bids.iter()
            .all(|bid| bid.outcome == "accepted" || bid.outcome == "too-low"),
        "every bid got the lock and was compared with the one standing"
    );
    for (item, record) in items(&auction).await {
        let placed: Vec<&Bid> = bids.iter().filter(|bid| bid.item == item).collect();
        let highest_placed = placed.iter().map(|bid| bid.amount).max().expect("bids");
        assert_eq!(
            record.highest, highest_placed,
            "item {item} ends at the highest bid placed on it"
        );
        let amounts: Vec<u64> = record.accepted.iter().map(|bid| bid.amount).collect();
        assert!(
            amounts.windows(2).all(|pair| pair[0] < pair[1]),
            "item {item}: every accepted bid was higher than the one before: {amounts:?}"
        );
        assert!(amounts.first().is_some_and(|&first| first > OPENING));
        assert_eq!(amounts.last(), Some(&record.highest));
        let mut told_accepted: Vec<u64> = placed
            .iter()
            .filter(|bid| bid.outcome == "accepted")
            .map(|bid| bid.amount)
            .collect();
        told_accepted.sort_unstable();
        assert_eq!(
            amounts, told_accepted,
            "item {item}: the log holds exactly the bids their bidders were told were accepted"
        );
        assert!(record.lost_bids().is_empty());
        assert_released(&server, item);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_lock_higher_bids_are_lost() {
    let server = RedisServer::start();
    let auction = open_items(&server).await;

    // 5 ms between read and write: the tasks of every process read the same standing bid, and
    // a write lands over a higher one written meanwhile.
    let bids = bids(&run_workers(&server, &["--no-lock", "--think-ms", "5"]).await);

    let told_accepted = bids.iter().filter(|bid| bid.outcome == "accepted").count();
    let items = items(&auction).await;
    let logged: usize = items.iter().map(|(_, record)| record.accepted.len()).sum();
    assert_eq!(logged, told_accepted, "every accepted bid was written");
    let lost: Vec<_> = items
        .iter()
        .flat_map(|(item, record)| record.lost_bids().into_iter().map(move |bid| (item, bid)))
        .collect();
    assert!(
        !lost.is_empty(),
        "expected lost bids without the lock: {items:?}"
    );
    for (item, bid) in &lost {
        assert!(
            bid.overwritten_by.amount <= bid.lost.amount,
            "item {item}: {bid:?}"
        );
    }
}

#[test]
fn the_stale_holders_late_bid_is_refused_by_redis() {
    let server = RedisServer::start();
    let output = std::process::Command::new(DEMO)
        .args(["stale-holder", "--redis-url", &server.url()])
        .output()
        .expect("run auction-demo stale-holder");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("A holds the lock, reads the highest bid 100, bids 110"),
        "{stdout}"
    );
    assert!(stdout.contains("bids 120: accepted"), "{stdout}");
    assert!(
        stdout.contains("writes its bid of 110 with exec: REFUSED by Redis"),
        "{stdout}"
    );

    // Read back from Redis: B's bid alone stands and is logged.
    let record: std::collections::HashMap<String, String> =
        server.cmd(&["HGETALL", "{lock:item:1}:auction"]);
    assert_eq!(record["highest"], "120", "{record:?}");
    assert_eq!(record["bidder"], "B", "{record:?}");
    let log: Vec<String> = server.cmd(&["LRANGE", "{lock:item:1}:accepted", "0", "-1"]);
    assert_eq!(log, ["120 B"]);
    assert_released(&server, 1);
}

#[tokio::test]
async fn a_lock_checked_bid_outside_any_lock_is_refused_and_writes_nothing() {
    let server = RedisServer::start();
    let auction = open_items(&server).await;

    let err = auction
        .accept(1, "nobody", 500)
        .await
        .expect_err("no lock is held");

    assert!(
        matches!(
            &err,
            lock_examples::AuctionError::Lock(lock_runtime::LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(auction.highest(1).await.expect("highest"), OPENING);
}
