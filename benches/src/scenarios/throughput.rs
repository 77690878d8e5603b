//! Scenario 2: uncontended throughput over many names against Redis's pipelined ceiling.
//!
//! Many tasks of one process, each on a lock name of its own, acquire and release in a loop for
//! a fixed time. The reference is what Redis itself can do with the same two commands when a
//! client sends them as fast as it can: acquire + release pairs sent in deep pipelines over a
//! few connections, on fresh names. For `ours` the pairs are our own `acquire.lua` and
//! `release.lua` (the same files the runtime compiles in, same keys and arguments); for the spin
//! lock and rslock they are `SET NX PX` and the compare-and-delete script. Series and ceilings
//! are interleaved in rounds. The release memos a slice wrote are deleted after it, outside the
//! measured time (see `unlink_memos`): each series pays for writing its own, none for another's
//! expiring.
//!
//! The fair lock is not in this scenario: its reference would be the pipelined ceiling of its own
//! scripts, and lock-runtime builds pipelined calls only of the reentrant lock's
//! (`testing::scripts::pipe_acquire`). Uncontended, its path is one script each way, as ours;
//! scenario 1 measures it against the two-round-trip floor.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::aio::MultiplexedConnection;

use lock_runtime::testing::scripts;
use lock_tests::unique_name;

use crate::{
    BenchResult,
    contenders::{Contender, ContenderSettings, Implementation, LEASE, multiplexed_connection},
    progress::Progress,
    redis_stats::Admin,
    redisson,
    results::{Ceiling, ThroughputResult, ThroughputSeries},
    util::fmt_rate,
};

/// The client name the ceiling's acquisitions record, as a lock's record its client's.
const CLIENT_NAME: &str = "lock-bench";

/// The spin lock's (and rslock's) compare-and-delete release.
const COMPARE_AND_DELETE_LUA: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Sizes of scenario 2.
#[derive(Debug, Clone, Copy)]
pub struct ThroughputParams {
    /// Tasks, each on its own name.
    pub tasks: usize,
    /// Seconds measured per series, split into rounds.
    pub seconds: f64,
    /// Rounds.
    pub rounds: u32,
    /// Connections sending pipelines for the ceiling.
    pub pipeline_connections: usize,
    /// Acquire + release pairs per pipeline.
    pub pipeline_depth: usize,
}

/// An acquire + release protocol whose pipelined ceiling is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `EVALSHA acquire.lua` + `EVALSHA release.lua`.
    OurScripts,
    /// `SET NX PX` + `EVALSHA compare-and-delete`.
    SetNx,
    /// The Redisson-style reference's two scripts ([`crate::redisson`]); scenario 8 measures
    /// Redis's CPU per pair of it pipelined.
    Redisson,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::OurScripts => "ours-scripts",
            Protocol::SetNx => "set-nx",
            Protocol::Redisson => "redisson-reference",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Protocol::OurScripts => {
                "FCALL acquire.lua + FCALL release.lua (the runtime's scripts, keys and arguments; \
                 EVALSHA before Redis 7.0)"
            }
            Protocol::SetNx => "SET key token NX PX 30000 + EVALSHA compare-and-delete",
            Protocol::Redisson => {
                "EVALSHA lock.lua + EVALSHA unlock.lua (the Redisson-style reference)"
            }
        }
    }

    /// The protocol whose ceiling `implementation` is measured against; `None` for the fair
    /// lock, whose scripts lock-runtime does not pipeline.
    fn of(implementation: Implementation) -> Option<Self> {
        match implementation {
            Implementation::Ours => Some(Protocol::OurScripts),
            Implementation::Fair => None,
            Implementation::SpinFixed | Implementation::SpinJitter | Implementation::Rslock => {
                Some(Protocol::SetNx)
            }
        }
    }
}

/// Connections, and the hashes of the compare-and-delete script and of the Redisson-style
/// reference's scripts, for the pipelined ceilings. Our scripts are loaded too; their calls name
/// them by hash.
pub(crate) struct Pipelines {
    connections: Vec<MultiplexedConnection>,
    compare_and_delete_sha: String,
    redisson: redisson::Loaded,
    /// How our scripts go out: as a client of the runtime sends them to this server.
    calls: scripts::Pipelined,
    depth: usize,
    run: String,
    /// Numbers the rounds, so that no two pairs of the run share an owner id: a release's memo
    /// outlives its round, and a later release under the same request id would only replay it,
    /// leaving the lock held and every later acquire measuring the refused path.
    rounds: AtomicU64,
}

impl Pipelines {
    pub(crate) async fn connect(url: &str, connections: usize, depth: usize) -> BenchResult<Self> {
        let mut opened = Vec::new();
        for _ in 0..connections.max(1) {
            opened.push(multiplexed_connection(url).await?);
        }
        let load = |code: &'static str| {
            let mut connection = opened[0].clone();
            async move {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(code)
                    .query_async::<String>(&mut connection)
                    .await
            }
        };
        // Our scripts go out as a client of the runtime sends them to this server.
        let calls = scripts::Pipelined::for_version(server_version(&opened[0]).await?);
        for command in calls.load_commands() {
            let loaded: redis::RedisResult<redis::Value> =
                command.query_async(&mut opened[0].clone()).await;
            match loaded {
                Err(err) if !err.to_string().contains("already exists") => return Err(err.into()),
                _ => {}
            }
        }
        Ok(Self {
            compare_and_delete_sha: load(COMPARE_AND_DELETE_LUA).await?,
            redisson: redisson::Loaded::load(&opened[0]).await?,
            calls,
            connections: opened,
            depth: depth.max(1),
            run: unique_name("ceiling"),
            rounds: AtomicU64::new(0),
        })
    }

    /// Sends pipelines of `protocol` pairs on every connection for `duration`; returns pairs done.
    pub(crate) async fn measure(&self, protocol: Protocol, duration: Duration) -> BenchResult<u64> {
        let deadline = Instant::now() + duration;
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        let mut tasks = tokio::task::JoinSet::new();
        for (index, connection) in self.connections.iter().enumerate() {
            let mut connection = connection.clone();
            let names: Vec<String> = (0..self.depth)
                .map(|slot| format!("{}-{index}-{slot}", self.run))
                .collect();
            let cad = self.compare_and_delete_sha.clone();
            let reference = self.redisson.clone();
            let calls = self.calls.clone();
            let lease_ms = LEASE.as_millis() as u64;
            tasks.spawn(async move {
                let mut pairs = 0u64;
                let mut sequence = 0u64;
                while Instant::now() < deadline {
                    let mut pipe = redis::pipe();
                    for name in &names {
                        sequence += 1;
                        let owner = format!("ceiling:{round}:{index}:{sequence}");
                        match protocol {
                            Protocol::OurScripts => {
                                // Built by the runtime itself, byte for byte what a lock sends.
                                scripts::pipe_acquire(
                                    &mut pipe,
                                    &calls,
                                    "lock",
                                    name,
                                    &owner,
                                    LEASE,
                                    CLIENT_NAME,
                                )?;
                                scripts::pipe_release(&mut pipe, &calls, "lock", name, &owner)?;
                            }
                            Protocol::SetNx => {
                                let key = format!("spin:{name}");
                                pipe.cmd("SET")
                                    .arg(&key)
                                    .arg(&owner)
                                    .arg("NX")
                                    .arg("PX")
                                    .arg(lease_ms);
                                pipe.cmd("EVALSHA").arg(&cad).arg(1).arg(&key).arg(&owner);
                            }
                            Protocol::Redisson => {
                                let key = format!("redisson:{name}");
                                pipe.add_command(redisson::lock_call(
                                    &reference.lock_sha,
                                    &key,
                                    &owner,
                                ));
                                // Every pair is a request of its own: its owner names it.
                                pipe.add_command(redisson::unlock_call(
                                    &reference.unlock_sha,
                                    &key,
                                    &owner,
                                    &owner,
                                ));
                            }
                        }
                    }
                    let replies: Vec<redis::Value> = pipe.query_async(&mut connection).await?;
                    if let Some(error) = replies
                        .iter()
                        .find(|reply| matches!(reply, redis::Value::ServerError(_)))
                    {
                        return Err(format!("pipelined ceiling: {error:?}").into());
                    }
                    pairs += names.len() as u64;
                }
                Ok::<u64, crate::BenchError>(pairs)
            });
        }
        let mut pairs = 0;
        while let Some(done) = tasks.join_next().await {
            pairs += done??;
        }
        Ok(pairs)
    }
}

/// Runs `tasks` tasks of `contender`, each on its own name, for `duration`; returns acquisitions.
pub(crate) async fn measure_contender(
    contender: &Arc<Contender>,
    names: &Arc<Vec<String>>,
    duration: Duration,
) -> BenchResult<u64> {
    let deadline = Instant::now() + duration;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, _) in names.iter().enumerate() {
        let contender = Arc::clone(contender);
        let names = Arc::clone(names);
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            let name = &names[index];
            while Instant::now() < deadline {
                let held = contender.acquire(name).await?;
                contender.release(held).await?;
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

enum Series {
    Ceiling(Protocol),
    Lock {
        contender: Arc<Contender>,
        names: Arc<Vec<String>>,
    },
}

/// Runs scenario 2 for `implementations`.
///
/// # Errors
///
/// When Redis or an implementation fails.
pub async fn run(
    url: &str,
    implementations: &[Implementation],
    spin: &ContenderSettings,
    params: ThroughputParams,
    progress: &Progress,
) -> BenchResult<ThroughputResult> {
    let pipelines =
        Pipelines::connect(url, params.pipeline_connections, params.pipeline_depth).await?;
    let mut series = vec![
        Series::Ceiling(Protocol::OurScripts),
        Series::Ceiling(Protocol::SetNx),
    ];
    for &implementation in implementations {
        if Protocol::of(implementation).is_none() {
            continue;
        }
        let run = unique_name(&format!("throughput-{implementation}"));
        series.push(Series::Lock {
            contender: Arc::new(Contender::connect(implementation, url, spin).await?),
            names: Arc::new((0..params.tasks).map(|i| format!("{run}-{i}")).collect()),
        });
    }
    let rounds = params.rounds.max(1);
    let slice = Duration::from_secs_f64(params.seconds / f64::from(rounds));
    // A short unmeasured pass first: connections warm, scripts cached, allocator settled.
    let warm_up = Duration::from_millis(100).min(slice);
    for one in &series {
        match one {
            Series::Ceiling(protocol) => {
                pipelines.measure(*protocol, warm_up).await?;
            }
            Series::Lock { contender, names } => {
                measure_contender(contender, names, warm_up).await?;
            }
        }
    }
    let mut admin = Admin::connect(url).await?;
    super::unlink_memos(&mut admin).await?;
    let mut counts = vec![0u64; series.len()];
    let mut elapsed = vec![0f64; series.len()];
    for round in 0..rounds as usize {
        for offset in 0..series.len() {
            let index = (round + offset) % series.len();
            let start = Instant::now();
            counts[index] += match &series[index] {
                Series::Ceiling(protocol) => pipelines.measure(*protocol, slice).await?,
                Series::Lock { contender, names } => {
                    measure_contender(contender, names, slice).await?
                }
            };
            elapsed[index] += start.elapsed().as_secs_f64();
            super::unlink_memos(&mut admin).await?;
        }
    }

    let rate = |index: usize| counts[index] as f64 / elapsed[index].max(1e-9);
    let ceilings: Vec<Ceiling> = [Protocol::OurScripts, Protocol::SetNx]
        .into_iter()
        .enumerate()
        .map(|(index, protocol)| Ceiling {
            protocol: protocol.name().to_owned(),
            description: protocol.description().to_owned(),
            pairs_per_s: rate(index),
        })
        .collect();
    let mut results = Vec::new();
    for (index, one) in series.iter().enumerate() {
        let Series::Lock { contender, .. } = one else {
            continue;
        };
        let implementation = contender.implementation();
        let Some(protocol) = Protocol::of(implementation) else {
            continue;
        };
        let ceiling = ceilings
            .iter()
            .find(|ceiling| ceiling.protocol == protocol.name())
            .map_or(f64::NAN, |ceiling| ceiling.pairs_per_s);
        results.push(ThroughputSeries {
            implementation,
            acquisitions: counts[index],
            seconds: elapsed[index],
            per_s: rate(index),
            ceiling_protocol: protocol.name().to_owned(),
            of_ceiling: rate(index) / ceiling,
        });
    }
    let mut line = format!(
        "ceiling (our scripts) {}, ceiling (SET NX) {}",
        fmt_rate(ceilings[0].pairs_per_s),
        fmt_rate(ceilings[1].pairs_per_s)
    );
    for one in &results {
        line += &format!(
            ", {} {} ({:.0} %)",
            one.implementation,
            fmt_rate(one.per_s),
            one.of_ceiling * 100.0
        );
    }
    progress.note(&line);
    Ok(ThroughputResult {
        tasks: params.tasks,
        seconds_per_series: params.seconds,
        rounds,
        pipeline: format!(
            "{} connections × {} pairs per pipeline",
            params.pipeline_connections, params.pipeline_depth
        ),
        ceilings,
        series: results,
    })
}

/// The `(major, minor)` version of the Redis behind `connection`, as `INFO server` says.
async fn server_version(connection: &MultiplexedConnection) -> BenchResult<(u32, u32)> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection.clone())
        .await?;
    let version = lock_tests::info_value(&info, "redis_version").unwrap_or_default();
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(format!("INFO server names no redis_version: {version:?}").into()),
    }
}
