//! `lock-bench`: measures `lock-runtime` against the physical limit and against its peers, in one
//! run, and writes the performance report.
//!
//! ```text
//! cargo run -p lock-bench --release            # full run: benches/results/{REPORT.md,*.svg,results.json}
//! cargo run -p lock-bench -- --quick           # every scenario at tiny sizes, into a temporary dir
//! cargo run -p lock-bench --release -- --redis-url redis://127.0.0.1:6379 --out /tmp/bench
//! ```
//!
//! The tool starts its own `redis-server` (through the `lock-tests` kit) unless it is given
//! `--redis-url`. Every figure is measured next to its reference *in the same run*, interleaved
//! where possible, and reported as a ratio as well, so a figure taken on a noisy machine still
//! says something.
//!
//! # Scenarios
//!
//! 1. **Uncontended latency** ([`scenarios::latency`]): one task acquires and releases in a loop;
//!    p50 / p99 / p99.9 from an HDR histogram, against the physical floor: two sequential raw
//!    `EVALSHA` calls of a trivial script on one connection (two round trips). Beside it, the
//!    floor of a hand-off through pub/sub: a script that publishes, until a subscriber on another
//!    thread receives the message.
//! 2. **Uncontended throughput** ([`scenarios::throughput`]): many tasks, each on its own lock
//!    name; acquisitions per second against Redis's own ceiling for the same two scripts sent
//!    pipelined, measured by the tool.
//! 3. **Contended hand-off** ([`scenarios::contention`]): 1 … 256 waiters on one name spread over
//!    several OS processes (the binary re-executes itself as workers); the latency from the holder
//!    starting its release to the next holder returning from its acquire, on the one monotonic
//!    clock all processes share, and acquisitions per second.
//! 4. **Redis load under contention** (same runs as 3): client commands and pub/sub messages per
//!    acquisition, from `INFO commandstats`, against the number of waiters.
//! 5. **Peers on the same workloads** ([`contenders`]): a spin lock (`SET NX PX` plus
//!    sleep-and-retry, with a fixed delay and with jittered exponential backoff) and the published
//!    crate `rslock`, driven by the same harness in scenarios 1 to 4 beside lock-runtime's two
//!    locks, `ours` (the reentrant lock) and `fair` (the fair lock); a sweep of the spin lock's
//!    delay that shows its latency / load trade-off, and a sweep of `ours` and `fair` over 1, 2, 4
//!    and 8 processes at 64 waiters, with the peers at the process counts the targets compare.
//! 6. **Footprint** ([`scenarios::footprint`]): memory (RSS) and Redis connections of one client
//!    process with 10 000 tasks waiting on 1 000 names, against bare parked Tokio tasks.
//! 7. **Redis Cluster** ([`scenarios::cluster`]): uncontended throughput with 1 and 3 masters.
//! 8. **Redis CPU per acquisition** ([`scenarios::redis_cpu`]): Redis's own CPU (`INFO cpu`) and
//!    script time (`INFO commandstats`) per uncontended acquire + release of every primitive,
//!    beside a Redisson-style reference ([`redisson`]) and `SET NX PX` + compare-and-delete, also
//!    with the scripts pipelined.
//!
//! The report ([`report`]) states each target of the issue as met or not, and the plots
//! ([`report::plots`]) show hand-off latency and Redis commands per acquisition against the number of
//! waiters, and the latency histogram of scenario 1.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod cli;
pub mod contenders;
pub mod progress;
pub mod redis_stats;
pub mod redisson;
pub mod report;
pub mod results;
pub mod run;
pub mod scenarios;
pub mod util;
pub mod worker;

/// The global allocator: the system's, counting the bytes allocated and not yet freed, so scenario
/// 6 can report the live heap per waiting task next to the RSS. Counting costs an atomic add per
/// allocation, the same for every implementation measured.
#[global_allocator]
pub static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The error type of the tool: anything that stops a run, with a message saying what failed.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The result type of the tool.
pub type BenchResult<T> = Result<T, BenchError>;
