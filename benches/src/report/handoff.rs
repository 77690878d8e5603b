//! Section 3 of `REPORT.md`: contended hand-off latency, acquisitions per second and the time
//! callers wait, for every implementation against the number of waiters.

use std::fmt::Write as _;

use super::{
    markdown::{WaiterTable, p},
    plots::HANDOFF_SVG,
};
use crate::{
    results::{ContentionResult, LatencyResult},
    util::{fmt_ns, fmt_rate, group_thousands},
};

/// Writes section 3; `latency`, when measured, gives the round trip the hand-offs compare with.
pub(super) fn render(
    out: &mut String,
    contention: &ContentionResult,
    latency: Option<&LatencyResult>,
) {
    let table = WaiterTable::new(contention);
    let _ = writeln!(out, "## 3. Contended hand-off\n");
    let _ = writeln!(
        out,
        "`waiters + 1` tasks contend for one name, spread over {} OS processes (fewer when there \
         are fewer tasks), one client per process. Each task loops for {} s: acquire, critical \
         section{}, release, then {} µs before it asks again. Hand-off latency runs from the holder \
         starting its release to the next holder's acquire returning, both read from \
         `CLOCK_MONOTONIC` in their own processes; only acquisitions by a task that was already \
         waiting when the release started count (see *Method*).\n",
        contention.processes,
        contention.seconds_per_point,
        if contention.hold_us == 0 {
            String::new()
        } else {
            format!(
                " ({} µs asked of Tokio's timer, which rounds up to its 1 ms tick: a stand-in for \
                 the work a lock protects)",
                contention.hold_us
            )
        },
        contention.think_us
    );
    let holds: Vec<f64> = contention.points.iter().map(|p| p.mean_hold_ns).collect();
    if !holds.is_empty() {
        let _ = writeln!(
            out,
            "Holders kept the lock {} to {} on average (the critical section as measured).",
            fmt_ns(holds.iter().copied().fold(f64::MAX, f64::min)),
            fmt_ns(holds.iter().copied().fold(0.0, f64::max))
        );
    }
    if let Some(latency) = latency {
        let _ = writeln!(
            out,
            "One round trip on this machine (half the floor's p50): {}.",
            fmt_ns(latency.round_trip_ns())
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "**Hand-off latency, p50 / p99** (hand-offs measured)\n"
    );
    table.write(out, &|point| match point.handoff {
        Some(h) => format!(
            "{} / {} ({})",
            fmt_ns(h.p50_ns as f64),
            fmt_ns(h.p99_ns as f64),
            group_thousands(h.count as f64)
        ),
        None => "no hand-off".to_owned(),
    });
    let _ = writeln!(
        out,
        "\n![Hand-off latency against waiters]({HANDOFF_SVG})\n"
    );
    let _ = writeln!(
        out,
        "**Acquisitions per second**, and in brackets the tasks inside `acquire` on average \
         (Little's law: time waited by the acquisitions completed in the window / window; a \
         lower bound, since waits still running at the end are not counted)\n"
    );
    table.write(out, &|point| {
        format!("{} ({:.1})", fmt_rate(point.per_s), point.mean_waiting)
    });
    let _ = writeln!(
        out,
        "\n**Time inside `acquire`, p50 / p99** (every acquisition: how long a caller waits)\n"
    );
    table.write(out, &|point| {
        format!(
            "{} / {}",
            p(point.wait, |w| w.p50_ns),
            p(point.wait, |w| w.p99_ns)
        )
    });
    let violations: u64 = contention.points.iter().map(|p| p.violations).sum();
    let errors: usize = contention.points.iter().map(|p| p.errors.len()).sum();
    let _ = writeln!(
        out,
        "\nMutual exclusion held in every run: {} overlapping critical sections, {} task errors.\n",
        violations, errors
    );
}
