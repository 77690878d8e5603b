//! The stock-decrement demo: many OS processes, many tasks each, all buying one unit of the same
//! product, with `#[distribute_lock]` and (`--no-lock`) without it.
//!
//! ```text
//! stock-demo [--processes 4] [--tasks 50] [--stock 100] [--no-lock] [--think-ms 2]
//!            [--redis-url URL | REDIS_URL=URL] [--db PATH]
//! ```
//!
//! Without a Redis URL it starts a throwaway `redis-server` on a free port and stops it at the
//! end; without `--db` it uses a SQLite file in a temporary directory. It prints what each process
//! did, the final stock, and a verdict read from the database's audit table.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lock_examples::{
    SaleRecord, StockError, StockService,
    demo::{Ran, percentile, run_workers},
    open_database,
};
use lock_runtime::LockClient;
use lock_tests::{RedisServer, Workers};
use tokio::time::Instant;

const PRODUCT: u64 = 1;

#[derive(Parser)]
#[command(about = "Many processes buy from one stock, with the distributed lock and without.")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Subcommand)]
enum Role {
    /// One worker process (started by the demo itself).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    processes: usize,
    /// Buying tasks per process, each buying one unit.
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// Units in stock at the start.
    #[arg(long, default_value_t = 100)]
    stock: u32,
    /// Run the same workload without the lock.
    #[arg(long)]
    no_lock: bool,
    /// Milliseconds between reading the stock and writing it (a slower service).
    #[arg(long, default_value_t = 2)]
    think_ms: u64,
    /// Redis to lock with; without it a throwaway redis-server is started.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// SQLite file shared by the workers; a temporary one by default.
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Args)]
struct WorkerArgs {
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    tasks: usize,
    #[arg(long)]
    no_lock: bool,
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Pause inside the write transaction (to kill a worker in the middle of one).
    #[arg(long, default_value_t = 0)]
    hold_in_transaction_ms: u64,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.role {
        Some(Role::Worker(args)) => worker(args).await.map(|()| true),
        None => demo(cli.demo).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("stock-demo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One worker process: `tasks` concurrent buyers, one line on stdout per attempt:
/// `sale WAIT_US`, `out-of-stock WAIT_US`, `timeout WAIT_US` or `failed WAIT_US MESSAGE`.
async fn worker(args: WorkerArgs) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(&args.redis_url).await?);
    let service = StockService::new(open_database(&args.db).await?)
        .await?
        .with_think_time(Duration::from_millis(args.think_ms))
        .with_hold_in_transaction(Duration::from_millis(args.hold_in_transaction_ms));
    let buyers: Vec<_> = (0..args.tasks)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                let called = Instant::now();
                let result = if args.no_lock {
                    service.decrease_unprotected(PRODUCT, 1).await
                } else {
                    service.decrease(PRODUCT, 1).await
                };
                let line = match result {
                    Ok(sale) => format!("sale {}", micros(sale.started_at - called)),
                    Err(err @ StockError::OutOfStock { .. }) => {
                        let _ = err;
                        format!("out-of-stock {}", micros(called.elapsed()))
                    }
                    Err(err) if err.is_lock_timeout() => {
                        format!("timeout {}", micros(called.elapsed()))
                    }
                    Err(err) => format!("failed {} {err}", micros(called.elapsed())),
                };
                println!("{line}");
            })
        })
        .collect();
    for buyer in buyers {
        buyer.await?;
    }
    // What the lock runs in the background (a timed-out buyer leaving the lock's queue) lands
    // before the process exits.
    lock_runtime::default_client().await?.flush().await;
    Ok(())
}

fn micros(duration: Duration) -> u128 {
    duration.as_micros()
}

/// What one worker process reported.
#[derive(Default)]
struct Tally {
    sales: usize,
    out_of_stock: usize,
    timeouts: usize,
    failures: Vec<String>,
    waits: Vec<Duration>,
}

impl Tally {
    fn from_output(stdout: &str) -> Self {
        let mut tally = Self::default();
        for line in stdout.lines() {
            let mut fields = line.splitn(3, ' ');
            let (Some(kind), Some(wait)) = (fields.next(), fields.next()) else {
                continue;
            };
            let wait = Duration::from_micros(wait.parse().unwrap_or_default());
            match kind {
                "sale" => {
                    tally.sales += 1;
                    tally.waits.push(wait);
                }
                "out-of-stock" => tally.out_of_stock += 1,
                "timeout" => tally.timeouts += 1,
                _ => tally
                    .failures
                    .push(fields.next().unwrap_or_default().to_owned()),
            }
        }
        tally
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
    let temporary = tempfile::tempdir()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| temporary.path().join("stock.db"));
    let service = StockService::new(open_database(&db).await?).await?;
    service.seed(PRODUCT, args.stock).await?;

    print_header(&args, &redis_url, &db);
    let buyers = args.processes * args.tasks;
    let progress = ProgressBar::new(buyers as u64).with_style(
        ProgressStyle::with_template("  {bar:40} {pos}/{len} purchases attempted ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let exe = std::env::current_exe()?;
    let mut command = Workers::command(&exe);
    for _ in 0..args.processes {
        let mut worker_args = vec![
            "worker".to_owned(),
            "--redis-url".to_owned(),
            redis_url.clone(),
            "--db".to_owned(),
            db.display().to_string(),
            "--tasks".to_owned(),
            args.tasks.to_string(),
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
    print_tallies(&tallies, &pids, !args.no_lock);
    let sales = service.sales(PRODUCT).await?;
    let final_stock = service.stock(PRODUCT).await?;
    println!("\n  finished in {:.1} s", elapsed.as_secs_f64());
    let correct = print_verdict(args.stock, final_stock, &sales, &tallies);
    // A wrong result with the lock is a failure; without it, it is the point of the demo.
    Ok(correct || args.no_lock)
}

fn print_header(args: &DemoArgs, redis_url: &str, db: &Path) {
    println!();
    println!(
        "Stock demo: {} processes x {} tasks each buy 1 unit of a product with {} in stock",
        args.processes, args.tasks, args.stock
    );
    if args.no_lock {
        println!(
            "  lock:  NONE (--no-lock): read the stock, pause {} ms, write it back",
            args.think_ms
        );
    } else {
        println!(
            "  lock:  #[distribute_lock(key = \"stock:{{product_id}}\", wait = \"5s\", lease = \"3s\")]"
        );
        println!(
            "         around: read the stock, pause {} ms, write it back, commit",
            args.think_ms
        );
    }
    println!("  redis: {redis_url}");
    println!(
        "  db:    {} (SQLite, shared by every process)",
        db.display()
    );
    println!();
}

fn print_tallies(tallies: &[Tally], pids: &[u32], locked: bool) {
    println!(
        "  {:<8} {:>8} {:>7} {:>13} {:>14} {:>7} {:>14} {:>12}",
        "process",
        "pid",
        "bought",
        "out of stock",
        "lock timeouts",
        "failed",
        "lock wait p50",
        "p99"
    );
    let mut all_waits = Vec::new();
    for (index, (tally, pid)) in tallies.iter().zip(pids).enumerate() {
        all_waits.extend(&tally.waits);
        let (p50, p99) = if locked {
            (percentile(&tally.waits, 50), percentile(&tally.waits, 99))
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        println!(
            "  {:<8} {:>8} {:>7} {:>13} {:>14} {:>7} {:>14} {:>12}",
            index + 1,
            pid,
            tally.sales,
            tally.out_of_stock,
            tally.timeouts,
            tally.failures.len(),
            p50,
            p99
        );
    }
    let sum = |count: fn(&Tally) -> usize| tallies.iter().map(count).sum::<usize>();
    let (p50, p99) = if locked {
        (percentile(&all_waits, 50), percentile(&all_waits, 99))
    } else {
        ("-".to_owned(), "-".to_owned())
    };
    println!(
        "  {:<8} {:>8} {:>7} {:>13} {:>14} {:>7} {:>14} {:>12}",
        "total",
        "",
        sum(|tally| tally.sales),
        sum(|tally| tally.out_of_stock),
        sum(|tally| tally.timeouts),
        sum(|tally| tally.failures.len()),
        p50,
        p99
    );
    for failure in tallies.iter().flat_map(|tally| &tally.failures).take(5) {
        println!("  failure: {failure}");
    }
}

/// Reads the verdict from the audit table; returns whether the stock is consistent.
fn print_verdict(initial: u32, final_stock: u32, sales: &[SaleRecord], tallies: &[Tally]) -> bool {
    let sold: u32 = sales.iter().map(|sale| sale.qty).sum();
    let reported: usize = tallies.iter().map(|tally| tally.sales).sum();
    // A sale that did not read the stock the previous sale wrote worked from a stale value.
    let lost_updates = sales
        .windows(2)
        .filter(|pair| pair[1].stock_before != pair[0].stock_after)
        .count();
    println!("  stock: {initial} at the start, {final_stock} at the end");
    println!(
        "  sales in the database: {} ({sold} units); buyers told \"bought\": {reported}",
        sales.len()
    );
    let consistent = sold <= initial
        && final_stock + sold == initial
        && lost_updates == 0
        && reported == sales.len();
    if consistent {
        println!(
            "\n  VERDICT: correct. {sold} units sold from {initial}, never oversold; every sale read the stock the previous one wrote."
        );
    } else {
        println!(
            "\n  VERDICT: WRONG. {sold} units sold from a stock of {initial}{}; {lost_updates} sales worked from a stale stock (lost updates); the database says {final_stock} are left.",
            if sold > initial { " (OVERSOLD)" } else { "" }
        );
    }
    println!();
    consistent
}
