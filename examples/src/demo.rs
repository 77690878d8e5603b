//! What the demo binaries (`stock-demo`, `auction-demo`) share: running their worker processes
//! with a progress bar, and the percentiles of their tables.

use std::time::Duration;

use indicatif::ProgressBar;
use lock_tests::{WorkerOutput, WorkersBuilder};
use tokio::time::Instant;

/// What a run of worker processes left.
#[derive(Debug)]
pub struct Ran {
    /// Each worker's output, in the order they were configured.
    pub outputs: Vec<WorkerOutput>,
    /// Each worker's process id, in the same order.
    pub pids: Vec<u32>,
    /// How long the run took.
    pub elapsed: Duration,
}

/// Spawns the configured workers and waits for them (60 s at most), moving `progress` to the
/// number of lines they have printed so far (each worker prints one line per thing it did).
/// A worker that failed is reported on stderr with what it printed there.
pub async fn run_workers(command: WorkersBuilder, progress: &ProgressBar) -> Ran {
    let started = Instant::now();
    let mut workers = command.spawn();
    while (0..workers.len()).any(|index| workers.is_running(index)) {
        let done: usize = (0..workers.len())
            .map(|index| workers.stdout_so_far(index).lines().count())
            .sum();
        progress.set_position(done as u64);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress.finish_and_clear();
    let pids: Vec<u32> = (0..workers.len()).map(|index| workers.pid(index)).collect();
    let outputs = workers.wait_all(Duration::from_secs(60));
    let elapsed = started.elapsed();
    for output in outputs.iter().filter(|output| !output.status.success()) {
        eprintln!("a worker failed ({}):\n{}", output.status, output.stderr);
    }
    Ran {
        outputs,
        pids,
        elapsed,
    }
}

/// The `percent`-th percentile of `times`, in milliseconds for a table, or `-` when empty.
pub fn percentile(times: &[Duration], percent: usize) -> String {
    if times.is_empty() {
        return "-".to_owned();
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    format!("{:.1} ms", sorted[index].as_secs_f64() * 1e3)
}
