//! `lock-cli`: operate the Redis locks of `lock-runtime` from a shell.
//!
//! ```text
//! lock-cli inspect stock:42                 # who holds it, since when, its lease, its waiters
//! lock-cli list --pattern 'stock:*'         # every primitive matching, one line each
//! lock-cli force-unlock stock:42            # asks first at a terminal; --yes in scripts
//! lock-cli force-unlock stock:42 --owner ID # only the hold of that owner, if it still holds
//! lock-cli watch stock:42 --interval 250ms  # a live view until Ctrl-C (a line per change if piped)
//! ```
//!
//! Global options: `--url` (or `LOCK_REDIS_URL`; default `redis://127.0.0.1:6379`), `--prefix`
//! (the services' key prefix; default the client's, `lock`), `--json` (see `render.rs` for the
//! document). Exit status: 0 done, 1 failed or not confirmed (the reason on stderr), 2 bad usage
//! (including a `force-unlock` without `--yes` or `--owner` where there is no terminal to ask at).
//!
//! `inspect`, `list` and `watch` show every primitive of a name (see `snapshot.rs`): the lock
//! (reentrant or fair), the read-write lock, the semaphore and the count-down latch.
//!
//! Everything lock-specific goes through `lock_runtime`'s public API (the primitives' `info()`,
//! `LockClient::primitives`, `Lock::force_unlock`): this binary knows no key layout.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod force_unlock;
mod live;
mod render;
mod screen;
mod snapshot;
mod watch;

use std::{error::Error, path::Path, process::ExitCode};

use clap::Parser;
use lock_runtime::{LockClient, LockError};

use args::{Cli, Command, Global};
use snapshot::Snapshot;

/// Exit status of a command that failed.
const FAILED: u8 = 1;
/// Exit status of a command line that does not say what to do (clap's own for usage errors).
const USAGE: u8 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lock-cli: {}", chain(&*err));
            ExitCode::from(FAILED)
        }
    }
}

/// Why a command failed: a [`LockError`] mostly.
type Failure = Box<dyn Error>;

/// Runs the command; `Err` for a failure, `Ok` with the exit status otherwise.
async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Inspect { name } => {
            let client = connect(global).await?;
            let snapshot = Snapshot::look(&client, &name).await?;
            if global.json {
                println!("{}", render::snapshot_json(&snapshot));
            } else {
                print!("{}", render::details(&snapshot, client.key_prefix()));
            }
        }
        Command::List { pattern, limit } => {
            list(&connect(global).await?, global, &pattern, limit).await?;
        }
        // Connects once it knows it may go on: refusing needs no Redis.
        Command::ForceUnlock { name, yes, owner } => {
            return match owner {
                Some(owner) => force_unlock::held_by(global, &name, &owner).await,
                None => force_unlock::force_unlock(global, &name, yes).await,
            };
        }
        Command::Watch { name, interval } => {
            watch::watch(&connect(global).await?, global, &name, interval).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A client of the Redis and key prefix the options name. Its connections are named
/// `lock-cli/<pid>`, so that `CLIENT LIST` tells them from a service's (`<host>/<pid>` by
/// default).
async fn connect(global: &Global) -> Result<LockClient, Failure> {
    let builder = LockClient::builder().client_name(format!("lock-cli/{}", std::process::id()));
    let mut builder = match (&global.sentinel_master, global.cluster.is_empty()) {
        (Some(master), _) => builder.sentinel(master, global.sentinel.iter().cloned()),
        (None, false) => builder.cluster(global.cluster.iter().cloned()),
        (None, true) => builder.url(&global.url),
    };
    if let Some(prefix) = &global.prefix {
        builder = builder.key_prefix(prefix);
    }
    if let Some(ca) = &global.tls_ca {
        builder = builder.tls_root_certificate(read_pem(ca)?);
    }
    if let (Some(cert), Some(key)) = (&global.tls_cert, &global.tls_key) {
        builder = builder.tls_client_certificate(read_pem(cert)?, read_pem(key)?);
    }
    Ok(builder.build().await?)
}

/// The contents of a PEM file given on the command line.
fn read_pem(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|err| format!("cannot read `{}`: {err}", path.display()).into())
}

/// `list`: the primitives of every kind matching `pattern`, each with its state.
async fn list(
    client: &LockClient,
    global: &Global,
    pattern: &str,
    limit: usize,
) -> Result<(), LockError> {
    // One more than asked, to tell a cut list from a whole one.
    let mut found = client.primitives(pattern, limit.saturating_add(1)).await?;
    let cut = found.len() > limit;
    found.truncate(limit);
    // One look per name, shared by its kinds. A primitive released since the walk is shown as
    // it is now (free), but a semaphore deleted (its total gone) is left out: what is left of it
    // only answers late copies of its requests. One that cannot be read (a key of another type
    // under its name) is left out with a warning rather than ending the list.
    let mut looks: Vec<(lock_runtime::PrimitiveKind, Snapshot)> = Vec::with_capacity(found.len());
    for (kind, name) in found {
        let snapshot = match looks.last() {
            Some((_, last)) if last.name() == name => last.clone(),
            _ => match Snapshot::look(client, &name).await {
                Ok(snapshot) => snapshot,
                Err(err @ LockError::WrongType { .. }) => {
                    eprintln!("lock-cli: `{name}` left out: {err}");
                    continue;
                }
                Err(err) => return Err(err),
            },
        };
        if kind == lock_runtime::PrimitiveKind::Semaphore && !snapshot.exists(kind) {
            continue;
        }
        looks.push((kind, snapshot));
    }
    if cut {
        // On stderr, so that `--json` stays one array.
        eprintln!(
            "lock-cli: more than {limit} match `{pattern}`; these are the first {limit} the walk \
             found (not the first by name): raise --limit, or narrow --pattern"
        );
    }
    if global.json {
        let documents: Vec<_> = looks
            .iter()
            .map(|(kind, snapshot)| render::kind_json(snapshot, *kind))
            .collect();
        println!("{}", serde_json::Value::Array(documents));
    } else if looks.is_empty() {
        println!(
            "no lock, read-write lock, semaphore or count-down latch matching `{pattern}` under \
             prefix `{}`",
            client.key_prefix()
        );
    } else {
        let width = looks
            .iter()
            .map(|(_, snapshot)| snapshot.name().chars().count())
            .max()
            .unwrap_or(0);
        for (kind, snapshot) in &looks {
            println!("{}", render::list_line(snapshot, *kind, width));
        }
    }
    Ok(())
}

/// `err` and its sources, on one line.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Some errors already end with their source's message.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
