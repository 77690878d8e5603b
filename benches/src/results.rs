//! The measured figures, as written to `results.json` and read by the report and its plots.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::redis_stats::{ClientCounts, CommandCounts};
use crate::{BenchResult, contenders::ContenderSettings, contenders::Implementation};

/// A latency histogram in nanoseconds, from 100 ns to 10 minutes at 3 significant digits.
///
/// # Panics
///
/// Never: the bounds are valid constants.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(100, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `value_ns`, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, value_ns: u64) {
    histogram.saturating_record(value_ns.max(100));
}

/// The recorded values of `histogram` as `(value, count)` pairs: lossless within its precision,
/// and compact enough for a worker to print.
pub fn to_pairs(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|value| (value.value_iterated_to(), value.count_at_value()))
        .collect()
}

/// Adds pairs made by [`to_pairs`] into `histogram`.
///
/// # Errors
///
/// When a value is out of the histogram's range.
pub fn add_pairs(histogram: &mut Histogram<u64>, pairs: &[(u64, u64)]) -> BenchResult<()> {
    for &(value, count) in pairs {
        histogram.record_n(value.max(100), count)?;
    }
    Ok(())
}

/// Summary of a latency distribution, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

impl Percentiles {
    /// The summary of `histogram`, or `None` if it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            count: histogram.len(),
            mean_ns: histogram.mean(),
            p50_ns: histogram.value_at_quantile(0.50),
            p90_ns: histogram.value_at_quantile(0.90),
            p99_ns: histogram.value_at_quantile(0.99),
            p999_ns: histogram.value_at_quantile(0.999),
            max_ns: histogram.max(),
        })
    }
}

/// One bar of a latency histogram: samples at most `upper_ns` (and above the previous bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound of the bar, in nanoseconds.
    pub upper_ns: u64,
    /// Samples in the bar.
    pub count: u64,
}

/// `histogram` in logarithmic bars, each `factor` times wider than the one before, from `first_ns`.
pub fn log_buckets(histogram: &Histogram<u64>, first_ns: u64, factor: f64) -> Vec<Bucket> {
    if histogram.is_empty() {
        return Vec::new();
    }
    histogram
        .iter_log(first_ns, factor)
        .map(|value| Bucket {
            upper_ns: value.value_iterated_to(),
            count: value.count_since_last_iteration(),
        })
        .collect()
}

/// The run as a whole: when, where, how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `--quick`: tiny sizes, figures not meant to be read.
    pub quick: bool,
    /// When the run started (UTC).
    pub started: String,
    /// How long the run took, in seconds.
    pub seconds: f64,
    /// The machine and the Redis it ran on.
    pub machine: Machine,
    /// Whether the tool started its own redis-server (else `--redis-url` was given).
    pub own_redis: bool,
    /// The contenders' settings: the spin lock's delays, the runtime of lock-runtime's clients.
    pub spin: ContenderSettings,
    /// The command line.
    pub command_line: String,
}

/// What the figures were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Memory, in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// Redis server version.
    pub redis_version: String,
    /// `rustc --version`, when rustc is on PATH.
    pub rustc: String,
    /// `/proc/loadavg` when the run started: other work on the machine makes figures noisy.
    pub load_before: String,
    /// `/proc/loadavg` when the run ended.
    pub load_after: String,
}

/// One series of scenario 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySeries {
    /// `floor` or the implementation's name.
    pub label: String,
    /// The implementation, `None` for the floor.
    pub implementation: Option<Implementation>,
    /// Acquire + release latency (the floor: two `EVALSHA` round trips).
    pub latency: Percentiles,
    /// Microseconds Redis spent executing one acquire + release (its client-sent commands,
    /// scripts included), from `INFO commandstats` over a separate calibration pass.
    pub redis_us_per_op: f64,
    /// Its distribution, for the histogram plot.
    pub buckets: Vec<Bucket>,
}

/// Scenario 1: uncontended acquire + release latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyResult {
    /// Iterations per series.
    pub iterations: u64,
    /// Iterations of the pass that measured Redis's time per operation.
    pub calibration: u64,
    /// The physical floor: two sequential `EVALSHA` of `return 1` on one connection.
    pub floor: LatencySeries,
    /// One series per implementation.
    pub series: Vec<LatencySeries>,
    /// The Redisson-style reference ([`crate::redisson`]) through a plain redis-rs connection:
    /// what the lock most users compare with costs on the same path. `None` in the results of
    /// runs made before it was measured.
    #[serde(default)]
    pub reference: Option<LatencySeries>,
    /// The floor of a pub/sub hand-off: an `EVALSHA` of a script that publishes, until a plain
    /// subscriber on another thread of this process receives the message, one after the other.
    /// `None` in the results of runs made before it was measured.
    #[serde(default)]
    pub pubsub_delivery: Option<Percentiles>,
    /// The same deliveries measured after a pause each (scenario 3's critical section), as a
    /// hand-off comes after one: the threads and the CPUs on the path wake from sleep. `None` in
    /// the results of runs made before it was measured.
    #[serde(default)]
    pub pubsub_delivery_idle: Option<IdleDelivery>,
    /// The floor, the reference and `ours` on each client runtime, measured again from a task
    /// on the runtime's workers. `None` in the results of runs made before it was measured.
    #[serde(default)]
    pub from_worker: Option<WorkerLatency>,
}

/// Scenario 1's pass from a task on the runtime's worker threads: the floor first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerLatency {
    /// The floor, the Redisson-style reference, then `ours` on the library's runtime and on the
    /// application's.
    pub series: Vec<WorkerSeries>,
}

impl WorkerLatency {
    /// The median of `series` over the floor's (the first series).
    pub fn p50_over_floor(&self, series: &WorkerSeries) -> f64 {
        let floor = self.series.first().map_or(1, |floor| floor.latency.p50_ns);
        series.latency.p50_ns as f64 / floor.max(1) as f64
    }
}

/// One series of [`WorkerLatency`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSeries {
    /// What it measures.
    pub label: String,
    /// Its latency.
    pub latency: Percentiles,
}

/// Deliveries of the pub/sub floor measured each after a pause.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IdleDelivery {
    /// The pause before each delivery, in microseconds.
    pub pause_us: u64,
    /// Their latency.
    pub delivery: Percentiles,
}

impl LatencyResult {
    /// The series of `implementation`.
    pub fn series_of(&self, implementation: Implementation) -> Option<&LatencySeries> {
        self.series
            .iter()
            .find(|series| series.implementation == Some(implementation))
    }

    /// One round trip (half the floor's median), in nanoseconds.
    pub fn round_trip_ns(&self) -> f64 {
        self.floor.latency.p50_ns as f64 / 2.0
    }

    /// The median of `series` over the floor's.
    pub fn p50_over_floor(&self, series: &LatencySeries) -> f64 {
        series.latency.p50_ns as f64 / self.floor.latency.p50_ns.max(1) as f64
    }
}

/// Redis's own ceiling for one acquire + release protocol, sent pipelined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Short name of the protocol.
    pub protocol: String,
    /// What was sent.
    pub description: String,
    /// Acquire + release pairs per second.
    pub pairs_per_s: f64,
}

/// One implementation in scenario 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSeries {
    /// The implementation.
    pub implementation: Implementation,
    /// Acquisitions made.
    pub acquisitions: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Acquisitions per second.
    pub per_s: f64,
    /// The protocol whose ceiling applies (`ours` scripts, or `SET NX` + script).
    pub ceiling_protocol: String,
    /// `per_s` over that ceiling.
    pub of_ceiling: f64,
}

/// Scenario 2: uncontended throughput over many names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResult {
    /// Tasks, each on its own name, in one process.
    pub tasks: usize,
    /// Seconds measured per series (split into interleaved rounds).
    pub seconds_per_series: f64,
    /// Rounds.
    pub rounds: u32,
    /// Pipeline: connections × pairs per pipeline.
    pub pipeline: String,
    /// The ceilings measured.
    pub ceilings: Vec<Ceiling>,
    /// One series per implementation.
    pub series: Vec<ThroughputSeries>,
}

impl ThroughputResult {
    /// The series of `implementation`.
    pub fn series_of(&self, implementation: Implementation) -> Option<&ThroughputSeries> {
        self.series
            .iter()
            .find(|series| series.implementation == implementation)
    }
}

/// Scenario 7: uncontended throughput on Redis Cluster, by number of masters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterResult {
    /// Tasks, each on its own name, in one process.
    pub tasks: usize,
    /// Seconds measured per cluster.
    pub seconds_per_series: f64,
    /// One series per cluster, fewest masters first.
    pub series: Vec<ClusterSeries>,
}

/// The throughput of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSeries {
    /// Its masters.
    pub masters: usize,
    /// Acquisitions made.
    pub acquisitions: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Acquisitions per second.
    pub per_s: f64,
}

impl ClusterResult {
    /// The throughput of the most masters over that of the fewest: how it scales.
    pub fn scaling(&self) -> Option<(usize, usize, f64)> {
        let (first, last) = (self.series.first()?, self.series.last()?);
        (self.series.len() > 1).then(|| {
            (
                first.masters,
                last.masters,
                last.per_s / first.per_s.max(1e-9),
            )
        })
    }
}

/// What scenario 8 measures Redis's CPU for: each of lock-runtime's primitives, and the two
/// references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuSubject {
    /// `Lock::acquire` and `LockGuard::unlock`.
    Lock,
    /// `FairLock::acquire` and `LockGuard::unlock`.
    FairLock,
    /// `ReadLock::acquire` of a read-write lock and `LockGuard::unlock`.
    ReadLock,
    /// `WriteLock::acquire` of a read-write lock and `LockGuard::unlock`.
    WriteLock,
    /// `Semaphore::acquire(1)` of a semaphore of one permit, and `SemaphorePermit::release`.
    Semaphore,
    /// Redisson's `RLock` algorithm as two scripts ([`crate::redisson`]).
    RedissonReference,
    /// `SET NX PX` and a compare-and-delete script: the least a lock can cost.
    SetNx,
}

impl CpuSubject {
    /// Every subject, in report order.
    pub const ALL: [Self; 7] = [
        Self::Lock,
        Self::FairLock,
        Self::ReadLock,
        Self::WriteLock,
        Self::Semaphore,
        Self::RedissonReference,
        Self::SetNx,
    ];

    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::FairLock => "fair lock",
            Self::ReadLock => "read lock",
            Self::WriteLock => "write lock",
            Self::Semaphore => "semaphore (1 permit)",
            Self::RedissonReference => "Redisson-style reference",
            Self::SetNx => "`SET NX PX` + compare-and-delete",
        }
    }

    /// Whether this is one of lock-runtime's primitives rather than a reference.
    pub fn is_ours(self) -> bool {
        !matches!(self, Self::RedissonReference | Self::SetNx)
    }
}

impl std::fmt::Display for CpuSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Redis's cost of one subject's uncontended acquire + release pairs in scenario 8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSeries {
    /// What was measured.
    pub subject: CpuSubject,
    /// `false`: tasks of one client, each waiting for its replies; `true`: the subject's scripts
    /// sent in pipelines (Redis's own ceiling).
    pub pipelined: bool,
    /// Acquire + release pairs done.
    pub pairs: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Pairs per second.
    pub pairs_per_s: f64,
    /// Microseconds of CPU Redis used per pair (`INFO cpu`: `used_cpu_sys` + `used_cpu_user`,
    /// every thread, everything Redis did in the window).
    pub cpu_us_per_pair: f64,
    /// Microseconds Redis spent per pair executing the commands the client sent (`INFO
    /// commandstats`: `EVALSHA`, `EVAL`, and the `SET` of `SET NX`), the scripts' own calls
    /// inside.
    pub command_us_per_pair: f64,
    /// Those client-sent commands per pair.
    pub client_commands_per_pair: f64,
    /// Commands Redis executed per pair, those the scripts call included.
    pub executed_commands_per_pair: f64,
}

/// Scenario 8: Redis's own CPU per uncontended acquire + release, for every primitive beside the
/// references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisCpuResult {
    /// Tasks of one client, each on a name of its own.
    pub tasks: usize,
    /// Seconds measured per series (split into interleaved rounds).
    pub seconds_per_series: f64,
    /// Rounds.
    pub rounds: u32,
    /// The pipelined series: connections × pairs per pipeline.
    pub pipeline: String,
    /// Whether the scenario ran on a Redis started for it alone (else the one `--redis-url` gave).
    pub fresh_redis: bool,
    /// One series per subject, then the pipelined ones.
    pub series: Vec<CpuSeries>,
}

impl RedisCpuResult {
    /// The series of `subject`, pipelined or not.
    pub fn series_of(&self, subject: CpuSubject, pipelined: bool) -> Option<&CpuSeries> {
        self.series
            .iter()
            .find(|series| series.subject == subject && series.pipelined == pipelined)
    }

    /// The series of the Redisson-style reference measured the same way as `series`.
    pub fn reference_for(&self, series: &CpuSeries) -> Option<&CpuSeries> {
        self.series_of(CpuSubject::RedissonReference, series.pipelined)
    }

    /// `figure` of `series` over that of the reference measured the same way.
    pub fn ratio(&self, series: &CpuSeries, figure: fn(&CpuSeries) -> f64) -> Option<f64> {
        let reference = figure(self.reference_for(series)?);
        (reference > 0.0).then(|| figure(series) / reference)
    }
}

/// One run of the contended workload: one implementation, one number of waiters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentionPoint {
    /// The implementation.
    pub implementation: Implementation,
    /// Label in tables and plots (the implementation, or e.g. `spin-fixed 4 ms` in the sweep).
    pub label: String,
    /// Waiters: tasks waiting while one holds (tasks = waiters + 1).
    pub waiters: usize,
    /// Contending tasks.
    pub tasks: usize,
    /// OS processes the tasks are spread over.
    pub processes: usize,
    /// The spin lock's fixed delay in this run, when it differs from the default.
    pub spin_delay_ms: Option<u64>,
    /// Seconds measured.
    pub seconds: f64,
    /// Acquisitions completed in the window.
    pub acquisitions: u64,
    /// Acquisitions per second.
    pub per_s: f64,
    /// Tasks inside `acquire` on average (Little's law: total time waited / window).
    pub mean_waiting: f64,
    /// Mean time a holder kept the lock (critical section and bookkeeping), in nanoseconds.
    pub mean_hold_ns: f64,
    /// Acquisitions by a task that was already waiting when the previous holder released.
    pub handoffs: u64,
    /// Hand-off latency: previous holder starts its release → this holder's acquire returns.
    pub handoff: Option<Percentiles>,
    /// Time inside the acquire call, for every acquisition.
    pub wait: Option<Percentiles>,
    /// Times a task found another inside the critical section (must be 0).
    pub violations: u64,
    /// Errors the workers reported.
    pub errors: Vec<String>,
    /// Redis commands in the window.
    pub commands: CommandCounts,
    /// Client-sent commands per acquisition.
    pub client_commands_per_acquisition: f64,
    /// Commands executed per acquisition, those inside scripts included.
    pub executed_per_acquisition: f64,
    /// `PUBLISH` calls per acquisition (made inside the release scripts of `ours` and `fair`).
    pub published_per_acquisition: f64,
    /// Mean subscribers of the lock's channel (sampled): one per process with waiters.
    pub mean_subscribers: f64,
    /// Mean subscribers of each client's own channel of the lock (sampled; 0 when none was
    /// seen), where a release's message naming a waiter goes: one, the waiter's process.
    #[serde(default)]
    pub mean_own_subscribers: f64,
    /// Pub/sub messages delivered per acquisition (published × mean subscribers of the channels
    /// they go to: the own channels', or the lock's where none was seen; approximate).
    pub deliveries_per_acquisition: f64,
}

/// Scenarios 3 and 4, and the sweeps of scenario 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentionResult {
    /// Time each holder keeps the lock, in microseconds (0: only the bookkeeping).
    pub hold_us: u64,
    /// Pause of each task between its release and its next acquire, in microseconds.
    pub think_us: u64,
    /// Seconds measured per point.
    pub seconds_per_point: f64,
    /// Default number of worker processes.
    pub processes: usize,
    /// Waiter counts.
    pub waiters: Vec<usize>,
    /// One point per implementation and waiter count.
    pub points: Vec<ContentionPoint>,
    /// `spin-fixed` at several delays, at one waiter count.
    pub spin_sweep: Vec<ContentionPoint>,
    /// At one waiter count: `ours` and `fair` over several process counts, and the peers at the
    /// counts where they are compared with them, in order of processes.
    pub process_sweep: Vec<ContentionPoint>,
}

impl ContentionPoint {
    /// Calls of the command `name` (lower case) per acquisition.
    pub fn calls_per_acquisition(&self, name: &str) -> f64 {
        self.commands.by_command.get(name).copied().unwrap_or(0) as f64
            / self.acquisitions.max(1) as f64
    }
}

impl ContentionResult {
    /// The point of `implementation` at `waiters`.
    pub fn point(
        &self,
        implementation: Implementation,
        waiters: usize,
    ) -> Option<&ContentionPoint> {
        self.points
            .iter()
            .find(|point| point.implementation == implementation && point.waiters == waiters)
    }

    /// The point of `implementation` at `waiters` over `processes`, from the main runs or the
    /// sweep over processes.
    pub fn at(
        &self,
        implementation: Implementation,
        waiters: usize,
        processes: usize,
    ) -> Option<&ContentionPoint> {
        self.points.iter().chain(&self.process_sweep).find(|point| {
            point.implementation == implementation
                && point.waiters == waiters
                && point.processes == processes
        })
    }

    /// The points of the sweep over processes of `implementation`, by processes.
    pub fn swept(
        &self,
        implementation: Implementation,
    ) -> impl Iterator<Item = &ContentionPoint> + '_ {
        self.process_sweep
            .iter()
            .filter(move |point| point.implementation == implementation)
    }

    /// The process counts of the sweep, in order.
    pub fn sweep_processes(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.process_sweep.iter().map(|p| p.processes).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// The waiter count of the sweep over processes, if it ran.
    pub fn sweep_waiters(&self) -> Option<usize> {
        self.process_sweep.first().map(|point| point.waiters)
    }
}

/// One footprint worker's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FootprintRun {
    /// `ours` or `bare`.
    pub mode: String,
    /// Lock names waited on (0 for `bare`).
    pub names: usize,
    /// Waiting tasks.
    pub tasks: usize,
    /// RSS of the worker before spawning the tasks, in bytes.
    pub baseline_rss: u64,
    /// RSS while every task waits, in bytes.
    pub waiting_rss: u64,
    /// `(waiting_rss − baseline_rss) / tasks`.
    pub bytes_per_task: f64,
    /// Live heap bytes of the worker before spawning the tasks.
    pub baseline_heap: u64,
    /// Live heap bytes while every task waits.
    pub waiting_heap: u64,
    /// `(waiting_heap − baseline_heap) / tasks`: what the waiting tasks hold, without the
    /// allocator's slack.
    pub heap_bytes_per_task: f64,
    /// `size_of_val` of one `Lock::acquire` future (ours).
    pub acquire_future_bytes: Option<u64>,
    /// Connections the worker opened to Redis.
    pub connections: ClientCounts,
    /// Channels with a subscriber while the tasks wait.
    pub subscribed_channels: u64,
    /// Largest subscriber count of one channel (1: one subscription per name per client).
    pub max_subscribers_per_channel: u64,
    /// The client's own channels of the locks subscribed while the tasks wait (one per name,
    /// where a release names a waiter), beside `subscribed_channels`.
    #[serde(default)]
    pub own_channels: u64,
    /// Client commands per second Redis received while the tasks waited.
    pub commands_per_s_while_waiting: f64,
    /// Growth of Redis's `used_memory` while the tasks wait, in bytes.
    pub redis_memory_growth: i64,
    /// From the release of the locks to the last task done, in milliseconds (ours).
    pub drain_ms: Option<f64>,
}

/// Scenario 6's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FootprintResult {
    /// Tasks waiting in `Lock::acquire`.
    pub ours: FootprintRun,
    /// The reference: bare parked tasks.
    pub bare: FootprintRun,
}

/// A target of the issue, and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The scenario (1 … 8).
    pub scenario: u8,
    /// The target as the issue states it.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured in this run.
    pub met: Option<bool>,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// About the run.
    pub meta: Meta,
    /// Scenario 1.
    pub latency: Option<LatencyResult>,
    /// Scenario 2.
    pub throughput: Option<ThroughputResult>,
    /// Scenarios 3, 4, 5.
    pub contention: Option<ContentionResult>,
    /// Scenario 6.
    pub footprint: Option<FootprintResult>,
    /// Scenario 7 (absent from results written before it existed).
    #[serde(default)]
    pub cluster: Option<ClusterResult>,
    /// Scenario 8 (absent from results written before it existed).
    #[serde(default)]
    pub redis_cpu: Option<RedisCpuResult>,
    /// The targets, evaluated.
    pub targets: Vec<Target>,
}
