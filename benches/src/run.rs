//! The whole run: flags, the Redis to use, every scenario in turn, then the report.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;

use crate::{
    BenchResult,
    cli::{Cli, Command, Scenario},
    progress::Progress,
    redis_stats::Admin,
    report::{
        self,
        thresholds::{COMPARED_AT_WAITERS, FAMILY_TARGET_PROCESSES},
    },
    results::{Machine, Meta, Results},
    scenarios::{
        cluster::{self, ClusterParams},
        contention::{self, ContentionParams},
        footprint::{self, FootprintParams},
        latency::{self, LatencyParams},
        redis_cpu::{self, RedisCpuParams},
        throughput::{self, ThroughputParams},
    },
    util::utc_now,
};

/// The critical section of scenario 3's contending tasks, in microseconds: also the pause before
/// each of scenario 1's deliveries after idling, the floor of a hand-off that follows it.
const HOLD_US: u64 = 1_000;

/// Every size of a run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Scenario 1.
    pub latency: LatencyParams,
    /// Scenario 2.
    pub throughput: ThroughputParams,
    /// Scenarios 3 to 5.
    pub contention: ContentionParams,
    /// Scenario 6.
    pub footprint: FootprintParams,
    /// Scenario 7.
    pub cluster: ClusterParams,
    /// Scenario 8.
    pub redis_cpu: RedisCpuParams,
}

impl Sizes {
    /// The full run: about six minutes on two cores (157 s measured with the fair lock, before
    /// scenario 8 added its fourteen series of 8 s).
    pub fn full(processes: usize) -> Self {
        Self {
            latency: LatencyParams {
                iterations: 20_000,
                warm_up: 500,
                calibration: 2_000,
                idle_iterations: 2_000,
                idle_pause: Duration::from_micros(HOLD_US),
            },
            throughput: ThroughputParams {
                tasks: 256,
                seconds: 3.0,
                rounds: 10,
                pipeline_connections: 4,
                pipeline_depth: 64,
            },
            contention: ContentionParams {
                waiters: vec![1, 4, 16, 64, 256],
                processes,
                seconds: 3.0,
                hold_us: HOLD_US,
                think_us: 1_000,
                // The sweeps run where the targets compare the implementations.
                sweep_waiters: COMPARED_AT_WAITERS,
                spin_sweep_ms: vec![1, 4, 16, 64],
                process_sweep: vec![1, 2, 4, 8],
                peer_processes: FAMILY_TARGET_PROCESSES.to_vec(),
            },
            footprint: FootprintParams {
                names: 1_000,
                per_name: 10,
                idle: Duration::from_secs(1),
            },
            cluster: ClusterParams {
                tasks: 256,
                seconds: 5.0,
                masters: vec![1, 3],
            },
            // The 64 tasks on one client. Sixteen interleaved slices of half a second:
            // series of 3 s moved the reference's own CPU per pair by a fifth between runs on
            // this shared machine.
            redis_cpu: RedisCpuParams {
                tasks: 64,
                seconds: 8.0,
                rounds: 16,
                pipeline_connections: 4,
                pipeline_depth: 64,
            },
        }
    }

    /// `--quick`: every scenario and code path, at tiny sizes, in seconds.
    pub fn quick(processes: usize) -> Self {
        Self {
            latency: LatencyParams {
                iterations: 200,
                warm_up: 10,
                calibration: 20,
                idle_iterations: 20,
                idle_pause: Duration::from_micros(HOLD_US),
            },
            throughput: ThroughputParams {
                tasks: 8,
                seconds: 0.2,
                rounds: 1,
                pipeline_connections: 2,
                pipeline_depth: 8,
            },
            contention: ContentionParams {
                waiters: vec![1, 4],
                processes: processes.min(2),
                seconds: 0.25,
                hold_us: HOLD_US,
                think_us: 1_000,
                sweep_waiters: 4,
                spin_sweep_ms: vec![8],
                // The main runs' processes are reused: one fresh run per lock, none for the peers.
                process_sweep: vec![1, processes.min(2)],
                peer_processes: vec![processes.min(2)],
            },
            footprint: FootprintParams {
                names: 20,
                per_name: 5,
                idle: Duration::from_millis(200),
            },
            cluster: ClusterParams {
                tasks: 8,
                seconds: 0.3,
                masters: vec![1, 3],
            },
            redis_cpu: RedisCpuParams {
                tasks: 8,
                seconds: 0.2,
                rounds: 1,
                pipeline_connections: 2,
                pipeline_depth: 8,
            },
        }
    }
}

/// The entry point of the `lock-bench` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Worker { job }) = cli.command {
        return crate::worker::run(job);
    }
    match run(&cli) {
        Ok(out) => {
            eprintln!("report written to {}", out.join("REPORT.md").display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("lock-bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The default output directory: `benches/results/` of this package.
pub fn default_out() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results"))
}

/// Writes results.json, the plots, REPORT.md and SUMMARY.md into `out`.
fn write_outputs(results: &Results, out: &std::path::Path) -> BenchResult<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(results)? + "\n",
    )?;
    report::plots::draw_all(results, out)?;
    std::fs::write(out.join("REPORT.md"), report::render(results))?;
    std::fs::write(out.join("SUMMARY.md"), report::render_summary(results))?;
    Ok(())
}

fn run(cli: &Cli) -> BenchResult<PathBuf> {
    if let Some(json) = &cli.from_json {
        let mut results: Results = serde_json::from_str(&std::fs::read_to_string(json)?)?;
        results.targets = report::evaluate_targets(&results);
        let out = match &cli.out {
            Some(out) => out.clone(),
            None => json
                .parent()
                .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf),
        };
        write_outputs(&results, &out)?;
        return Ok(out);
    }
    let out = match (&cli.out, cli.quick) {
        (Some(out), _) => out.clone(),
        (None, false) => default_out(),
        (None, true) => std::env::temp_dir().join(lock_tests::unique_name("lock-bench-quick")),
    };
    let progress = Progress::new();
    let started = utc_now();
    let load_before = loadavg();
    let server = match &cli.redis_url {
        Some(_) => None,
        None => {
            progress.note("starting redis-server (lock-tests kit)");
            Some(lock_tests::RedisServer::start())
        }
    };
    let url = match (&cli.redis_url, &server) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url(),
        (None, None) => unreachable!("a server was started"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = runtime.block_on(measure(cli, &url, &progress))?;
    results.meta.started = started;
    results.meta.machine.load_before = load_before;
    results.meta.machine.load_after = loadavg();
    results.meta.seconds = progress.elapsed();
    results.meta.own_redis = server.is_some();
    results.targets = report::evaluate_targets(&results);
    drop(server);

    write_outputs(&results, &out)?;
    for target in &results.targets {
        let verdict = match target.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        progress.note(&format!(
            "target {} [{verdict}]: {} — {}",
            target.scenario, target.target, target.measured
        ));
    }
    Ok(out)
}

async fn measure(cli: &Cli, url: &str, progress: &Progress) -> BenchResult<Results> {
    let sizes = if cli.quick {
        Sizes::quick(cli.processes)
    } else {
        Sizes::full(cli.processes)
    };
    let spin = cli.spin();
    let implementations = cli.implementations();
    let mut admin = Admin::connect(url).await?;
    let machine = machine(admin.version().await?);
    let mut results = Results {
        meta: Meta {
            quick: cli.quick,
            started: String::new(),
            seconds: 0.0,
            machine,
            own_redis: true,
            spin,
            command_line: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        },
        latency: None,
        throughput: None,
        contention: None,
        footprint: None,
        cluster: None,
        redis_cpu: None,
        targets: Vec::new(),
    };
    if cli.runs(Scenario::Latency) {
        progress.step(
            "1",
            "uncontended latency (acquire + release) vs two raw EVALSHA round trips; \
             the pub/sub floor of a hand-off",
        );
        results.latency =
            Some(latency::run(url, &implementations, &spin, sizes.latency, progress).await?);
    }
    if cli.runs(Scenario::Throughput) {
        progress.step("2", "uncontended throughput vs Redis's pipelined ceiling");
        results.throughput =
            Some(throughput::run(url, &implementations, &spin, sizes.throughput, progress).await?);
    }
    if cli.runs(Scenario::Contention) {
        progress.step(
            "3-5",
            "contended hand-off and Redis load, over several processes; peers and sweeps",
        );
        results.contention =
            Some(contention::run(url, &implementations, &spin, &sizes.contention, progress).await?);
    }
    if cli.runs(Scenario::Footprint) {
        progress.step("6", "footprint of waiting tasks");
        results.footprint = Some(footprint::run(url, sizes.footprint, progress).await?);
    }
    if cli.runs(Scenario::Cluster) {
        progress.step(
            "7",
            "uncontended throughput on Redis Cluster, 1 and 3 masters",
        );
        results.cluster = Some(cluster::run(&sizes.cluster, progress).await?);
    }
    if cli.runs(Scenario::RedisCpu) {
        progress.step(
            "8",
            "Redis CPU per uncontended acquire + release, beside the Redisson-style reference",
        );
        results.redis_cpu =
            Some(redis_cpu::run(cli.redis_url.as_deref(), &spin, sizes.redis_cpu, progress).await?);
    }
    Ok(results)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn machine(redis_version: String) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown".to_owned(),
            |(_, model)| model.trim().to_owned(),
        );
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |version| version.trim().to_owned());
    Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: memory_kib / (1024.0 * 1024.0),
        kernel,
        redis_version,
        rustc,
        load_before: String::new(),
        load_after: String::new(),
    }
}
