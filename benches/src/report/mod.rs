//! The report: `REPORT.md` with its SVG plots, and `SUMMARY.md`. The targets, met or not, every
//! figure with its reference, and how each was measured.
//!
//! Each section of `REPORT.md` is written by a module of its own, the plots by [`plots`], the
//! verdicts by [`evaluate_targets`] against the [`thresholds`]; this module puts the sections in
//! order.

mod analysis;
mod cluster;
mod evaluate;
mod footprint;
mod handoff;
mod header;
mod latency;
mod load;
mod machine;
mod markdown;
mod method;
mod observations;
mod peers;
mod redis_cpu;
mod summary;
mod targets;
mod throughput;

pub mod plots;
pub mod thresholds;

pub use evaluate::evaluate_targets;
pub use summary::render_summary;

use crate::results::Results;

/// Renders `REPORT.md`.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    header::render(&mut out, &results.meta);
    machine::render(&mut out, &results.meta);
    targets::render(&mut out, &results.targets);
    analysis::render(&mut out, results);
    observations::render(&mut out, results);
    if let Some(latency) = &results.latency {
        latency::render(&mut out, latency);
    }
    if let Some(throughput) = &results.throughput {
        throughput::render(&mut out, throughput);
    }
    if let Some(contention) = &results.contention {
        handoff::render(&mut out, contention, results.latency.as_ref());
        load::render(&mut out, contention);
        peers::render(&mut out, contention, &results.meta.spin);
    }
    if let Some(footprint) = &results.footprint {
        footprint::render(&mut out, footprint);
    }
    if let Some(cluster) = &results.cluster {
        cluster::render(&mut out, cluster);
    }
    if let Some(redis_cpu) = &results.redis_cpu {
        redis_cpu::render(&mut out, redis_cpu);
    }
    method::render(&mut out, results);
    out
}
