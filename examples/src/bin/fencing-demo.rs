//! Fencing tokens stop a writer whose lock expired without it noticing.
//!
//! ```text
//! fencing-demo [--redis-url URL | REDIS_URL=URL] [--db PATH]
//! ```
//!
//! 1. Writer A takes the lock `doc:report` (lease 1 s) and gets a fencing token.
//! 2. A is frozen (SIGSTOP) before it writes, as by a long pause or a stalled VM; its lease runs
//!    out while it is frozen.
//! 3. Writer B takes the lock with a newer token and writes. The store accepts it.
//! 4. A is thawed (SIGCONT) and writes with its old token. The store refuses it: B's write stands.
//!
//! The writers use `on_lease_lost = "continue"` on purpose: a holder that does not notice its
//! lease is gone is exactly the case fencing exists for.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use lock_examples::{FencedStore, WriteOutcome, open_database};
use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{RedisServer, Workers};

const DOCUMENT: &str = "report";

#[derive(Parser)]
#[command(about = "A writer frozen past its lease has its late write refused by the store.")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Redis to lock with; without it a throwaway redis-server is started.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// SQLite file of the store; a temporary one by default.
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Role {
    /// One writer process (started by the demo itself).
    #[command(hide = true)]
    Writer(WriterArgs),
}

#[derive(Args)]
struct WriterArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    db: PathBuf,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
enum WriterError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Takes the document's lock, says which token it got, works a while, then writes with it.
#[distribute_lock(
    key = "doc:{document}",
    wait = "10s",
    lease = "1s",
    on_lease_lost = "continue"
)]
async fn write_report(
    store: &FencedStore,
    document: &str,
    writer: &str,
) -> Result<WriteOutcome, WriterError> {
    let token = lock_runtime::fencing_token().unwrap_or_default();
    println!("token={token}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = format!("written by {writer} with token {token}");
    Ok(store.write(document, &body, token).await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.role {
        Some(Role::Writer(args)) => writer(args).await.map(|()| true),
        None => demo(cli.redis_url, cli.db).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("fencing-demo: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn writer(args: WriterArgs) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(&args.redis_url).await?);
    let store = FencedStore::new(open_database(&args.db).await?).await?;
    match write_report(&store, DOCUMENT, &args.name).await? {
        WriteOutcome::Accepted => println!("accepted"),
        WriteOutcome::Rejected { newest_seen } => println!("rejected newest_seen={newest_seen}"),
    }
    Ok(())
}

fn token_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("token="))
        .unwrap_or("?")
        .to_owned()
}

async fn demo(redis_url: Option<String>, db: Option<PathBuf>) -> Result<bool, Failure> {
    let throwaway;
    let redis_url = match redis_url {
        Some(url) => url,
        None => {
            throwaway = RedisServer::start();
            throwaway.url()
        }
    };
    let temporary = tempfile::tempdir()?;
    let db = db.unwrap_or_else(|| temporary.path().join("fencing.db"));
    let store = FencedStore::new(open_database(&db).await?).await?;
    let exe = std::env::current_exe()?;
    let writer = |name: &str| {
        Workers::command(&exe)
            .worker([
                "writer",
                "--name",
                name,
                "--redis-url",
                &redis_url,
                "--db",
                &db.display().to_string(),
            ])
            .spawn()
    };

    println!(
        "\nFencing demo: lock `doc:{DOCUMENT}` with a 1 s lease; the store refuses old tokens\n"
    );
    let mut a = writer("A");
    if !a.wait_for_stdout(0, "token=", Duration::from_secs(20)) {
        return Err("writer A never got the lock".into());
    }
    a.pause(0);
    println!(
        "  A holds the lock with token {} and is frozen (SIGSTOP) before it writes",
        token_of(&a.stdout_so_far(0))
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    println!("  ... 1.5 s later, A's 1 s lease has run out in Redis");

    let b = writer("B").wait_all(Duration::from_secs(30));
    let b_said = &b[0].stdout;
    println!(
        "  B takes the lock with token {} and writes: {}",
        token_of(b_said),
        if b_said.contains("accepted") {
            "accepted"
        } else {
            "NOT accepted"
        }
    );

    a.resume(0);
    let a = a.wait_all(Duration::from_secs(30));
    let a_said = &a[0].stdout;
    let a_rejected = a_said.contains("rejected");
    println!(
        "  A is thawed (SIGCONT) and writes with token {}: {}",
        token_of(a_said),
        if a_rejected {
            "REJECTED by the store"
        } else {
            "accepted (!)"
        }
    );

    let (body, token) = store.read(DOCUMENT).await?.unwrap_or_default();
    println!("\n  the document now reads \"{body}\" (token {token})");
    let correct = a_rejected && b_said.contains("accepted") && body.starts_with("written by B");
    if correct {
        println!(
            "\n  VERDICT: correct. The stale writer's late write was refused; the newer holder's write stands.\n"
        );
    } else {
        println!("\n  VERDICT: WRONG. A: {a_said:?}, B: {b_said:?}\n");
    }
    Ok(correct)
}
