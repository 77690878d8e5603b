//! Scenario 8: Redis's own CPU per uncontended acquire + release, for every primitive, beside a
//! Redisson-style reference and `SET NX PX` + compare-and-delete.
//!
//! A shared Redis pays this for every lock its clients take, so it is the cost users compare
//! first. Each subject runs tasks of one client, each task acquiring and releasing a name of its
//! own in a loop: lock-runtime's lock, fair lock, read lock, write lock and semaphore (of one
//! permit) through one `LockClient`; the Redisson-style reference ([`crate::redisson`]) and
//! `SET NX PX` + compare-and-delete (the spin lock's path, which never waits here) through one
//! plain redis-rs multiplexed connection. Around each measured slice the scenario reads
//! `INFO cpu` (`used_cpu_sys` + `used_cpu_user`: everything Redis did) and `INFO commandstats`
//! (the microseconds of the commands the client sent, scripts' inner calls included).
//!
//! The same figures are taken with the scripts alone sent in pipelines (Redis's own ceiling,
//! with scenario 2's pipelines): for the lock (its scripts, built by the runtime), the reference
//! and `SET NX`. lock-runtime builds pipelined calls of the lock's scripts only, so the other
//! primitives have no pipelined series.
//!
//! All series are interleaved in rounds, the order rotated each round, on a Redis started for
//! this scenario alone (unless `--redis-url` names one). Each implementation writes a release
//! memo per pair, which lives 10 s (ours) or 13.5 s (the reference's) and would expire in
//! whichever slice runs then: with slices of half a second, always the same few series of a
//! run, a bias of up to a tenth that moved from run to run with the slices' timing. So the memos
//! a slice wrote are deleted after it, outside the measured time: every series pays for writing
//! its memos, none for another's expiring.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::LockClient;
use lock_tests::unique_name;

use super::throughput::{Pipelines, Protocol, measure_contender};
use crate::{
    BenchResult,
    contenders::{Contender, ContenderSettings, Implementation},
    progress::Progress,
    redis_stats::{Admin, HARNESS_COMMANDS},
    redisson::RedissonReference,
    results::{CpuSeries, CpuSubject, RedisCpuResult},
    util::fmt_rate,
};

/// Sizes of scenario 8.
#[derive(Debug, Clone, Copy)]
pub struct RedisCpuParams {
    /// Tasks of the one client, each on its own name.
    pub tasks: usize,
    /// Seconds measured per series, split into rounds.
    pub seconds: f64,
    /// Rounds.
    pub rounds: u32,
    /// Connections sending pipelines, for the pipelined series.
    pub pipeline_connections: usize,
    /// Acquire + release pairs per pipeline.
    pub pipeline_depth: usize,
}

/// The commands a subject's client sends on the uncontended path, whose `INFO commandstats`
/// microseconds are its script time: the scripts' own calls are counted inside them.
fn client_commands(subject: CpuSubject) -> &'static [&'static str] {
    match subject {
        CpuSubject::SetNx => &["set", "evalsha", "eval"],
        _ => &["fcall", "evalsha", "eval"],
    }
}

/// The pipelined protocol of `subject`, for the subjects that have one.
fn protocol(subject: CpuSubject) -> Option<Protocol> {
    match subject {
        CpuSubject::Lock => Some(Protocol::OurScripts),
        CpuSubject::RedissonReference => Some(Protocol::Redisson),
        CpuSubject::SetNx => Some(Protocol::SetNx),
        _ => None,
    }
}

/// What drives one subject's tasks.
enum Driver {
    /// The lock, the fair lock and `SET NX`: the harness's own contenders.
    Contender(Arc<Contender>),
    /// Read locks of read-write locks.
    Read(LockClient),
    /// Write locks of read-write locks.
    Write(LockClient),
    /// Semaphores of one permit.
    Semaphore(LockClient),
    /// The Redisson-style reference.
    Reference(RedissonReference),
}

impl Driver {
    async fn connect(
        subject: CpuSubject,
        url: &str,
        spin: &ContenderSettings,
        run: &str,
    ) -> BenchResult<Self> {
        let contender = |implementation| async move {
            BenchResult::Ok(Self::Contender(Arc::new(
                Contender::connect(implementation, url, spin).await?,
            )))
        };
        Ok(match subject {
            CpuSubject::Lock => contender(Implementation::Ours).await?,
            CpuSubject::FairLock => contender(Implementation::Fair).await?,
            // Uncontended, the spin lock is `SET NX PX` + compare-and-delete and never sleeps.
            CpuSubject::SetNx => contender(Implementation::SpinFixed).await?,
            CpuSubject::ReadLock => Self::Read(spin.client_runtime.connect(url).await?),
            CpuSubject::WriteLock => Self::Write(spin.client_runtime.connect(url).await?),
            CpuSubject::Semaphore => Self::Semaphore(spin.client_runtime.connect(url).await?),
            CpuSubject::RedissonReference => {
                Self::Reference(RedissonReference::connect(url, &format!("{run}-client")).await?)
            }
        })
    }

    /// Sets up `names` before anything is measured: a semaphore's permits.
    async fn prepare(&self, names: &[String]) -> BenchResult<()> {
        if let Self::Semaphore(client) = self {
            for name in names {
                client.semaphore(name.as_str()).try_set_permits(1).await?;
            }
        }
        Ok(())
    }

    /// One acquire + release of `name` by task `task`.
    async fn pair(&self, task: usize, name: &str) -> BenchResult<()> {
        match self {
            Self::Contender(_) => Err("a contender runs through `measure_contender`".into()),
            Self::Read(client) => Ok(client
                .read_write_lock(name)
                .read()
                .acquire()
                .await?
                .unlock()
                .await?),
            Self::Write(client) => Ok(client
                .read_write_lock(name)
                .write()
                .acquire()
                .await?
                .unlock()
                .await?),
            Self::Semaphore(client) => {
                Ok(client.semaphore(name).acquire(1).await?.release().await?)
            }
            Self::Reference(reference) => {
                let owner = reference.owner(task);
                reference.acquire(name, &owner).await?;
                reference.release(name, &owner).await
            }
        }
    }

    /// Runs one task per name for `duration`, each acquiring and releasing its name in a loop;
    /// returns the pairs done.
    async fn run(
        self: &Arc<Self>,
        names: &Arc<Vec<String>>,
        duration: Duration,
    ) -> BenchResult<u64> {
        if let Self::Contender(contender) = &**self {
            return measure_contender(contender, names, duration).await;
        }
        let deadline = Instant::now() + duration;
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..names.len() {
            let (driver, names, done) = (Arc::clone(self), Arc::clone(names), Arc::clone(&done));
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    driver.pair(task, &names[task]).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), crate::BenchError>(())
            });
        }
        while let Some(finished) = tasks.join_next().await {
            finished??;
        }
        Ok(done.load(Ordering::Relaxed))
    }
}

/// One series: a subject's tasks, or its scripts pipelined.
enum Series {
    Tasks {
        subject: CpuSubject,
        driver: Arc<Driver>,
        names: Arc<Vec<String>>,
    },
    Pipelined(CpuSubject, Protocol),
}

impl Series {
    fn subject(&self) -> CpuSubject {
        match self {
            Series::Tasks { subject, .. } | Series::Pipelined(subject, _) => *subject,
        }
    }

    async fn run(&self, pipelines: &Pipelines, duration: Duration) -> BenchResult<u64> {
        match self {
            Series::Tasks { driver, names, .. } => driver.run(names, duration).await,
            Series::Pipelined(_, protocol) => pipelines.measure(*protocol, duration).await,
        }
    }
}

/// What Redis did during a series' slices, summed over the rounds.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    pairs: u64,
    seconds: f64,
    cpu_seconds: f64,
    command_usec: u64,
    client_calls: u64,
    executed_calls: u64,
}

impl Tally {
    fn series(self, subject: CpuSubject, pipelined: bool) -> CpuSeries {
        let pairs = self.pairs.max(1) as f64;
        CpuSeries {
            subject,
            pipelined,
            pairs: self.pairs,
            seconds: self.seconds,
            pairs_per_s: self.pairs as f64 / self.seconds.max(1e-9),
            cpu_us_per_pair: self.cpu_seconds * 1e6 / pairs,
            command_us_per_pair: self.command_usec as f64 / pairs,
            client_commands_per_pair: self.client_calls as f64 / pairs,
            executed_commands_per_pair: self.executed_calls as f64 / pairs,
        }
    }
}

/// Runs `series` for `duration` and adds what Redis did meanwhile to `tally`.
async fn measure_slice(
    admin: &mut Admin,
    series: &Series,
    pipelines: &Pipelines,
    duration: Duration,
    tally: &mut Tally,
) -> BenchResult<()> {
    let cpu_before = admin.cpu_seconds().await?;
    admin.reset_stats().await?;
    let started = Instant::now();
    let pairs = series.run(pipelines, duration).await?;
    let seconds = started.elapsed().as_secs_f64();
    let info = admin.info("commandstats").await?;
    let cpu_after = admin.cpu_seconds().await?;
    super::unlink_memos(admin).await?;
    let calls = lock_tests::command_stats(&info, "calls");
    let usec = lock_tests::command_stats(&info, "usec");
    let client = client_commands(series.subject());
    let counted = |name: &String| !HARNESS_COMMANDS.contains(&name.as_str());
    tally.pairs += pairs;
    tally.seconds += seconds;
    tally.cpu_seconds += cpu_after - cpu_before;
    tally.command_usec += usec
        .iter()
        .filter(|(name, _)| client.contains(&name.as_str()))
        .map(|(_, usec)| usec)
        .sum::<u64>();
    tally.client_calls += calls
        .iter()
        .filter(|(name, _)| client.contains(&name.as_str()))
        .map(|(_, calls)| calls)
        .sum::<u64>();
    tally.executed_calls += calls
        .iter()
        .filter(|(name, _)| counted(name))
        .map(|(_, calls)| calls)
        .sum::<u64>();
    Ok(())
}

/// Runs scenario 8 on the Redis at `url`, or on one started for it when `url` is `None`.
///
/// # Errors
///
/// When Redis or a subject fails.
pub async fn run(
    url: Option<&str>,
    spin: &ContenderSettings,
    params: RedisCpuParams,
    progress: &Progress,
) -> BenchResult<RedisCpuResult> {
    let server = match url {
        Some(_) => None,
        None => {
            progress.note("starting a redis-server for this scenario alone (lock-tests kit)");
            Some(tokio::task::spawn_blocking(lock_tests::RedisServer::start).await?)
        }
    };
    let url = match (url, &server) {
        (Some(url), _) => url.to_owned(),
        (None, Some(server)) => server.url(),
        (None, None) => unreachable!("a server was started"),
    };
    let result = measure(&url, spin, params, progress, server.is_some()).await;
    if let Some(server) = server {
        tokio::task::spawn_blocking(move || drop(server)).await?;
    }
    result
}

async fn measure(
    url: &str,
    spin: &ContenderSettings,
    params: RedisCpuParams,
    progress: &Progress,
    fresh_redis: bool,
) -> BenchResult<RedisCpuResult> {
    let mut admin = Admin::connect(url).await?;
    let pipelines =
        Pipelines::connect(url, params.pipeline_connections, params.pipeline_depth).await?;
    let run = unique_name("redis-cpu");
    let mut series = Vec::new();
    for subject in CpuSubject::ALL {
        let driver = Driver::connect(subject, url, spin, &run).await?;
        let names: Vec<String> = (0..params.tasks)
            .map(|task| format!("{run}-{subject:?}-{task}"))
            .collect();
        driver.prepare(&names).await?;
        series.push(Series::Tasks {
            subject,
            driver: Arc::new(driver),
            names: Arc::new(names),
        });
    }
    for subject in CpuSubject::ALL {
        if let Some(protocol) = protocol(subject) {
            series.push(Series::Pipelined(subject, protocol));
        }
    }

    let rounds = params.rounds.max(1);
    let slice = Duration::from_secs_f64(params.seconds / f64::from(rounds));
    // A short unmeasured pass first: connections warm, scripts cached, keys of each name made.
    let warm_up = Duration::from_millis(100).min(slice);
    for one in &series {
        one.run(&pipelines, warm_up).await?;
    }
    let mut tallies = vec![Tally::default(); series.len()];
    for round in 0..rounds as usize {
        for offset in 0..series.len() {
            let index = (round + offset) % series.len();
            measure_slice(
                &mut admin,
                &series[index],
                &pipelines,
                slice,
                &mut tallies[index],
            )
            .await?;
        }
    }

    let measured: Vec<CpuSeries> = series
        .iter()
        .zip(&tallies)
        .map(|(one, tally)| tally.series(one.subject(), matches!(one, Series::Pipelined(..))))
        .collect();
    let result = RedisCpuResult {
        tasks: params.tasks,
        seconds_per_series: params.seconds,
        rounds,
        pipeline: format!(
            "{} connections × {} pairs per pipeline",
            params.pipeline_connections, params.pipeline_depth
        ),
        fresh_redis,
        series: measured,
    };
    for one in &result.series {
        let ratio = result
            .ratio(one, |s| s.cpu_us_per_pair)
            .map_or_else(String::new, |ratio| format!(" ({ratio:.2}× the reference)"));
        progress.note(&format!(
            "{}{}: Redis CPU {:.1} µs per pair{ratio}, {}",
            one.subject,
            if one.pipelined { ", pipelined" } else { "" },
            one.cpu_us_per_pair,
            fmt_rate(one.pairs_per_s)
        ));
    }
    Ok(result)
}
