//! The worker processes: the tool re-executes itself (`lock-bench worker …`) to spread
//! contending tasks over several OS processes (scenario 3) and to measure the memory of waiting
//! tasks in a process of their own (scenario 6).
//!
//! A worker prints what it measured on stdout, one `key=value` or `RESULT {json}` line per fact,
//! and exits non-zero on an error.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use hdrhistogram::Histogram;
use lock_runtime::LockClient;
use serde::{Deserialize, Serialize};

use crate::{
    BenchResult,
    cli::{ContendArgs, FootprintArgs, FootprintMode, WorkerJob},
    contenders::{Contender, ContenderSettings},
    results::{new_histogram, record, to_pairs},
    util::{monotonic_ns, rss_bytes, sleep_until_ns},
};

/// The prefix of the line carrying a contending worker's [`ContendReport`].
pub const RESULT_PREFIX: &str = "RESULT ";

/// What one contending worker process measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContendReport {
    /// Acquisitions completed between the start and the end of the window.
    pub acquisitions: u64,
    /// Hand-off latencies in nanoseconds, as `(value, count)` pairs.
    pub handoffs: Vec<(u64, u64)>,
    /// Time inside the acquire call, in nanoseconds, as `(value, count)` pairs.
    pub waits: Vec<(u64, u64)>,
    /// Sum of the time spent inside `acquire` by the acquisitions counted, in nanoseconds.
    pub wait_ns_total: u64,
    /// Sum of the time from acquire returned to release started, in nanoseconds.
    pub hold_ns_total: u64,
    /// Times a task found another task inside the critical section.
    pub violations: u64,
    /// Errors of tasks that stopped early.
    pub errors: Vec<String>,
}

/// Runs a worker job; the process's exit code.
pub fn run(job: WorkerJob) -> ExitCode {
    let outcome = match job {
        WorkerJob::Contend(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|runtime| runtime.block_on(contend(args))),
        WorkerJob::Footprint(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|runtime| runtime.block_on(footprint(args))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lock-bench worker failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The record the holders share through a file: what the previous holder left.
///
/// Reads and writes happen only while holding the lock, so the file is itself a critical
/// section: the `busy` word catches any violation of mutual exclusion.
#[derive(Debug, Clone, Copy, Default)]
struct Baton {
    /// When the previous holder started its release (`CLOCK_MONOTONIC` ns).
    released_ns: u64,
    /// The previous holder's task id (0: nobody yet).
    holder: u64,
    /// The id of the task inside the critical section, 0 if none.
    busy: u64,
}

impl Baton {
    const LEN: usize = 24;

    fn read(file: &File) -> BenchResult<Self> {
        let mut bytes = [0u8; Self::LEN];
        file.read_exact_at(&mut bytes, 0)?;
        let word = |i: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        };
        Ok(Self {
            released_ns: word(0),
            holder: word(1),
            busy: word(2),
        })
    }

    fn write(self, file: &File) -> BenchResult<()> {
        let mut bytes = [0u8; Self::LEN];
        bytes[0..8].copy_from_slice(&self.released_ns.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.holder.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.busy.to_le_bytes());
        file.write_all_at(&bytes, 0)?;
        Ok(())
    }

    fn mark_busy(id: u64, file: &File) -> BenchResult<()> {
        file.write_all_at(&id.to_le_bytes(), 16)?;
        Ok(())
    }
}

/// Creates the shared file of a contention run, zeroed.
///
/// # Errors
///
/// When the file cannot be written.
pub fn create_baton_file(path: &Path) -> BenchResult<()> {
    let file = File::create(path)?;
    Baton::default().write(&file)
}

struct TaskStats {
    acquisitions: u64,
    wait_ns_total: u64,
    hold_ns_total: u64,
    handoffs: Histogram<u64>,
    waits: Histogram<u64>,
    violations: u64,
}

async fn contend(args: ContendArgs) -> BenchResult<()> {
    let spin = ContenderSettings {
        fixed_delay_ms: args.spin_delay_ms,
        backoff_initial_ms: args.spin_backoff_initial_ms,
        backoff_max_ms: args.spin_backoff_max_ms,
        client_runtime: args.client_runtime,
    };
    let contender = Arc::new(Contender::connect(args.implementation, &args.url, &spin).await?);
    let file = Arc::new(OpenOptions::new().read(true).write(true).open(&args.file)?);
    println!("{READY}");
    let window = wait_for_window(&args.go_file).await?;
    let args = Arc::new(args);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.tasks {
        let (contender, file, args) =
            (Arc::clone(&contender), Arc::clone(&file), Arc::clone(&args));
        let id = args.first_id + index as u64;
        tasks.spawn(contend_task(contender, file, args, window, id));
    }
    let mut report = ContendReport::default();
    let mut handoffs = new_histogram();
    let mut waits = new_histogram();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(stats)) => {
                report.acquisitions += stats.acquisitions;
                report.wait_ns_total += stats.wait_ns_total;
                report.hold_ns_total += stats.hold_ns_total;
                report.violations += stats.violations;
                handoffs.add(&stats.handoffs)?;
                waits.add(&stats.waits)?;
            }
            Ok(Err(err)) => report.errors.push(err.to_string()),
            Err(err) => report.errors.push(format!("task failed: {err}")),
        }
    }
    report.handoffs = to_pairs(&handoffs);
    report.waits = to_pairs(&waits);
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&report)?);
    Ok(())
}

/// What a contending worker prints once connected; the harness then opens the window.
pub const READY: &str = "ready";

/// The measured window, in `CLOCK_MONOTONIC` nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start of the window.
    pub start_ns: u64,
    /// End of the window.
    pub end_ns: u64,
}

impl Window {
    /// Writes the window to `path` for the workers (whole, through a rename).
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn publish(self, path: &Path) -> BenchResult<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{} {}", self.start_ns, self.end_ns))?;
        std::fs::rename(partial, path)?;
        Ok(())
    }
}

/// Waits for the harness to publish the window.
async fn wait_for_window(path: &Path) -> BenchResult<Window> {
    wait_for_file(path).await;
    let text = std::fs::read_to_string(path)?;
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(start_ns)), Some(Ok(end_ns))) => Ok(Window { start_ns, end_ns }),
        _ => Err(format!("malformed window file {}: {text:?}", path.display()).into()),
    }
}

/// One contending task: acquire, read the baton, hold, write the baton, release, think; until the
/// end of the window.
async fn contend_task(
    contender: Arc<Contender>,
    file: Arc<File>,
    args: Arc<ContendArgs>,
    window: Window,
    id: u64,
) -> BenchResult<TaskStats> {
    let mut stats = TaskStats {
        acquisitions: 0,
        wait_ns_total: 0,
        hold_ns_total: 0,
        handoffs: new_histogram(),
        waits: new_histogram(),
        violations: 0,
    };
    let hold = Duration::from_micros(args.hold_us);
    let think = Duration::from_micros(args.think_us);
    // Tasks start spread over one think time, not in one burst.
    sleep_until_ns(window.start_ns + fastrand::u64(..=args.think_us * 1_000)).await;
    loop {
        let started = monotonic_ns();
        if started >= window.end_ns {
            break;
        }
        let held = tokio::select! {
            held = contender.acquire(&args.name) => held?,
            () = sleep_until_ns(window.end_ns) => break,
        };
        let acquired = monotonic_ns();
        let baton = Baton::read(&file)?;
        if baton.busy != 0 {
            stats.violations += 1;
        }
        Baton::mark_busy(id, &file)?;
        if acquired <= window.end_ns {
            stats.acquisitions += 1;
            stats.wait_ns_total += acquired - started;
            record(&mut stats.waits, acquired - started);
            // A hand-off: this task was already waiting when the previous holder released.
            if baton.holder != 0 && baton.released_ns >= started {
                record(&mut stats.handoffs, acquired - baton.released_ns);
            }
        }
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        let releasing = monotonic_ns();
        if acquired <= window.end_ns {
            stats.hold_ns_total += releasing - acquired;
        }
        Baton {
            released_ns: releasing,
            holder: id,
            busy: 0,
        }
        .write(&file)?;
        contender.release(held).await?;
        if think.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(think).await;
        }
    }
    Ok(stats)
}

async fn footprint(args: FootprintArgs) -> BenchResult<()> {
    let tasks = args.names * args.per_name;
    match args.mode {
        FootprintMode::Ours => {
            let client = LockClient::connect(&args.url).await?;
            // Warm up: scripts loaded, connection buffers grown, the runtime's structures made.
            let warm_up = lock_tests::unique_name("footprint-warm-up");
            client.lock(&warm_up).acquire().await?.unlock().await?;
            {
                let lock = client.lock(&warm_up);
                let future = lock.acquire();
                println!("acquire_future_bytes={}", std::mem::size_of_val(&future));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            print_memory("baseline");
            let mut handles = Vec::with_capacity(tasks);
            for name in 0..args.names {
                for _ in 0..args.per_name {
                    let lock = client.lock(format!("{}-{name}", args.prefix));
                    handles.push(tokio::spawn(async move {
                        let guard = lock.acquire().await?;
                        guard.unlock().await?;
                        Ok::<(), lock_runtime::LockError>(())
                    }));
                    pace(handles.len()).await;
                }
            }
            println!("spawned={tasks}");
            wait_for_file(&args.measure_file).await;
            print_memory("waiting");
            for handle in handles {
                handle.await??;
            }
            println!("drained_at_ns={}", monotonic_ns());
        }
        FootprintMode::Bare => {
            let gate = Arc::new(tokio::sync::Semaphore::new(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
            print_memory("baseline");
            let mut handles = Vec::with_capacity(tasks);
            for _ in 0..tasks {
                let gate = Arc::clone(&gate);
                handles.push(tokio::spawn(async move {
                    drop(gate.acquire().await);
                }));
                pace(handles.len()).await;
            }
            println!("spawned={tasks}");
            wait_for_file(&args.measure_file).await;
            print_memory("waiting");
            gate.add_permits(tasks);
            for handle in handles {
                handle.await?;
            }
            println!("drained_at_ns={}", monotonic_ns());
        }
    }
    Ok(())
}

/// Tasks arrive in batches of 100, 2 ms apart, as requests would, rather than all at once: a
/// burst of 10 000 simultaneous first attempts would leave its transient buffers in the RSS.
async fn pace(spawned: usize) {
    if spawned.is_multiple_of(100) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Prints the process's RSS and live heap as `<when>_rss=` and `<when>_heap=`.
fn print_memory(when: &str) {
    println!("{when}_rss={}", rss_bytes().unwrap_or(0));
    println!("{when}_heap={}", crate::ALLOCATOR.allocated());
}

async fn wait_for_file(path: &Path) {
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
