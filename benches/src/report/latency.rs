//! Section 1 of `REPORT.md`: uncontended latency, every series against the two-round-trip floor,
//! and the floor of a hand-off through pub/sub.

use std::fmt::Write as _;

use super::{markdown::table_header, plots::LATENCY_SVG};
use crate::{
    results::{LatencyResult, Percentiles, WorkerLatency},
    scenarios::latency::REFERENCE_LABEL,
    util::{fmt_ns, group_thousands},
};

/// Writes section 1.
pub(super) fn render(out: &mut String, latency: &LatencyResult) {
    let _ = writeln!(out, "## 1. Uncontended latency\n");
    let _ = writeln!(
        out,
        "One task acquires and releases a lock nobody else wants, {} times per series, the \
         series interleaved one operation at a time. The floor is two sequential `EVALSHA` calls of `return 1` on one \
         multiplexed redis-rs connection from the same runtime: two round trips, the least any \
         lock needing one request to acquire and one to release can cost. `{}` is the \
         Redisson-style reference of section 8 through a plain redis-rs connection: the same two \
         round trips, with Redis running a lock's scripts instead of `return 1`.\n",
        group_thousands(latency.iterations as f64),
        REFERENCE_LABEL
    );
    table_header(
        out,
        &[
            "",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "p50 vs floor",
            "Redis time per op",
        ],
    );
    for series in std::iter::once(&latency.floor)
        .chain(&latency.reference)
        .chain(&latency.series)
    {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}× | {:.1} µs |",
            series.label,
            percentile_cells(&series.latency),
            latency.p50_over_floor(series),
            series.redis_us_per_op
        );
    }
    let _ = writeln!(
        out,
        "\n*Redis time per op* is what Redis itself spent executing the series' commands \
         (`usec` of `INFO commandstats`, scripts included) in a separate pass of {} \
         iterations: the part of the latency no client can remove.\n",
        group_thousands(latency.calibration as f64)
    );
    if let Some(worker) = &latency.from_worker {
        from_worker(out, worker);
    }
    if let Some(delivery) = &latency.pubsub_delivery {
        pubsub_floor(out, latency, delivery);
    }
    let _ = writeln!(out, "![Uncontended latency distribution]({LATENCY_SVG})\n");
}

/// The cells of a latency row both tables share: p50, p90, p99, p99.9 and max.
fn percentile_cells(l: &Percentiles) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        fmt_ns(l.p50_ns as f64),
        fmt_ns(l.p90_ns as f64),
        fmt_ns(l.p99_ns as f64),
        fmt_ns(l.p999_ns as f64),
        fmt_ns(l.max_ns as f64)
    )
}

/// The pass from a worker task, and what separates it from the one above.
fn from_worker(out: &mut String, worker: &WorkerLatency) {
    let _ = writeln!(
        out,
        "**From a task on the runtime's workers.** The series above run on the thread that \
         blocks on the benchmark's runtime, where every reply crosses to it from the thread \
         that read it, whoever reads it. A service's handlers run as tasks on the runtime's \
         worker threads instead, where a connection driven on the same runtime hands the reply \
         to the waiting task without waking another thread. The same interleaved measurement \
         from such a task, `ours` once with its client on the library's own thread (the \
         default) and once on the application's runtime (`background_runtime`):\n"
    );
    table_header(
        out,
        &["", "p50", "p90", "p99", "p99.9", "max", "p50 vs floor"],
    );
    for series in &worker.series {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}× |",
            series.label,
            percentile_cells(&series.latency),
            worker.p50_over_floor(series)
        );
    }
    let _ = writeln!(
        out,
        "\nOn the library's thread, each request wakes that thread and each reply wakes the \
         caller's: two wake-ups per request that the floor and the reference do not pay here.\n"
    );
}

/// The floor of a pub/sub hand-off, and what it measures.
fn pubsub_floor(out: &mut String, latency: &LatencyResult, delivery: &Percentiles) {
    let round_trip = latency.round_trip_ns();
    let _ = writeln!(
        out,
        "**Floor of a pub/sub hand-off: p50 {} / p99 {}, the p50 {:.2} round trips of {}.** \
         {} `EVALSHA` calls one after the other, of a script that only publishes, each timed \
         from its sending to a plain redis-rs subscriber receiving the message on another OS \
         thread of this process (with its own current-thread Tokio runtime, as lock-runtime's \
         listener has its background runtime): the release reaching Redis and the message coming \
         back out, with one thread woken. No hand-off through pub/sub costs less; a lock's \
         waiter adds the wake-up of its task on the application's runtime (section 3).\n",
        fmt_ns(delivery.p50_ns as f64),
        fmt_ns(delivery.p99_ns as f64),
        delivery.p50_ns as f64 / round_trip,
        fmt_ns(round_trip),
        group_thousands(delivery.count as f64)
    );
    if let Some(idle) = &latency.pubsub_delivery_idle {
        let _ = writeln!(
            out,
            "**After idling: p50 {} / p99 {}, the p50 {:.2} round trips.** The same deliveries, \
             {} of them, each after a pause of {} µs, as long as the critical section of \
             scenario 3: a contended hand-off's release comes after the holder's critical \
             section, through which Redis and the threads on the path sleep, and wake for it. \
             Each wake-up of a sleeping thread (and of the CPU it runs on, on a virtual machine) \
             is paid again here, as in a hand-off.\n",
            fmt_ns(idle.delivery.p50_ns as f64),
            fmt_ns(idle.delivery.p99_ns as f64),
            idle.delivery.p50_ns as f64 / round_trip,
            group_thousands(idle.delivery.count as f64),
            idle.pause_us
        );
    }
}
