//! Scenario 6: the footprint of waiting. 10 000 tasks wait on 1 000 lock names.
//!
//! The harness process holds the 1 000 locks through its own client. A worker process of its own
//! (so that its memory is nobody else's) connects one `LockClient`, then spawns 10 tasks per name
//! that each call `Lock::acquire`. Once every channel has its subscriber and Redis has seen no
//! new command for a while, the harness counts the connections Redis has from the worker and
//! the commands it receives per second while everyone waits, and the worker reads its resident
//! set size. The growth over its RSS before spawning, divided by the tasks, is the memory per
//! waiting task. Then the harness releases the locks and the worker reports when the last of its
//! tasks got its lock and released it.
//!
//! The reference, measured the same way in another worker process: as many bare Tokio tasks
//! parked on a `Semaphore` with no permits, the cheapest way a task can wait.

use std::{collections::BTreeMap, time::Duration};

use lock_runtime::LockClient;
use lock_tests::{Workers, unique_name};

use crate::{
    BenchResult,
    contenders::Implementation,
    progress::Progress,
    redis_stats::{Admin, ClientCounts, CommandCounts},
    results::{FootprintResult, FootprintRun},
    util::{fmt_bytes, monotonic_ns},
};

/// Sizes of scenario 6.
#[derive(Debug, Clone, Copy)]
pub struct FootprintParams {
    /// Lock names.
    pub names: usize,
    /// Waiting tasks per name.
    pub per_name: usize,
    /// How long Redis's load is measured while everyone waits.
    pub idle: Duration,
}

/// Runs scenario 6.
///
/// # Errors
///
/// When Redis fails or a worker fails.
pub async fn run(
    url: &str,
    params: FootprintParams,
    progress: &Progress,
) -> BenchResult<FootprintResult> {
    let bare = run_bare(url, params).await?;
    progress.note(&format!(
        "bare parked tasks: {} RSS, {} heap per task",
        fmt_bytes(bare.bytes_per_task),
        fmt_bytes(bare.heap_bytes_per_task)
    ));
    let ours = run_ours(url, params).await?;
    progress.note(&format!(
        "{} tasks waiting on {} names: {} RSS, {} heap per task, {} command + {} pub/sub connections, {:.1} commands/s while waiting, drained in {:.0} ms",
        ours.tasks,
        ours.names,
        fmt_bytes(ours.bytes_per_task),
        fmt_bytes(ours.heap_bytes_per_task),
        ours.connections.normal,
        ours.connections.pubsub,
        ours.commands_per_s_while_waiting,
        ours.drain_ms.unwrap_or(f64::NAN)
    ));
    Ok(FootprintResult { ours, bare })
}

fn worker_args(
    mode: &str,
    url: &str,
    prefix: &str,
    params: FootprintParams,
    measure: &str,
) -> Vec<String> {
    [
        "worker",
        "footprint",
        "--mode",
        mode,
        "--url",
        url,
        "--prefix",
        prefix,
        "--names",
        &params.names.to_string(),
        "--per-name",
        &params.per_name.to_string(),
        "--measure-file",
        measure,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits (off the async threads) until the worker printed `needle`.
async fn wait_for_line(workers: Workers, needle: &'static str) -> BenchResult<Workers> {
    tokio::task::spawn_blocking(move || {
        let mut workers = workers;
        if workers.wait_for_stdout(0, needle, Duration::from_secs(120)) {
            Ok(workers)
        } else {
            let output = workers.wait_all(Duration::from_secs(1));
            Err(format!(
                "footprint worker never printed `{needle}`:\n{}",
                output.first().map_or("", |o| o.stderr.as_str())
            )
            .into())
        }
    })
    .await?
}

/// The `key=value` facts a footprint worker printed.
fn facts(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

async fn finish(workers: Workers) -> BenchResult<BTreeMap<String, u64>> {
    let outputs = workers.wait_all_async(Duration::from_secs(180)).await;
    let output = outputs.first().ok_or("no footprint worker")?;
    if !output.status.success() {
        return Err(format!(
            "footprint worker failed ({}):\n{}",
            output.status,
            output.stderr.trim_end()
        )
        .into());
    }
    Ok(facts(&output.stdout))
}

async fn run_bare(url: &str, params: FootprintParams) -> BenchResult<FootprintRun> {
    let dir = tempfile::Builder::new().prefix("lock-bench-").tempdir()?;
    let measure = dir.path().join("measure");
    let args = worker_args("bare", url, "unused", params, &measure.to_string_lossy());
    let workers = Workers::command(std::env::current_exe()?)
        .worker(args)
        .spawn();
    let workers = wait_for_line(workers, "spawned=").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&measure, b"")?;
    let facts = finish(workers).await?;
    Ok(memory_of("bare", 0, params, &facts))
}

/// The memory part of a run, from what its worker reported; the Redis side is left empty.
fn memory_of(
    mode: &str,
    names: usize,
    params: FootprintParams,
    facts: &BTreeMap<String, u64>,
) -> FootprintRun {
    let tasks = params.names * params.per_name;
    let fact = |name: &str| facts.get(name).copied().unwrap_or(0);
    let per_task = |before: u64, after: u64| (after as f64 - before as f64) / tasks.max(1) as f64;
    FootprintRun {
        mode: mode.into(),
        baseline_heap: fact("baseline_heap"),
        waiting_heap: fact("waiting_heap"),
        heap_bytes_per_task: per_task(fact("baseline_heap"), fact("waiting_heap")),
        names,
        tasks,
        baseline_rss: fact("baseline_rss"),
        waiting_rss: fact("waiting_rss"),
        bytes_per_task: per_task(fact("baseline_rss"), fact("waiting_rss")),
        acquire_future_bytes: facts.get("acquire_future_bytes").copied(),
        connections: ClientCounts::default(),
        subscribed_channels: 0,
        max_subscribers_per_channel: 0,
        own_channels: 0,
        commands_per_s_while_waiting: 0.0,
        redis_memory_growth: 0,
        drain_ms: None,
    }
}

async fn run_ours(url: &str, params: FootprintParams) -> BenchResult<FootprintRun> {
    let dir = tempfile::Builder::new().prefix("lock-bench-").tempdir()?;
    let measure = dir.path().join("measure");
    let prefix = unique_name("footprint");
    let names: Vec<String> = (0..params.names).map(|i| format!("{prefix}-{i}")).collect();
    let channels: Vec<String> = names
        .iter()
        .map(|name| format!("{{lock:{name}}}:unlock"))
        .collect();

    // The harness holds every lock, through a client of its own.
    let holder = LockClient::connect(url).await?;
    let mut guards = Vec::with_capacity(names.len());
    for name in &names {
        guards.push(holder.lock(name).acquire().await?);
    }
    let mut admin = Admin::connect(url).await?;
    let clients_before = admin.clients().await?;
    let memory_before = admin.used_memory().await?;

    let args = worker_args("ours", url, &prefix, params, &measure.to_string_lossy());
    let workers = Workers::command(std::env::current_exe()?)
        .worker(args)
        .spawn();
    let workers = wait_for_line(workers, "spawned=").await?;

    // Every channel subscribed, then Redis quiet: every task has made its attempts and sleeps.
    let deadline = monotonic_ns() + 120_000_000_000;
    let counts = loop {
        let counts = admin.subscribers(&channels).await?;
        if counts.iter().all(|&count| count >= 1) {
            break counts;
        }
        if monotonic_ns() > deadline {
            return Err("the waiting tasks never subscribed to every channel".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut last = admin.command_stats().await?;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = admin.command_stats().await?;
        let sent = |stats| CommandCounts::classify(stats, Implementation::Ours).client_sent;
        if sent(&now) == sent(&last) || monotonic_ns() > deadline {
            break;
        }
        last = now;
    }
    // Redis's load while everyone waits.
    let idle_window = params.idle;
    let before = CommandCounts::classify(&admin.command_stats().await?, Implementation::Ours);
    tokio::time::sleep(idle_window).await;
    let after = CommandCounts::classify(&admin.command_stats().await?, Implementation::Ours);
    let commands_per_s =
        after.client_sent.saturating_sub(before.client_sent) as f64 / idle_window.as_secs_f64();
    let clients_during = admin.clients().await?;
    let memory_during = admin.used_memory().await?;
    let own_channels = admin
        .channels(&format!("{{lock:{prefix}-*}}:unlock:*"))
        .await?
        .len() as u64;

    std::fs::write(&measure, b"")?;
    let workers = wait_for_line(workers, "waiting_rss=").await?;
    let released_at = monotonic_ns();
    let mut releases = tokio::task::JoinSet::new();
    for guard in guards {
        releases.spawn(guard.unlock());
    }
    while let Some(released) = releases.join_next().await {
        released??;
    }
    let facts = finish(workers).await?;
    Ok(FootprintRun {
        connections: ClientCounts {
            normal: clients_during.normal.saturating_sub(clients_before.normal),
            pubsub: clients_during.pubsub.saturating_sub(clients_before.pubsub),
        },
        subscribed_channels: counts.iter().filter(|&&count| count > 0).count() as u64,
        max_subscribers_per_channel: counts.iter().copied().max().unwrap_or(0),
        own_channels,
        commands_per_s_while_waiting: commands_per_s,
        redis_memory_growth: memory_during as i64 - memory_before as i64,
        drain_ms: facts
            .get("drained_at_ns")
            .map(|&done| done.saturating_sub(released_at) as f64 / 1e6),
        ..memory_of("ours", params.names, params, &facts)
    })
}
