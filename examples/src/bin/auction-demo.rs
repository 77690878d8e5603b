//! The auction demo: bidders in several OS processes bid on a few items kept in Redis, each bid a
//! read-check-write under `#[distribute_lock(key = "item:{item_id}")]` whose write Redis runs only
//! while the lock is held (`lock_runtime::exec`); `--no-lock` runs the same bids without the lock;
//! `stale-holder` shows a bidder frozen past its lease whose late bid Redis refuses.
//!
//! ```text
//! auction-demo [--processes 4] [--tasks 10] [--bids 5] [--items 3] [--no-lock] [--think-ms 2]
//!              [--redis-url URL | REDIS_URL=URL]
//! auction-demo stale-holder [--redis-url URL | REDIS_URL=URL]
//! ```
//!
//! Without a Redis URL it starts a throwaway `redis-server` on a free port and stops it at the
//! end. It prints what each process did, each item's final bid and log of accepted bids, and a
//! verdict read from Redis.
//!
//! The stale holder:
//!
//! 1. Bidder A takes the lock `item:1` (lease 1 s), reads the bid standing (the opening 100) and
//!    decides to bid 110.
//! 2. A is frozen (SIGSTOP) before it writes, as by a long pause or a stalled VM; its lease runs
//!    out while it is frozen.
//! 3. Bidder B takes the lock, reads 100 and bids 120: accepted.
//! 4. A is thawed (SIGCONT) and writes its bid of 110 with `lock_runtime::exec`. Redis refuses it
//!    (A no longer holds the lock): B's 120 stands. A plain `HSET` would have put 110 over 120.
//!
//! A uses `on_lease_lost = "continue"` on purpose: a holder that does not notice its lease is
//! gone is exactly the case the check in Redis exists for (with the default `"abort"` the
//! attribute may drop the body on the client before the write is sent, which hides who refused).

use std::{process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lock_examples::{
    Auction, AuctionError, BidOutcome, Item,
    demo::{Ran, percentile, run_workers},
};
use lock_runtime::{LockClient, distribute_lock};
use lock_tests::{RedisServer, Workers};
use tokio::time::Instant;

/// Every item opens at this price; bids must be higher.
const OPENING: u64 = 100;
/// The stale holder's item, its bid, and the newer holder's bid.
const STALE_ITEM: u64 = 1;
const STALE_BID: u64 = 110;
const NEWER_BID: u64 = 120;

#[derive(Parser)]
#[command(
    about = "Bidders in many processes bid on items kept in Redis, with the lock and without."
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Subcommand)]
enum Role {
    /// A bidder frozen past its lease has its late bid refused by Redis.
    StaleHolder(StaleArgs),
    /// One worker process of the bidding (started by the demo itself).
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// The stale holder's bidder A (started by the demo itself).
    #[command(hide = true)]
    LateBidder(BidderArgs),
    /// The stale holder's bidder B (started by the demo itself).
    #[command(hide = true)]
    Bidder(BidderArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    processes: usize,
    /// Bidding tasks per process.
    #[arg(long, default_value_t = 10)]
    tasks: usize,
    /// Bids each task places, one after the other, each higher on average than its last.
    #[arg(long, default_value_t = 5)]
    bids: usize,
    /// Items bid on (each bid picks one at random).
    #[arg(long, default_value_t = 3)]
    items: u64,
    /// Run the same bids without the lock.
    #[arg(long)]
    no_lock: bool,
    /// Milliseconds between reading the highest bid and writing a higher one (a slower service).
    #[arg(long, default_value_t = 2)]
    think_ms: u64,
    /// Redis holding the items and the locks; without it a throwaway redis-server is started.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
}

#[derive(Args)]
struct StaleArgs {
    /// Redis holding the item and its lock; without it a throwaway redis-server is started.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
}

#[derive(Args)]
struct WorkerArgs {
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    tasks: usize,
    #[arg(long)]
    bids: usize,
    #[arg(long)]
    items: u64,
    #[arg(long)]
    no_lock: bool,
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
}

#[derive(Args)]
struct BidderArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    amount: u64,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.role {
        Some(Role::Worker(args)) => worker(args).await.map(|()| true),
        Some(Role::LateBidder(args)) => late_bidder(args).await.map(|()| true),
        Some(Role::Bidder(args)) => bidder(args).await.map(|()| true),
        Some(Role::StaleHolder(args)) => stale_holder(args.redis_url).await,
        None => demo(cli.demo).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("auction-demo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A small generator (SplitMix64), seeded by process and task: no two bidders bid alike.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One worker process: `tasks` concurrent bidders, each placing `bids` bids one after the other
/// on random items, the `n`-th between `OPENING + 20 n + 1` and `OPENING + 20 n + 40`. One line
/// on stdout per bid: `OUTCOME ITEM AMOUNT MICROS [MESSAGE]`, the outcome `accepted`, `too-low`,
/// `timeout` or `failed`, the time the call took (lock wait included).
async fn worker(args: WorkerArgs) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(&args.redis_url).await?);
    let auction = Auction::connect(&args.redis_url)
        .await?
        .with_think_time(Duration::from_millis(args.think_ms));
    let pid = std::process::id();
    let bidders: Vec<_> = (0..args.tasks)
        .map(|task| {
            let auction = auction.clone();
            let mut random = Random((u64::from(pid) << 32) ^ task as u64);
            let (bids, items, no_lock) = (args.bids, args.items.max(1), args.no_lock);
            tokio::spawn(async move {
                let bidder = format!("{pid}/{task}");
                for round in 0..bids as u64 {
                    let item = random.next() % items + 1;
                    let amount = OPENING + 20 * round + random.next() % 40 + 1;
                    let called = Instant::now();
                    let result = if no_lock {
                        auction.place_bid_unprotected(item, &bidder, amount).await
                    } else {
                        auction.place_bid(item, &bidder, amount).await
                    };
                    let took = called.elapsed().as_micros();
                    let line = match result {
                        Ok(BidOutcome::Accepted { .. }) => {
                            format!("accepted {item} {amount} {took}")
                        }
                        Ok(BidOutcome::TooLow { .. }) => format!("too-low {item} {amount} {took}"),
                        Err(err) if err.is_lock_timeout() => {
                            format!("timeout {item} {amount} {took}")
                        }
                        Err(err) => format!("failed {item} {amount} {took} {err}"),
                    };
                    println!("{line}");
                }
            })
        })
        .collect();
    for bidder in bidders {
        bidder.await?;
    }
    // What the lock runs in the background (a timed-out bidder leaving the lock's queue) lands
    // before the process exits.
    lock_runtime::default_client().await?.flush().await;
    Ok(())
}

/// One bid as a worker reported it.
struct Placed {
    outcome: String,
    item: u64,
    amount: u64,
    took: Duration,
    message: String,
}

impl Placed {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.splitn(5, ' ');
        Some(Self {
            outcome: fields.next()?.to_owned(),
            item: fields.next()?.parse().ok()?,
            amount: fields.next()?.parse().ok()?,
            took: Duration::from_micros(fields.next()?.parse().ok()?),
            message: fields.next().unwrap_or_default().to_owned(),
        })
    }

    /// Whether the bid was compared with the one standing (accepted or too low), not cut short.
    fn ran(&self) -> bool {
        matches!(self.outcome.as_str(), "accepted" | "too-low")
    }
}

/// What one worker process reported.
struct Tally {
    bids: Vec<Placed>,
}

impl Tally {
    fn from_output(stdout: &str) -> Self {
        Self {
            bids: stdout.lines().filter_map(Placed::parse).collect(),
        }
    }

    fn count(&self, outcome: &str) -> usize {
        self.bids
            .iter()
            .filter(|bid| bid.outcome == outcome)
            .count()
    }
}

async fn demo(args: DemoArgs) -> Result<bool, Failure> {
    let throwaway;
    let redis_url = match &args.redis_url {
        Some(url) => url.clone(),
        None => {
            throwaway = RedisServer::start();
            throwaway.url()
        }
    };
    let auction = Auction::connect(&redis_url).await?;
    let items = args.items.max(1);
    for item in 1..=items {
        auction.open(item, OPENING).await?;
    }

    print_header(&args, &redis_url);
    let progress = ProgressBar::new((args.processes * args.tasks * args.bids) as u64).with_style(
        ProgressStyle::with_template("  {bar:40} {pos}/{len} bids placed ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let exe = std::env::current_exe()?;
    let mut command = Workers::command(&exe);
    for _ in 0..args.processes {
        let mut worker_args = vec![
            "worker".to_owned(),
            "--redis-url".to_owned(),
            redis_url.clone(),
            "--tasks".to_owned(),
            args.tasks.to_string(),
            "--bids".to_owned(),
            args.bids.to_string(),
            "--items".to_owned(),
            items.to_string(),
            "--think-ms".to_owned(),
            args.think_ms.to_string(),
        ];
        if args.no_lock {
            worker_args.push("--no-lock".to_owned());
        }
        command = command.worker(worker_args);
    }
    let Ran {
        outputs,
        pids,
        elapsed,
    } = run_workers(command, &progress).await;

    let tallies: Vec<Tally> = outputs
        .iter()
        .map(|output| Tally::from_output(&output.stdout))
        .collect();
    print_tallies(&tallies, &pids);
    println!("\n  finished in {:.1} s\n", elapsed.as_secs_f64());
    let mut records = Vec::new();
    for item in 1..=items {
        records.push((item, auction.item(item).await?));
    }
    let correct = print_verdict(&records, &tallies);
    // A wrong result with the lock is a failure; without it, it is the point of the demo.
    Ok(correct || args.no_lock)
}

fn print_header(args: &DemoArgs, redis_url: &str) {
    println!();
    println!(
        "Auction demo: {} processes x {} tasks each place {} bids on {} items opened at {OPENING}",
        args.processes, args.tasks, args.bids, args.items
    );
    if args.no_lock {
        println!(
            "  lock:  NONE (--no-lock): read the highest bid, pause {} ms, write a higher one (plain HSET)",
            args.think_ms
        );
    } else {
        println!(
            "  lock:  #[distribute_lock(key = \"item:{{item_id}}\", wait = \"5s\", lease = \"3s\")]"
        );
        println!(
            "         around: read the highest bid, pause {} ms, write a higher one with lock_runtime::exec",
            args.think_ms
        );
    }
    println!(
        "  redis: {redis_url} (item N: {{lock:item:N}}:auction, log {{lock:item:N}}:accepted)"
    );
    println!();
}

fn print_tallies(tallies: &[Tally], pids: &[u32]) {
    let row = |label: &str, pid: &str, bids: &[&Placed], failed: usize| {
        let count = |outcome: &str| bids.iter().filter(|bid| bid.outcome == outcome).count();
        let times: Vec<Duration> = bids
            .iter()
            .filter(|bid| bid.ran())
            .map(|bid| bid.took)
            .collect();
        println!(
            "  {:<8} {:>8} {:>6} {:>9} {:>8} {:>14} {:>7} {:>14} {:>12}",
            label,
            pid,
            bids.len(),
            count("accepted"),
            count("too-low"),
            count("timeout"),
            failed,
            percentile(&times, 50),
            percentile(&times, 99)
        );
    };
    println!(
        "  {:<8} {:>8} {:>6} {:>9} {:>8} {:>14} {:>7} {:>14} {:>12}",
        "process",
        "pid",
        "bids",
        "accepted",
        "too low",
        "lock timeouts",
        "failed",
        "bid time p50",
        "p99"
    );
    for (index, (tally, pid)) in tallies.iter().zip(pids).enumerate() {
        let bids: Vec<&Placed> = tally.bids.iter().collect();
        row(
            &(index + 1).to_string(),
            &pid.to_string(),
            &bids,
            tally.count("failed"),
        );
    }
    let all: Vec<&Placed> = tallies.iter().flat_map(|tally| &tally.bids).collect();
    let failed = tallies.iter().map(|tally| tally.count("failed")).sum();
    row("total", "", &all, failed);
    let failures = all.iter().filter(|bid| bid.outcome == "failed");
    for failure in failures.take(5) {
        println!("  failure: {}", failure.message);
    }
}

/// Reads the verdict from Redis: each item's bid standing and log of accepted bids, against the
/// bids the workers placed. Returns whether every item is right.
fn print_verdict(records: &[(u64, Item)], tallies: &[Tally]) -> bool {
    let placed: Vec<&Placed> = tallies.iter().flat_map(|tally| &tally.bids).collect();
    let ran = placed.iter().filter(|bid| bid.ran()).count();
    let told_accepted = placed
        .iter()
        .filter(|bid| bid.outcome == "accepted")
        .count();
    let mut lost = Vec::new();
    let (mut accepted, mut off_the_top) = (0, 0);
    for (item, record) in records {
        let on_item = || placed.iter().filter(|bid| bid.item == *item && bid.ran());
        let highest_placed = on_item().map(|bid| bid.amount).max().unwrap_or(OPENING);
        let item_lost = record.lost_bids();
        println!(
            "  item {item}: ends at {} by {}; highest bid placed {highest_placed}; {} bids accepted, {} of them lost (overwritten by a bid not higher)",
            record.highest,
            if record.bidder.is_empty() {
                "nobody"
            } else {
                &record.bidder
            },
            record.accepted.len(),
            item_lost.len()
        );
        accepted += record.accepted.len();
        if record.highest != highest_placed {
            off_the_top += 1;
        }
        lost.extend(item_lost.into_iter().map(|bid| (*item, bid)));
    }
    let items = records.len();
    let correct = lost.is_empty() && off_the_top == 0 && accepted == told_accepted;
    if correct {
        println!(
            "\n  VERDICT: correct. {ran} bids on {items} items, {accepted} accepted; every item ends at the highest bid placed on it, and every accepted bid was higher than the one before."
        );
    } else {
        // The most striking lost bid: the widest drop.
        let example = lost
            .iter()
            .max_by_key(|(_, bid)| bid.lost.amount - bid.overwritten_by.amount)
            .map_or(String::new(), |(item, bid)| {
                format!(
                    " (item {item}: {} by {} overwritten by {} by {})",
                    bid.lost.amount,
                    bid.lost.bidder,
                    bid.overwritten_by.amount,
                    bid.overwritten_by.bidder
                )
            });
        let unlogged = if accepted == told_accepted {
            String::new()
        } else {
            format!("; bidders told \"accepted\": {told_accepted}, bids in the logs: {accepted}")
        };
        println!(
            "\n  VERDICT: WRONG. {} of {accepted} accepted bids were LOST, a lower bid written over them{example}; {off_the_top} of {items} items do not end at the highest bid placed on them{unlogged}.",
            lost.len()
        );
    }
    println!();
    correct
}

/// The stale holder's bidder A: takes the item's lock with a 1 s lease, reads the bid standing,
/// says so, pauses (the demo freezes it here, past its lease), and writes its bid with
/// `lock_runtime::exec` without reading again.
#[distribute_lock(
    key = "item:{item_id}",
    wait = "10s",
    lease = "1s",
    on_lease_lost = "continue"
)]
async fn late_bid(
    auction: &Auction,
    item_id: u64,
    bidder: &str,
    amount: u64,
) -> Result<BidOutcome, AuctionError> {
    let highest = auction.highest(item_id).await?;
    println!("read highest={highest} bid={amount}");
    if amount <= highest {
        return Ok(BidOutcome::TooLow { highest });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    auction.accept(item_id, bidder, amount).await?;
    Ok(BidOutcome::Accepted { previous: highest })
}

async fn late_bidder(args: BidderArgs) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(&args.redis_url).await?);
    let auction = Auction::connect(&args.redis_url).await?;
    report(late_bid(&auction, STALE_ITEM, &args.name, args.amount).await);
    Ok(())
}

async fn bidder(args: BidderArgs) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(&args.redis_url).await?);
    let auction = Auction::connect(&args.redis_url).await?;
    report(auction.place_bid(STALE_ITEM, &args.name, args.amount).await);
    Ok(())
}

fn report(outcome: Result<BidOutcome, AuctionError>) {
    match outcome {
        Ok(BidOutcome::Accepted { previous }) => println!("accepted previous={previous}"),
        Ok(BidOutcome::TooLow { highest }) => println!("too-low highest={highest}"),
        Err(err) if err.is_lease_lost() => println!("refused lease-lost"),
        Err(err) => println!("failed {err}"),
    }
}

async fn stale_holder(redis_url: Option<String>) -> Result<bool, Failure> {
    let throwaway;
    let redis_url = match redis_url {
        Some(url) => url,
        None => {
            throwaway = RedisServer::start();
            throwaway.url()
        }
    };
    let auction = Auction::connect(&redis_url).await?;
    auction.open(STALE_ITEM, OPENING).await?;
    let exe = std::env::current_exe()?;
    let bidder = |role: &str, name: &str, amount: u64| {
        Workers::command(&exe)
            .worker([
                role,
                "--name",
                name,
                "--redis-url",
                &redis_url,
                "--amount",
                &amount.to_string(),
            ])
            .spawn()
    };

    println!(
        "\nStale holder: lock `item:{STALE_ITEM}` with a 1 s lease; the item opens at {OPENING}; bids are written with lock_runtime::exec\n"
    );
    let mut a = bidder("late-bidder", "A", STALE_BID);
    if !a.wait_for_stdout(0, "read highest=", Duration::from_secs(20)) {
        return Err(format!("bidder A never read the item: {:?}", a.stdout_so_far(0)).into());
    }
    a.pause(0);
    let a_read = field(&a.stdout_so_far(0), "highest");
    println!(
        "  A holds the lock, reads the highest bid {a_read}, bids {STALE_BID}, and is frozen (SIGSTOP) before it writes"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    println!("  ... 1.5 s later, A's 1 s lease has run out in Redis");

    let b = bidder("bidder", "B", NEWER_BID).wait_all(Duration::from_secs(30));
    let b_said = &b[0].stdout;
    let b_accepted = b_said.contains("accepted");
    println!(
        "  B takes the lock, reads {}, bids {NEWER_BID}: {}",
        if b_accepted {
            field(b_said, "previous")
        } else {
            "?".to_owned()
        },
        if b_accepted {
            "accepted"
        } else {
            "NOT accepted"
        }
    );

    a.resume(0);
    let a = a.wait_all(Duration::from_secs(30));
    let a_said = &a[0].stdout;
    let a_refused = a_said.contains("refused lease-lost");
    println!(
        "  A is thawed (SIGCONT) and writes its bid of {STALE_BID} with exec: {}",
        if a_refused {
            "REFUSED by Redis (A no longer holds the lock); nothing written"
        } else {
            "accepted (!)"
        }
    );

    let item = auction.item(STALE_ITEM).await?;
    let log: Vec<String> = item
        .accepted
        .iter()
        .map(|bid| format!("{} by {}", bid.amount, bid.bidder))
        .collect();
    println!(
        "\n  the item stands at {} by {}; accepted bids: {}",
        item.highest,
        item.bidder,
        log.join(", ")
    );
    let correct = a_refused
        && b_accepted
        && item.highest == NEWER_BID
        && item.bidder == "B"
        && item.accepted.len() == 1;
    if correct {
        println!(
            "\n  VERDICT: correct. The stale holder's late, lower bid was refused by Redis; B's higher bid stands (a plain HSET would have put {STALE_BID} over {NEWER_BID}).\n"
        );
    } else {
        println!("\n  VERDICT: WRONG. A: {a_said:?}, B: {b_said:?}\n");
    }
    Ok(correct)
}

/// The value after `name=` in a bidder's output.
fn field(stdout: &str, name: &str) -> String {
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("?")
        .to_owned()
}
