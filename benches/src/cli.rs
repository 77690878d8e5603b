//! Command-line flags, and the hidden worker subcommands the tool runs itself as.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::contenders::{ClientRuntime, ContenderSettings, Implementation};

/// Measures lock-runtime against the physical limit and its peers, and writes the report.
#[derive(Debug, Parser)]
#[command(name = "lock-bench", version)]
pub struct Cli {
    /// Every scenario at tiny sizes, in seconds; writes to a temporary directory unless `--out`.
    /// The figures of a quick run are not meant to be read.
    #[arg(long)]
    pub quick: bool,

    /// Use this Redis instead of starting a redis-server. The tool runs `CONFIG RESETSTAT` on
    /// it and reads `INFO`: give it a Redis nothing else uses.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,

    /// Where to write REPORT.md, results.json and the plots. Defaults to `benches/results/`
    /// (a temporary directory with `--quick`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Measure nothing: re-render REPORT.md, SUMMARY.md and the plots from this results.json
    /// (into its directory unless `--out`), for example after changing the report's layout.
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,

    /// Run only these scenarios (comma-separated); the report marks the others not measured.
    #[arg(long, value_delimiter = ',', value_name = "SCENARIO")]
    pub only: Vec<Scenario>,

    /// Run only these implementations (comma-separated). Defaults to all.
    #[arg(long, value_delimiter = ',', value_name = "IMPL")]
    pub implementations: Vec<Implementation>,

    /// OS processes the contending tasks of scenario 3 are spread over.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub processes: usize,

    /// The spin lock's constant delay between attempts (Redisson's `ConstantBackOff` default).
    #[arg(long, default_value_t = ContenderSettings::default().fixed_delay_ms, value_name = "MS")]
    pub spin_delay_ms: u64,

    /// The jittered spin lock's first backoff ceiling (Redisson's `ExponentialBackOff` default).
    #[arg(long, default_value_t = ContenderSettings::default().backoff_initial_ms, value_name = "MS")]
    pub spin_backoff_initial_ms: u64,

    /// The jittered spin lock's largest backoff ceiling (Redisson's `ExponentialBackOff` default).
    #[arg(long, default_value_t = ContenderSettings::default().backoff_max_ms, value_name = "MS")]
    pub spin_backoff_max_ms: u64,

    /// The runtime lock-runtime's clients run their connections and background tasks on in
    /// scenarios 1 to 3 and 8: the library's own thread (`LockClientBuilder`'s default), or the
    /// runtime of the process using them (`LockClientBuilder::background_runtime`).
    #[arg(long, value_enum, default_value_t = ClientRuntime::Library, value_name = "RUNTIME")]
    pub client_runtime: ClientRuntime,

    /// Internal: the tool re-executes itself as worker processes.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The spin lock's settings from the flags.
    pub fn spin(&self) -> ContenderSettings {
        ContenderSettings {
            fixed_delay_ms: self.spin_delay_ms,
            backoff_initial_ms: self.spin_backoff_initial_ms,
            backoff_max_ms: self.spin_backoff_max_ms,
            client_runtime: self.client_runtime,
        }
    }

    /// Whether `scenario` is to run.
    pub fn runs(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    /// The implementations to run, in report order.
    pub fn implementations(&self) -> Vec<Implementation> {
        Implementation::ALL
            .into_iter()
            .filter(|i| self.implementations.is_empty() || self.implementations.contains(i))
            .collect()
    }
}

/// A scenario that `--only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 1: uncontended latency.
    Latency,
    /// 2: uncontended throughput.
    Throughput,
    /// 3, 4 and 5: contended hand-off, Redis load, and the sweeps.
    Contention,
    /// 6: memory and connections of waiting tasks.
    Footprint,
    /// 7: uncontended throughput on Redis Cluster, 1 and 3 masters.
    Cluster,
    /// 8: Redis's own CPU per uncontended acquire + release, beside the Redisson-style reference.
    RedisCpu,
}

/// The hidden subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A worker process (run by the tool itself).
    #[command(hide = true)]
    Worker {
        /// What the worker does.
        #[command(subcommand)]
        job: WorkerJob,
    },
}

/// What a worker process does.
#[derive(Debug, Subcommand)]
pub enum WorkerJob {
    /// Contend for one lock with several tasks (scenario 3).
    Contend(ContendArgs),
    /// Park many waiting tasks and report memory (scenario 6).
    Footprint(FootprintArgs),
}

/// Arguments of a contending worker.
#[derive(Debug, Clone, Args)]
pub struct ContendArgs {
    /// The implementation.
    #[arg(long)]
    pub implementation: Implementation,
    /// Redis URL.
    #[arg(long)]
    pub url: String,
    /// The lock name.
    #[arg(long)]
    pub name: String,
    /// Tasks in this process.
    #[arg(long)]
    pub tasks: usize,
    /// Id of this process's first task (ids are unique across processes and never 0).
    #[arg(long)]
    pub first_id: u64,
    /// The file the harness writes `<start_ns> <end_ns>` (`CLOCK_MONOTONIC`) to once every
    /// worker is ready: the measured window.
    #[arg(long)]
    pub go_file: PathBuf,
    /// The shared file the holders write their release timestamps to.
    #[arg(long)]
    pub file: PathBuf,
    /// How long a holder keeps the lock, in microseconds.
    #[arg(long)]
    pub hold_us: u64,
    /// Pause between a release and the next acquire, in microseconds.
    #[arg(long)]
    pub think_us: u64,
    /// The spin lock's constant delay.
    #[arg(long)]
    pub spin_delay_ms: u64,
    /// The jittered spin lock's first ceiling.
    #[arg(long)]
    pub spin_backoff_initial_ms: u64,
    /// The jittered spin lock's largest ceiling.
    #[arg(long)]
    pub spin_backoff_max_ms: u64,
    /// Where lock-runtime's client runs its background work.
    #[arg(long, value_enum)]
    pub client_runtime: ClientRuntime,
}

/// What a footprint worker parks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FootprintMode {
    /// Tasks waiting in `Lock::acquire` on locks held by another process.
    Ours,
    /// The reference: tasks parked on a `tokio::sync::Notify`, doing nothing else.
    Bare,
}

/// Arguments of a footprint worker.
#[derive(Debug, Clone, Args)]
pub struct FootprintArgs {
    /// What to park.
    #[arg(long)]
    pub mode: FootprintMode,
    /// Redis URL.
    #[arg(long)]
    pub url: String,
    /// Lock names are `<prefix>-<i>` for `i` in `0..names`.
    #[arg(long)]
    pub prefix: String,
    /// Number of names.
    #[arg(long)]
    pub names: usize,
    /// Waiting tasks per name.
    #[arg(long)]
    pub per_name: usize,
    /// The worker measures once this file exists, then (mode `ours`) waits for every task to get
    /// its lock.
    #[arg(long)]
    pub measure_file: PathBuf,
}
