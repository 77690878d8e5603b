//! Scenario 1: uncontended acquire + release latency against the two-round-trip floor.
//!
//! One task acquires a lock nobody else wants and releases it, in a loop. The reference is the
//! physical floor of any lock that takes one request to acquire and one to release: two
//! sequential `EVALSHA` calls of the trivial script `return 1` on one multiplexed connection,
//! from the same process and runtime. The series are interleaved one operation at a time (floor,
//! ours, peers, the order rotated every iteration) so that a noisy moment of the machine hits
//! them all alike.

use std::time::Instant;

use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;

use crate::{
    BenchResult,
    contenders::{Contender, Implementation, SpinSettings, multiplexed_connection},
    progress::Progress,
    redis_stats::{Admin, client_usec},
    results::{LatencyResult, LatencySeries, Percentiles, log_buckets, new_histogram, record},
    util::{Rng, fmt_ns, unique_name},
};

/// Sizes of scenario 1.
#[derive(Debug, Clone, Copy)]
pub struct LatencyParams {
    /// Measured iterations per series.
    pub iterations: u64,
    /// Unmeasured iterations per series first.
    pub warm_up: u64,
    /// Iterations per series of the pass that reads Redis's own time per operation.
    pub calibration: u64,
}

/// Two sequential round trips of a trivial script: the floor of an acquire + release.
pub struct Floor {
    connection: MultiplexedConnection,
    sha: String,
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor")
            .field("sha", &self.sha)
            .finish_non_exhaustive()
    }
}

impl Floor {
    /// Connects and loads the script `return 1`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn connect(url: &str) -> BenchResult<Self> {
        let mut connection = multiplexed_connection(url).await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg("return 1")
            .query_async(&mut connection)
            .await?;
        Ok(Self { connection, sha })
    }

    /// Two sequential `EVALSHA` calls.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn two_round_trips(&mut self) -> BenchResult<()> {
        for _ in 0..2 {
            let _: i64 = redis::cmd("EVALSHA")
                .arg(&self.sha)
                .arg(0)
                .query_async(&mut self.connection)
                .await?;
        }
        Ok(())
    }
}

enum Series {
    Floor(Floor),
    Lock { contender: Contender, name: String },
}

impl Series {
    async fn once(&mut self, rng: &mut Rng) -> BenchResult<()> {
        match self {
            Series::Floor(floor) => floor.two_round_trips().await,
            Series::Lock { contender, name } => {
                let held = contender.acquire(name, rng).await?;
                contender.release(held).await
            }
        }
    }
}

/// Runs scenario 1 for `implementations`.
///
/// # Errors
///
/// When Redis or an implementation fails.
pub async fn run(
    url: &str,
    implementations: &[Implementation],
    spin: &SpinSettings,
    params: LatencyParams,
    progress: &Progress,
) -> BenchResult<LatencyResult> {
    let mut series = vec![Series::Floor(Floor::connect(url).await?)];
    for &implementation in implementations {
        series.push(Series::Lock {
            contender: Contender::connect(implementation, url, spin).await?,
            name: unique_name(&format!("latency-{implementation}")),
        });
    }
    let mut rng = Rng::new(1);
    for one in &mut series {
        for _ in 0..params.warm_up {
            one.once(&mut rng).await?;
        }
    }
    let mut histograms: Vec<Histogram<u64>> = series.iter().map(|_| new_histogram()).collect();
    // Interleave at the finest grain: one operation of each series in turn, the order rotated
    // every time, so that a noisy moment of the machine hits every series alike.
    for iteration in 0..params.iterations as usize {
        for offset in 0..series.len() {
            let index = (iteration + offset) % series.len();
            let start = Instant::now();
            series[index].once(&mut rng).await?;
            let elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            record(&mut histograms[index], elapsed);
        }
    }

    // Redis's own time per operation: each series alone between RESETSTAT and INFO.
    let mut admin = Admin::connect(url).await?;
    let mut redis_us = Vec::new();
    for one in &mut series {
        admin.reset_stats().await?;
        for _ in 0..params.calibration {
            one.once(&mut rng).await?;
        }
        let usec = admin.command_usec().await?;
        let implementation = match one {
            Series::Floor(_) => None,
            Series::Lock { contender, .. } => Some(contender.implementation()),
        };
        redis_us.push(client_usec(&usec, implementation) as f64 / params.calibration.max(1) as f64);
    }

    let mut all =
        series
            .iter()
            .zip(&histograms)
            .zip(redis_us)
            .map(|((one, histogram), redis_us_per_op)| {
                let (label, implementation) = match one {
                    Series::Floor(_) => ("floor".to_owned(), None),
                    Series::Lock { contender, .. } => (
                        contender.implementation().name().to_owned(),
                        Some(contender.implementation()),
                    ),
                };
                let latency = Percentiles::of(histogram).ok_or("no latency sample was recorded")?;
                Ok::<_, crate::BenchError>(LatencySeries {
                    label,
                    implementation,
                    latency,
                    redis_us_per_op,
                    buckets: log_buckets(histogram, 10_000, 1.03),
                })
            });
    let floor = all.next().ok_or("no floor series")??;
    let series: Vec<LatencySeries> = all.collect::<Result<_, _>>()?;
    let result = LatencyResult {
        iterations: params.iterations,
        calibration: params.calibration,
        floor,
        series,
    };
    let mut line = format!("floor p50 {}", fmt_ns(result.floor.latency.p50_ns as f64));
    for one in &result.series {
        line += &format!(
            ", {} p50 {} ({:.2}×)",
            one.label,
            fmt_ns(one.latency.p50_ns as f64),
            result.p50_over_floor(one)
        );
    }
    progress.note(&line);
    Ok(result)
}
