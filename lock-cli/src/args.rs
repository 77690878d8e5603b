//! The command line, as clap parses it.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// Operate the Redis locks of lock-runtime: who holds a lock, since when, and who waits.
///
/// Exit status: 0 done, 1 failed (the reason on stderr), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "lock-cli", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of every subcommand.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The Redis the locks live in.
    #[arg(
        long,
        global = true,
        env = "LOCK_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        value_name = "URL"
    )]
    pub(crate) url: String,

    /// A Redis Cluster instead of `--url`: seed nodes, comma-separated or the option repeated.
    #[arg(
        long,
        global = true,
        env = "LOCK_REDIS_CLUSTER",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub(crate) cluster: Vec<String>,

    /// A Sentinel-managed primary instead of `--url`: the Sentinels' URLs, comma-separated or
    /// the option repeated (with `--sentinel-master`).
    #[arg(
        long,
        global = true,
        env = "LOCK_REDIS_SENTINELS",
        value_delimiter = ',',
        value_name = "URL",
        requires = "sentinel_master",
        conflicts_with = "cluster"
    )]
    pub(crate) sentinel: Vec<String>,

    /// The name the Sentinels monitor the primary under (`sentinel monitor <name> …`).
    #[arg(
        long,
        global = true,
        env = "LOCK_REDIS_SENTINEL_MASTER",
        value_name = "NAME",
        requires = "sentinel"
    )]
    pub(crate) sentinel_master: Option<String>,

    /// For `rediss://` URLs: trust the CA certificate(s) in this PEM file instead of the
    /// system's roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,

    /// For `rediss://` servers that require client certificates: this PEM certificate (with
    /// `--tls-key`).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// The key prefix the services' lock clients use (`LockClientBuilder::key_prefix`)
    /// [default: the client's default, `lock`].
    #[arg(long, global = true, value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,

    /// Print JSON instead of text: one document, or one per line for `watch`.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show who holds a lock, since when, its lease, its waiters and its last fencing token.
    ///
    /// Shows every primitive of that name that exists: the lock (reentrant or fair), the
    /// read-write lock (its writer or readers), the semaphore (its permits and their holders)
    /// and the count-down latch (its count).
    Inspect {
        /// The lock's name, as the services give it (such as `stock:42`).
        name: String,
    },

    /// List what exists now (walked with SCAN, never KEYS), one line each with its kind.
    ///
    /// Lists the locks (reentrant or fair) and read-write locks held, the semaphores whose
    /// permits were set and the count-down latches set, under the prefix, sorted by name. On a
    /// Redis Cluster (`--cluster`), every primary is walked.
    List {
        /// Only the names matching this Redis glob (`*`, `?`, `[abc]`).
        #[arg(long, default_value = "*", value_name = "GLOB")]
        pattern: String,
        /// List at most this many (at least 1).
        #[arg(long, default_value_t = 100, value_name = "N", value_parser = limit)]
        limit: usize,
    },

    /// Delete a lock whoever holds it, and wake its waiters. Asks first, or needs --yes or
    /// --owner.
    ///
    /// The holder is not told until its next renewal (watchdog mode) or the end of its lease,
    /// and may go on working meanwhile as if it held the lock, beside the next owner. So at a
    /// terminal it shows who holds the lock and asks `[y/N]` (only `y` or `yes` go on); where
    /// stdin is not a terminal (a script, a pipe) it refuses unless given --yes or --owner.
    ///
    /// With --owner it deletes one hold only, that of the owner id (or semaphore permit id)
    /// given, as `inspect` shows it, and only if that owner still holds it: of the lock, the
    /// read-write lock (a read or a write hold) or the semaphore of the name, wherever it
    /// holds. A hold taken by anyone else, even after the look, is never deleted.
    ForceUnlock {
        /// The lock's name.
        name: String,
        /// Do not ask: delete the lock even though its holder may still be working under it.
        #[arg(long)]
        yes: bool,
        /// Do not ask: delete only the hold of this owner id or permit id, if it still holds.
        #[arg(long, value_name = "ID", conflicts_with = "yes")]
        owner: Option<String>,
    },

    /// Follow a lock until Ctrl-C: a live view at a terminal, else a line per change.
    ///
    /// At a terminal, a view redrawn in place every interval: holder, how long held, lease
    /// left, last fencing token, waiters and the next in line, and the hand-offs seen; and the
    /// read-write lock, semaphore or count-down latch of that name, if one exists. With --json,
    /// or when stdout is not a terminal, a line now and one whenever the holders, the waiters,
    /// a semaphore's total or a latch's count change, for scripts to read.
    Watch {
        /// The lock's name.
        name: String,
        /// How often to look (such as `500ms`, `2s`).
        #[arg(long, default_value = "500ms", value_name = "DURATION", value_parser = interval)]
        interval: Duration,
    },
}

/// Parses `list`'s limit: a count of at least 1 (a limit of 0 would list nothing, and look as
/// if nothing existed).
fn limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("the limit must be at least 1".to_owned()),
        Ok(limit) => Ok(limit),
        Err(err) => Err(err.to_string()),
    }
}

/// Parses `watch`'s interval: a human duration of at least 10 ms.
fn interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if interval < Duration::from_millis(10) {
        return Err("the interval must be at least 10ms".to_owned());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn limits_are_at_least_one() {
        assert_eq!(limit("1"), Ok(1));
        assert!(limit("0").is_err());
        assert!(limit("-1").is_err());
    }

    #[test]
    fn intervals_are_human_and_not_too_short() {
        assert_eq!(interval("1s 500ms"), Ok(Duration::from_millis(1_500)));
        assert!(interval("5ms").is_err());
        assert!(interval("soon").is_err());
    }
}
