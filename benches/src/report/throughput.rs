//! Section 2 of `REPORT.md`: uncontended throughput, every implementation against Redis's
//! pipelined ceiling.

use std::fmt::Write as _;

use super::markdown::table_header;
use crate::{results::ThroughputResult, util::fmt_rate};

/// Writes section 2.
pub(super) fn render(out: &mut String, throughput: &ThroughputResult) {
    let _ = writeln!(out, "## 2. Uncontended throughput\n");
    let _ = writeln!(
        out,
        "{} tasks of one process, each on a lock name of its own, acquire and release for {:.1} s \
         per series ({} interleaved rounds). The ceiling is Redis itself running the same two \
         commands sent pipelined ({}), measured in the same run. The release memos a slice wrote \
         are deleted after it, outside the measured time: every series pays for writing its own, \
         none for another's expiring. The fair lock is not in this scenario: lock-runtime \
         pipelines only the reentrant lock's scripts, so its own ceiling \
         cannot be measured the same way (scenario 1 has it against the floor).\n",
        throughput.tasks, throughput.seconds_per_series, throughput.rounds, throughput.pipeline
    );
    table_header(out, &["Ceiling", "what is sent", "pairs/s"]);
    for ceiling in &throughput.ceilings {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            ceiling.protocol,
            ceiling.description,
            fmt_rate(ceiling.pairs_per_s)
        );
    }
    let _ = writeln!(out);
    table_header(out, &["", "acquisitions/s", "of its ceiling"]);
    for series in &throughput.series {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} % of {} |",
            series.implementation,
            fmt_rate(series.per_s),
            series.of_ceiling * 100.0,
            series.ceiling_protocol
        );
    }
    let _ = writeln!(out);
}
