//! Scenarios 3, 4 and 5: contended hand-off, Redis load under contention, and the peers on the
//! same workload.
//!
//! # The workload
//!
//! `waiters + 1` tasks contend for one lock name, spread round-robin over several OS processes
//! (the tool re-executes itself as workers, see [`crate::worker`]); each process connects one
//! client of the implementation, shared by its tasks. Each task loops until the end of the
//! window: acquire, critical section (1 ms by default: a sleep standing for the work a lock
//! protects, such as a database write), release, then a pause of 1 ms before it asks again, as a
//! request handler would. With the critical section as long as the pause, a task coming back
//! finds the lock held, so the lock is contended at every waiter count, and `waiters` is the
//! number of tasks waiting while one holds it (the report checks it with Little's law). Without
//! a pause, a releasing task would take the lock straight back, and a spin lock's waiters would
//! never get it.
//!
//! # Hand-off latency, on one clock
//!
//! Every process reads `CLOCK_MONOTONIC`, one kernel clock, so timestamps compare across
//! processes. The critical section is a 24-byte record in a shared file (the "baton"), read and
//! written only while holding the lock:
//!
//! 1. right after its acquire returns (`acquired`), a task reads the baton: when the previous
//!    holder started releasing (`released`) and who it was, and checks nobody is inside (any
//!    overlap is counted as a mutual-exclusion violation);
//! 2. just before it sends its release, the holder writes `released = now` and its id.
//!
//! An acquisition is a **hand-off** when the task was already inside its acquire call when the
//! previous holder started releasing (`started ≤ released`): it was a waiter, and
//! `acquired − released` is how long the lock took to pass from one holder to the next,
//! release round trip and wake-up included. A task that re-acquires after its own release, or
//! that finds the lock free, is not a hand-off (it would measure nothing but one round trip).
//! The time inside the acquire call is reported for every acquisition as `wait`.
//!
//! # Redis load
//!
//! The harness runs `CONFIG RESETSTAT` when the window opens and reads `INFO commandstats` when
//! it closes; acquisitions are counted in the same window. See
//! [`crate::redis_stats::CommandCounts`] for which commands count as client-sent. For `ours` and
//! `fair` the harness also samples, every 100 ms, `PUBSUB NUMSUB` of the lock's channel (one
//! subscriber per process with waiters) and of the clients' own channels of the lock
//! (`<channel>:<client id>`, listed with `PUBSUB CHANNELS`), where a release's message naming a
//! waiter goes: it is delivered to the waiter's process alone.
//!
//! # The sweep over processes
//!
//! At one waiter count (64 in the full run), `ours` and `fair` run over 1, 2, 4 and 8 processes:
//! `ours` wakes its longest-queued waiter by name, which then tries (newcomers may barge), `fair`
//! makes the head of its queue the owner in the release and tells it, so the sweep shows what
//! cross-process hand-off costs each. The peers run at
//! the process counts the targets compare them at, so every comparison is at equal processes.

use std::{path::Path, time::Duration};

use hdrhistogram::Histogram;
use lock_tests::{Workers, unique_name};

use crate::{
    BenchResult,
    contenders::{ContenderSettings, Implementation},
    progress::Progress,
    redis_stats::{Admin, CommandCounts},
    results::{ContentionPoint, ContentionResult, Percentiles, add_pairs, new_histogram},
    util::{fmt_ns, fmt_rate, monotonic_ns, sleep_until_ns},
    worker::{ContendReport, READY, RESULT_PREFIX, Window, create_baton_file},
};

/// Sizes of scenarios 3 to 5.
#[derive(Debug, Clone)]
pub struct ContentionParams {
    /// Waiter counts of the main runs.
    pub waiters: Vec<usize>,
    /// Worker processes of the main runs.
    pub processes: usize,
    /// Seconds measured per run.
    pub seconds: f64,
    /// How long a holder keeps the lock, in microseconds.
    pub hold_us: u64,
    /// Pause between a task's release and its next acquire, in microseconds.
    pub think_us: u64,
    /// Waiters of the sweeps.
    pub sweep_waiters: usize,
    /// `spin-fixed` delays of the spin sweep, in milliseconds (empty: no sweep).
    pub spin_sweep_ms: Vec<u64>,
    /// Process counts of the sweep of lock-runtime's locks, `ours` and `fair` (empty: no sweep).
    pub process_sweep: Vec<usize>,
    /// Process counts at which the peers run at the sweep's waiters too, so that the family's
    /// sweep points have peers measured beside them (those of the main runs are reused).
    pub peer_processes: Vec<usize>,
}

/// One run to make.
struct Run<'a> {
    implementation: Implementation,
    waiters: usize,
    processes: usize,
    spin: ContenderSettings,
    label: String,
    spin_delay_ms: Option<u64>,
    params: &'a ContentionParams,
}

/// Runs scenarios 3 to 5 for `implementations`.
///
/// # Errors
///
/// When Redis fails, a worker cannot be started, or a worker fails.
pub async fn run(
    url: &str,
    implementations: &[Implementation],
    spin: &ContenderSettings,
    params: &ContentionParams,
    progress: &Progress,
) -> BenchResult<ContentionResult> {
    let dir = tempfile::Builder::new().prefix("lock-bench-").tempdir()?;
    let mut points = Vec::new();
    for &implementation in implementations {
        for &waiters in &params.waiters {
            let run = Run {
                implementation,
                waiters,
                processes: params.processes,
                spin: *spin,
                label: implementation.name().to_owned(),
                spin_delay_ms: None,
                params,
            };
            points.push(run_point(url, &run, dir.path(), progress).await?);
        }
    }

    let mut spin_sweep = Vec::new();
    if implementations.contains(&Implementation::SpinFixed) {
        for &delay in &params.spin_sweep_ms {
            let run = Run {
                implementation: Implementation::SpinFixed,
                waiters: params.sweep_waiters,
                processes: params.processes,
                spin: ContenderSettings {
                    fixed_delay_ms: delay,
                    ..*spin
                },
                label: format!("spin-fixed {delay} ms"),
                spin_delay_ms: Some(delay),
                params,
            };
            let reuse = points.iter().find(|point| {
                delay == spin.fixed_delay_ms
                    && point.implementation == Implementation::SpinFixed
                    && point.waiters == run.waiters
            });
            let point = match reuse {
                Some(point) => ContentionPoint {
                    label: run.label.clone(),
                    spin_delay_ms: Some(delay),
                    ..point.clone()
                },
                None => run_point(url, &run, dir.path(), progress).await?,
            };
            spin_sweep.push(point);
        }
    }

    // The sweep over processes: lock-runtime's locks at every count, the peers at the counts
    // where they are compared with them; both locks (and the peers) in turn at each count, so
    // that a noisy moment of the machine hits them alike.
    let mut counts: Vec<usize> = params
        .process_sweep
        .iter()
        .chain(&params.peer_processes)
        .copied()
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let mut process_sweep = Vec::new();
    for processes in counts {
        for &implementation in implementations {
            let swept = if implementation.is_family() {
                &params.process_sweep
            } else {
                &params.peer_processes
            };
            if !swept.contains(&processes) {
                continue;
            }
            let run = Run {
                implementation,
                waiters: params.sweep_waiters,
                processes,
                spin: *spin,
                label: implementation.name().to_owned(),
                spin_delay_ms: None,
                params,
            };
            let tasks = run.waiters + 1;
            let reuse = points.iter().find(|point| {
                point.implementation == implementation
                    && point.waiters == run.waiters
                    && point.processes == processes.clamp(1, tasks)
            });
            let point = match reuse {
                Some(point) => point.clone(),
                None => run_point(url, &run, dir.path(), progress).await?,
            };
            process_sweep.push(point);
        }
    }

    Ok(ContentionResult {
        hold_us: params.hold_us,
        think_us: params.think_us,
        seconds_per_point: params.seconds,
        processes: params.processes,
        waiters: params.waiters.clone(),
        points,
        spin_sweep,
        process_sweep,
    })
}

/// The channel `ours` and `fair` publish releases of `name` on (default key prefix).
fn our_channel(name: &str) -> String {
    format!("{{lock:{name}}}:unlock")
}

/// Waits (off the async threads) until every worker has printed that it is ready.
async fn wait_until_ready(workers: Workers, processes: usize) -> BenchResult<Workers> {
    tokio::task::spawn_blocking(move || {
        let mut workers = workers;
        for index in 0..processes {
            if !workers.wait_for_stdout(index, READY, Duration::from_secs(60)) {
                let outputs = workers.wait_all(Duration::from_secs(1));
                let stderr = outputs.get(index).map_or("", |o| o.stderr.as_str());
                return Err(format!("worker {index} never became ready:\n{stderr}").into());
            }
        }
        Ok(workers)
    })
    .await?
}

async fn run_point(
    url: &str,
    run: &Run<'_>,
    dir: &Path,
    progress: &Progress,
) -> BenchResult<ContentionPoint> {
    let params = run.params;
    let tasks = run.waiters + 1;
    let processes = run.processes.clamp(1, tasks);
    let name = unique_name(&format!("contend-{}-{}", run.implementation, run.waiters));
    let baton = dir.join(format!("{name}.baton"));
    create_baton_file(&baton)?;
    let go_file = dir.join(format!("{name}.go"));

    let mut builder = Workers::command(std::env::current_exe()?);
    let mut first_id = 1u64;
    for process in 0..processes {
        let here = tasks / processes + usize::from(process < tasks % processes);
        let args: Vec<String> = vec![
            "worker".into(),
            "contend".into(),
            "--implementation".into(),
            run.implementation.name().into(),
            "--url".into(),
            url.into(),
            "--name".into(),
            name.clone(),
            "--tasks".into(),
            here.to_string(),
            "--first-id".into(),
            first_id.to_string(),
            "--go-file".into(),
            go_file.to_string_lossy().into_owned(),
            "--file".into(),
            baton.to_string_lossy().into_owned(),
            "--hold-us".into(),
            params.hold_us.to_string(),
            "--think-us".into(),
            params.think_us.to_string(),
            "--spin-delay-ms".into(),
            run.spin.fixed_delay_ms.to_string(),
            "--spin-backoff-initial-ms".into(),
            run.spin.backoff_initial_ms.to_string(),
            "--spin-backoff-max-ms".into(),
            run.spin.backoff_max_ms.to_string(),
            "--client-runtime".into(),
            run.spin.client_runtime.name().into(),
        ];
        builder = builder.worker(args);
        first_id += here as u64;
    }
    let workers = wait_until_ready(builder.spawn(), processes).await?;

    // Every worker is connected: open the window shortly after now, for all at once.
    let mut admin = Admin::connect(url).await?;
    let start_ns = monotonic_ns() + 100_000_000;
    let end_ns = start_ns + (params.seconds * 1e9) as u64;
    Window { start_ns, end_ns }.publish(&go_file)?;
    let channel = vec![our_channel(&name)];
    sleep_until_ns(start_ns).await;
    admin.reset_stats().await?;
    let own_channels = format!("{}:*", channel[0]);
    let (mut subscriber_samples, mut own_samples) = (Vec::new(), Vec::new());
    let sample_every = Duration::from_millis(100);
    while monotonic_ns() + (sample_every.as_nanos() as u64) < end_ns {
        tokio::time::sleep(sample_every).await;
        if run.implementation.is_family() {
            subscriber_samples.extend(admin.subscribers(&channel).await?);
            let own = admin.channels(&own_channels).await?;
            own_samples.extend(admin.subscribers(&own).await?);
        }
    }
    sleep_until_ns(end_ns).await;
    let stats = admin.command_stats().await?;
    let outputs = workers
        .wait_all_async(Duration::from_secs_f64(params.seconds) + Duration::from_secs(60))
        .await;

    let mut report = ContendReport::default();
    let mut handoffs: Histogram<u64> = new_histogram();
    let mut waits: Histogram<u64> = new_histogram();
    for (index, output) in outputs.iter().enumerate() {
        let line = output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_PREFIX));
        let (true, Some(line)) = (output.status.success(), line) else {
            return Err(format!(
                "worker {index} of {} ({} waiters) failed ({}{}):\n{}",
                run.label,
                run.waiters,
                output.status,
                if output.timed_out { ", timed out" } else { "" },
                output.stderr.trim_end()
            )
            .into());
        };
        let part: ContendReport = serde_json::from_str(line)?;
        report.acquisitions += part.acquisitions;
        report.wait_ns_total += part.wait_ns_total;
        report.hold_ns_total += part.hold_ns_total;
        report.violations += part.violations;
        report.errors.extend(part.errors);
        add_pairs(&mut handoffs, &part.handoffs)?;
        add_pairs(&mut waits, &part.waits)?;
    }

    let seconds = params.seconds;
    let acquisitions = report.acquisitions;
    let per_acquisition = |count: f64| count / acquisitions.max(1) as f64;
    let commands = CommandCounts::classify(&stats, run.implementation);
    let mean = |samples: &[u64]| {
        if samples.is_empty() {
            0.0
        } else {
            samples.iter().sum::<u64>() as f64 / samples.len() as f64
        }
    };
    let (mean_subscribers, mean_own_subscribers) = (mean(&subscriber_samples), mean(&own_samples));
    let reached = if own_samples.is_empty() {
        mean_subscribers
    } else {
        mean_own_subscribers
    };
    let point = ContentionPoint {
        implementation: run.implementation,
        label: run.label.clone(),
        waiters: run.waiters,
        tasks,
        processes,
        spin_delay_ms: run.spin_delay_ms,
        seconds,
        acquisitions,
        per_s: acquisitions as f64 / seconds,
        mean_waiting: report.wait_ns_total as f64 / (seconds * 1e9),
        mean_hold_ns: report.hold_ns_total as f64 / acquisitions.max(1) as f64,
        handoffs: handoffs.len(),
        handoff: Percentiles::of(&handoffs),
        wait: Percentiles::of(&waits),
        violations: report.violations,
        errors: report.errors,
        client_commands_per_acquisition: per_acquisition(commands.client_sent as f64),
        executed_per_acquisition: per_acquisition(commands.executed as f64),
        published_per_acquisition: per_acquisition(commands.published as f64),
        mean_subscribers,
        mean_own_subscribers,
        deliveries_per_acquisition: per_acquisition(commands.published as f64 * reached),
        commands,
    };
    progress.note(&format!(
        "{}, {} waiters, {} processes: {}, hand-off p50 {} p99 {} ({} hand-offs), {:.2} commands/acquisition{}",
        point.label,
        point.waiters,
        point.processes,
        fmt_rate(point.per_s),
        point.handoff.map_or("-".into(), |h| fmt_ns(h.p50_ns as f64)),
        point.handoff.map_or("-".into(), |h| fmt_ns(h.p99_ns as f64)),
        point.handoffs,
        point.client_commands_per_acquisition,
        if point.violations > 0 || !point.errors.is_empty() {
            format!(
                " — {} VIOLATIONS, {} errors",
                point.violations,
                point.errors.len()
            )
        } else {
            String::new()
        }
    ));
    Ok(point)
}
