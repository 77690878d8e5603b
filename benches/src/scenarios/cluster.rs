//! Scenario 7: uncontended throughput on Redis Cluster, with one master and with three.
//!
//! The same workload as scenario 2 (tasks of one process, each on a lock name of its own,
//! acquiring and releasing in a loop) through one `LockClient` built with `.cluster([...])`,
//! against a cluster of one master and then of three, each started by the `lock-tests` kit.
//! Lock names spread over the slots, so with three masters each serves about a third of the
//! scripts: the throughput should grow with the masters, as far as the machine's CPUs allow
//! (every Redis process, and the benchmark, share them).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use lock_runtime::LockClient;
use lock_tests::{RedisCluster, unique_name};

use super::throughput::measure_contender;
use crate::{
    BenchResult,
    contenders::Contender,
    progress::Progress,
    results::{ClusterResult, ClusterSeries},
    util::fmt_rate,
};

/// Sizes of scenario 7.
#[derive(Debug, Clone)]
pub struct ClusterParams {
    /// Tasks, each on its own name.
    pub tasks: usize,
    /// Seconds measured per cluster.
    pub seconds: f64,
    /// The clusters measured, by number of masters.
    pub masters: Vec<usize>,
}

/// Runs scenario 7.
///
/// # Errors
///
/// When a cluster cannot be reached or a lock fails.
pub async fn run(params: &ClusterParams, progress: &Progress) -> BenchResult<ClusterResult> {
    let mut series = Vec::new();
    for &masters in &params.masters {
        progress.note(&format!("starting a Redis Cluster of {masters} master(s)"));
        let cluster = tokio::task::spawn_blocking(move || RedisCluster::start(masters)).await?;
        let client = LockClient::builder()
            .cluster(cluster.urls())
            .build()
            .await?;
        let contender = Arc::new(Contender::ours_on(client).await?);
        let run = unique_name(&format!("cluster-{masters}"));
        let names = Arc::new((0..params.tasks).map(|i| format!("{run}-{i}")).collect());
        measure_contender(&contender, &names, Duration::from_millis(200)).await?;
        let started = Instant::now();
        let measured = Duration::from_secs_f64(params.seconds);
        let acquisitions = measure_contender(&contender, &names, measured).await?;
        let seconds = started.elapsed().as_secs_f64();
        let per_s = acquisitions as f64 / seconds.max(1e-9);
        progress.note(&format!("{masters} master(s): {}", fmt_rate(per_s)));
        series.push(ClusterSeries {
            masters,
            acquisitions,
            seconds,
            per_s,
        });
        drop(contender);
        tokio::task::spawn_blocking(move || drop(cluster)).await?;
    }
    Ok(ClusterResult {
        tasks: params.tasks,
        seconds_per_series: params.seconds,
        series,
    })
}
