//! Section 7 of `REPORT.md`: uncontended throughput on Redis Cluster, by number of masters.

use std::fmt::Write as _;

use super::markdown::table_header;
use crate::{results::ClusterResult, util::fmt_rate};

/// Writes section 7.
pub(super) fn render(out: &mut String, cluster: &ClusterResult) {
    let _ = writeln!(out, "## 7. Redis Cluster\n");
    let _ = writeln!(
        out,
        "{} tasks of one process, each on a lock name of its own, acquire and release for {:.1} s \
         through one client built with `.cluster([...])`, against a cluster of each size started \
         for the run (the kit's, every node on this machine). Names spread over the slots, so \
         each master serves its share of the scripts; every Redis process and the benchmark share \
         the machine's CPUs, which bounds how far more masters can help here.\n",
        cluster.tasks, cluster.seconds_per_series
    );
    table_header(out, &["masters", "acquisitions/s"]);
    for series in &cluster.series {
        let _ = writeln!(out, "| {} | {} |", series.masters, fmt_rate(series.per_s));
    }
    if let Some((fewest, most, ratio)) = cluster.scaling() {
        let _ = writeln!(
            out,
            "\n{most} masters do {ratio:.2}× the acquisitions per second of {fewest}."
        );
    }
    let _ = writeln!(out);
}
