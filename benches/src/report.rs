//! `REPORT.md`: the targets, met or not, every figure with its reference, and how each was
//! measured.

use std::fmt::Write as _;

use crate::{
    contenders::Implementation,
    plots::{COMMANDS_SVG, HANDOFF_SVG, LATENCY_SVG},
    results::{ContentionPoint, ContentionResult, Percentiles, Results, Target},
    util::{fmt_bytes, fmt_ns, fmt_rate, group_thousands},
};

/// The largest spread of the p50 hand-off between 4 and 256 waiters still called flat.
pub const FLAT_SPREAD: f64 = 1.5;

/// Evaluates every target of the issue against `results`.
pub fn evaluate_targets(results: &Results) -> Vec<Target> {
    let mut targets = Vec::new();
    let latency = results.latency.as_ref();
    let ours_latency = latency.and_then(|l| l.series_of(Implementation::Ours));

    // Scenario 1.
    let (measured, met) = match (latency, ours_latency) {
        (Some(latency), Some(ours)) => {
            let ratio = ours.latency.p50_ns as f64 / latency.floor.latency.p50_ns.max(1) as f64;
            (
                format!(
                    "{ratio:.2}× (p50 {} vs floor {})",
                    fmt_ns(ours.latency.p50_ns as f64),
                    fmt_ns(latency.floor.latency.p50_ns as f64)
                ),
                Some(ratio <= 1.15),
            )
        }
        _ => ("not measured".to_owned(), None),
    };
    targets.push(Target {
        scenario: 1,
        target: "uncontended p50 within 1.15× of the two-round-trip floor".into(),
        measured,
        met,
    });

    // Scenario 2.
    let ours_throughput = results.throughput.as_ref().and_then(|t| {
        t.series
            .iter()
            .find(|s| s.implementation == Implementation::Ours)
    });
    let (measured, met) = match ours_throughput {
        Some(ours) => (
            format!(
                "{:.0} % ({} of {})",
                ours.of_ceiling * 100.0,
                fmt_rate(ours.per_s),
                fmt_rate(ours.per_s / ours.of_ceiling)
            ),
            Some(ours.of_ceiling >= 0.6),
        ),
        None => ("not measured".to_owned(), None),
    };
    targets.push(Target {
        scenario: 2,
        target: "uncontended throughput at least 60 % of the pipelined ceiling".into(),
        measured,
        met,
    });

    // Scenario 3.
    let contention = results.contention.as_ref();
    let ours_points: Vec<&ContentionPoint> = contention
        .map(|c| {
            c.points
                .iter()
                .filter(|p| p.implementation == Implementation::Ours && p.waiters >= 4)
                .collect()
        })
        .unwrap_or_default();
    let p50s: Vec<f64> = ours_points
        .iter()
        .filter_map(|p| p.handoff.map(|h| h.p50_ns as f64))
        .collect();
    let (measured, met) = match (latency, p50s.is_empty()) {
        (Some(latency), false) => {
            let round_trip = latency.round_trip_ns();
            let worst = p50s.iter().copied().fold(0.0, f64::max);
            (
                format!(
                    "worst p50 {} = {:.1} round trips of {} (4 to {} waiters)",
                    fmt_ns(worst),
                    worst / round_trip,
                    fmt_ns(round_trip),
                    ours_points.iter().map(|p| p.waiters).max().unwrap_or(0)
                ),
                Some(worst <= 3.0 * round_trip),
            )
        }
        _ => ("not measured".to_owned(), None),
    };
    targets.push(Target {
        scenario: 3,
        target: "p50 hand-off within 3 round trips from 4 to 256 waiters".into(),
        measured,
        met,
    });

    let (measured, met) = if p50s.len() >= 2 {
        let max = p50s.iter().copied().fold(0.0, f64::max);
        let min = p50s.iter().copied().fold(f64::MAX, f64::min);
        (
            format!(
                "p50 from {} to {}: max/min {:.2}",
                fmt_ns(min),
                fmt_ns(max),
                max / min
            ),
            Some(max / min <= FLAT_SPREAD),
        )
    } else {
        ("not measured".to_owned(), None)
    };
    targets.push(Target {
        scenario: 3,
        target: format!("p50 hand-off flat from 4 to 256 waiters (max ≤ {FLAT_SPREAD}× min)"),
        measured,
        met,
    });

    let at = 64;
    let ours_64 = contention
        .and_then(|c| c.point(Implementation::Ours, at))
        .and_then(|p| p.handoff);
    let mut parts = Vec::new();
    let mut all_met = true;
    let mut any = false;
    for spin in [Implementation::SpinFixed, Implementation::SpinJitter] {
        let spin_64 = contention
            .and_then(|c| c.point(spin, at))
            .and_then(|p| p.handoff);
        if let (Some(ours), Some(spin_64)) = (ours_64, spin_64) {
            any = true;
            let ratio = spin_64.p50_ns as f64 / ours.p50_ns.max(1) as f64;
            all_met &= ratio >= 10.0;
            parts.push(format!(
                "{spin} {} / ours {} = {ratio:.1}×",
                fmt_ns(spin_64.p50_ns as f64),
                fmt_ns(ours.p50_ns as f64)
            ));
        }
    }
    targets.push(Target {
        scenario: 3,
        target: "p50 hand-off at 64 waiters at least 10× lower than the spin lock's".into(),
        measured: if any {
            parts.join("; ")
        } else {
            "not measured".into()
        },
        met: any.then_some(all_met),
    });

    // Scenario 4.
    let ours_all: Vec<&ContentionPoint> = contention
        .map(|c| {
            c.points
                .iter()
                .filter(|p| p.implementation == Implementation::Ours)
                .collect()
        })
        .unwrap_or_default();
    let (measured, met) = match ours_all.iter().max_by(|a, b| {
        a.client_commands_per_acquisition
            .total_cmp(&b.client_commands_per_acquisition)
    }) {
        Some(worst) => (
            format!(
                "worst {:.2} at {} waiters ({} processes)",
                worst.client_commands_per_acquisition, worst.waiters, worst.processes
            ),
            Some(worst.client_commands_per_acquisition <= 4.0),
        ),
        None => ("not measured".to_owned(), None),
    };
    targets.push(Target {
        scenario: 4,
        target: "at most 4 Redis commands per acquisition at any number of waiters".into(),
        measured,
        met,
    });

    // Scenario 6.
    let footprint = results.footprint.as_ref();
    targets.push(match footprint {
        Some(f) => Target {
            scenario: 6,
            target: "one pub/sub connection per client whatever the number of waiters".into(),
            measured: format!(
                "{} pub/sub + {} command connection(s) for {} tasks on {} names; {} subscriber(s) per channel at most",
                f.ours.connections.pubsub,
                f.ours.connections.normal,
                group_thousands(f.ours.tasks as f64),
                group_thousands(f.ours.names as f64),
                f.ours.max_subscribers_per_channel
            ),
            met: Some(f.ours.connections.pubsub == 1 && f.ours.max_subscribers_per_channel == 1),
        },
        None => Target {
            scenario: 6,
            target: "one pub/sub connection per client whatever the number of waiters".into(),
            measured: "not measured".into(),
            met: None,
        },
    });
    targets.push(Target {
        scenario: 6,
        target: "under 2 KiB of memory (RSS) per waiting task".into(),
        measured: footprint.map_or_else(
            || "not measured".to_owned(),
            |f| {
                format!(
                    "{} RSS per task ({} of live heap); a bare parked task: {} ({})",
                    fmt_bytes(f.ours.bytes_per_task),
                    fmt_bytes(f.ours.heap_bytes_per_task),
                    fmt_bytes(f.bare.bytes_per_task),
                    fmt_bytes(f.bare.heap_bytes_per_task)
                )
            },
        ),
        met: footprint.map(|f| f.ours.bytes_per_task < 2048.0),
    });
    targets
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "— not measured",
    }
}

fn p(percentiles: Option<Percentiles>, pick: impl Fn(&Percentiles) -> u64) -> String {
    percentiles.map_or_else(|| "–".to_owned(), |p| fmt_ns(pick(&p) as f64))
}

/// Renders `REPORT.md`.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let meta = &results.meta;
    let machine = &meta.machine;
    let _ = writeln!(out, "# lock-bench report\n");
    if meta.quick {
        let _ = writeln!(
            out,
            "> **Quick run** (`--quick`): every scenario at tiny sizes to keep the tool working. \
             These figures are not measurements; run `cargo run -p lock-bench --release`.\n"
        );
    }
    let _ = writeln!(
        out,
        "Generated by `{}` on {}, in {:.0} s. Every figure below was measured in this \
         run next to its reference (the physical floor, Redis's own ceiling, or a peer on the same \
         workload), so the ratios hold even where the absolute numbers move with the machine. \
         The raw figures are in [`results.json`](results.json).\n",
        format!("lock-bench {}", meta.command_line).trim_end(),
        meta.started,
        meta.seconds
    );

    let _ = writeln!(out, "## Machine\n");
    table_header(&mut out, &["", ""]);
    let _ = writeln!(
        out,
        "| CPU | {} ({} logical CPUs) |",
        machine.cpu, machine.cpus
    );
    let _ = writeln!(out, "| Memory | {:.1} GiB |", machine.memory_gib);
    let _ = writeln!(out, "| Kernel | Linux {} |", machine.kernel);
    let _ = writeln!(
        out,
        "| Redis | {} on loopback, {} (no persistence) |",
        machine.redis_version,
        if meta.own_redis {
            "started by the tool"
        } else {
            "given by `--redis-url`"
        }
    );
    let _ = writeln!(out, "| Rust | {} |", machine.rustc);
    let _ = writeln!(
        out,
        "| Load average | {} before, {} after |",
        machine.load_before, machine.load_after
    );
    let _ = writeln!(
        out,
        "\nRedis, the harness and every worker process share these {} CPUs: a round trip here \
         includes waking the other side's thread, and under contention the processes compete \
         with Redis for CPU time. A load average above 0 before the run means something else was \
         running too.\n",
        machine.cpus
    );

    let _ = writeln!(out, "## Targets\n");
    table_header(&mut out, &["Scenario", "Target", "Measured", ""]);
    for target in &results.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            target.scenario,
            target.target,
            target.measured,
            verdict(target.met)
        );
    }
    let _ = writeln!(out);
    render_analysis(&mut out, results);

    if let Some(latency) = &results.latency {
        let _ = writeln!(out, "## 1. Uncontended latency\n");
        let _ = writeln!(
            out,
            "One task acquires and releases a lock nobody else wants, {} times per series, the \
             series interleaved one operation at a time. The floor is two sequential `EVALSHA` calls of `return 1` on one \
             multiplexed redis-rs connection from the same runtime: two round trips, the least any \
             lock needing one request to acquire and one to release can cost.\n",
            group_thousands(latency.iterations as f64)
        );
        table_header(
            &mut out,
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
        for series in std::iter::once(&latency.floor).chain(&latency.series) {
            let l = &series.latency;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.2}× | {:.1} µs |",
                series.label,
                fmt_ns(l.p50_ns as f64),
                fmt_ns(l.p90_ns as f64),
                fmt_ns(l.p99_ns as f64),
                fmt_ns(l.p999_ns as f64),
                fmt_ns(l.max_ns as f64),
                l.p50_ns as f64 / latency.floor.latency.p50_ns.max(1) as f64,
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
        let _ = writeln!(out, "![Uncontended latency distribution]({LATENCY_SVG})\n");
    }

    if let Some(throughput) = &results.throughput {
        let _ = writeln!(out, "## 2. Uncontended throughput\n");
        let _ = writeln!(
            out,
            "{} tasks of one process, each on a lock name of its own, acquire and release for {:.1} s \
             per series ({} interleaved rounds). The ceiling is Redis itself running the same two \
             commands sent pipelined ({}), measured in the same run.\n",
            throughput.tasks, throughput.seconds_per_series, throughput.rounds, throughput.pipeline
        );
        table_header(&mut out, &["Ceiling", "what is sent", "pairs/s"]);
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
        table_header(&mut out, &["", "acquisitions/s", "of its ceiling"]);
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

    if let Some(contention) = &results.contention {
        render_contention(&mut out, results, contention);
    }

    if let Some(footprint) = &results.footprint {
        let ours = &footprint.ours;
        let bare = &footprint.bare;
        let _ = writeln!(out, "## 6. Footprint of waiting\n");
        let _ = writeln!(
            out,
            "One worker process with one `LockClient` spawns {} tasks, {} per name on {} names held \
             by the harness, each calling `Lock::acquire`; they arrive in batches of 100, 2 ms \
             apart. Once every channel is subscribed and Redis has gone quiet, the worker's RSS \
             growth since before the spawn is divided by the tasks, and so is the growth of its \
             live heap (bytes allocated and not freed, counted by the tool's global allocator). \
             The reference is the same number of bare Tokio tasks parked on a `Semaphore`, \
             measured the same way in a process of their own.\n",
            group_thousands(ours.tasks as f64),
            ours.tasks / ours.names.max(1),
            group_thousands(ours.names as f64)
        );
        table_header(&mut out, &["", "ours", "bare parked task"]);
        let _ = writeln!(
            out,
            "| memory per waiting task (RSS growth / tasks) | {} | {} |",
            fmt_bytes(ours.bytes_per_task),
            fmt_bytes(bare.bytes_per_task)
        );
        let _ = writeln!(
            out,
            "| live heap per waiting task (allocated, not freed) | {} | {} |",
            fmt_bytes(ours.heap_bytes_per_task),
            fmt_bytes(bare.heap_bytes_per_task)
        );
        let _ = writeln!(
            out,
            "| RSS before → while waiting | {} → {} | {} → {} |",
            fmt_bytes(ours.baseline_rss as f64),
            fmt_bytes(ours.waiting_rss as f64),
            fmt_bytes(bare.baseline_rss as f64),
            fmt_bytes(bare.waiting_rss as f64)
        );
        if let Some(bytes) = ours.acquire_future_bytes {
            let _ = writeln!(out, "| size of one `Lock::acquire` future | {bytes} B | |");
        }
        let _ = writeln!(
            out,
            "| Redis connections of the process | {} command + {} pub/sub | – |",
            ours.connections.normal, ours.connections.pubsub
        );
        let _ = writeln!(
            out,
            "| channels subscribed / most subscribers on one | {} / {} | – |",
            ours.subscribed_channels, ours.max_subscribers_per_channel
        );
        let _ = writeln!(
            out,
            "| client commands per second while all wait | {:.1} | – |",
            ours.commands_per_s_while_waiting
        );
        let _ = writeln!(
            out,
            "| Redis `used_memory` growth while all wait | {} | – |",
            fmt_bytes(ours.redis_memory_growth as f64)
        );
        if let Some(drain) = ours.drain_ms {
            let _ = writeln!(
                out,
                "| locks released → last of the {} tasks acquired and released | {:.0} ms | – |",
                group_thousands(ours.tasks as f64),
                drain
            );
        }
        let _ = writeln!(out);
    }

    render_method(&mut out, results);
    out
}

/// Renders `SUMMARY.md`: the Performance section of the workspace README (paths relative to the
/// repository root), regenerated with the report.
pub fn render_summary(results: &Results) -> String {
    let mut out = String::new();
    let machine = &results.meta.machine;
    let _ = writeln!(
        out,
        "<!-- Generated by lock-bench with REPORT.md: the README's Performance section. Paths are \
         relative to the repository root. -->\n"
    );
    let _ = writeln!(out, "## Performance\n");
    let _ = writeln!(
        out,
        "Measured by `cargo run -p lock-bench --release` on {} with {} logical CPUs, {:.0} GiB of \
         memory, Linux {} and Redis {} on loopback: Redis, the benchmark and its worker processes \
         share the {} CPUs. Each figure is measured in the same run as its reference. The full \
         report, with the method and what bounds each figure: \
         [`benches/results/REPORT.md`](benches/results/REPORT.md).\n",
        machine.cpu,
        machine.cpus,
        machine.memory_gib,
        machine.kernel,
        machine.redis_version,
        machine.cpus
    );
    table_header(&mut out, &["", "lock-runtime", "reference"]);
    if let Some(latency) = &results.latency
        && let Some(ours) = latency.series_of(Implementation::Ours)
    {
        let _ = writeln!(
            out,
            "| uncontended acquire + release, p50 / p99 | {} / {} | two raw `EVALSHA` round trips: {} / {} ({:.2}×) |",
            fmt_ns(ours.latency.p50_ns as f64),
            fmt_ns(ours.latency.p99_ns as f64),
            fmt_ns(latency.floor.latency.p50_ns as f64),
            fmt_ns(latency.floor.latency.p99_ns as f64),
            ours.latency.p50_ns as f64 / latency.floor.latency.p50_ns.max(1) as f64
        );
    }
    if let Some(throughput) = &results.throughput
        && let Some(ours) = throughput
            .series
            .iter()
            .find(|s| s.implementation == Implementation::Ours)
    {
        let _ = writeln!(
            out,
            "| uncontended acquisitions per second, {} tasks | {} | Redis's ceiling for the same scripts, pipelined: {} ({:.0} %) |",
            throughput.tasks,
            fmt_rate(ours.per_s),
            fmt_rate(ours.per_s / ours.of_ceiling),
            ours.of_ceiling * 100.0
        );
    }
    if let Some(contention) = &results.contention
        && let Some(ours) = contention.point(Implementation::Ours, 64)
    {
        let peers = |pick: &dyn Fn(&ContentionPoint) -> String| {
            [
                Implementation::SpinFixed,
                Implementation::SpinJitter,
                Implementation::Rslock,
            ]
            .into_iter()
            .filter_map(|i| {
                contention
                    .point(i, 64)
                    .map(|point| format!("{i} {}", pick(point)))
            })
            .collect::<Vec<_>>()
            .join(", ")
        };
        let _ = writeln!(
            out,
            "| hand-off p50 at 64 waiters ({} processes) | {} | {} |",
            ours.processes,
            p(ours.handoff, |h| h.p50_ns),
            peers(&|point| p(point.handoff, |h| h.p50_ns))
        );
        let _ = writeln!(
            out,
            "| acquisitions per second at 64 waiters | {} | {} |",
            fmt_rate(ours.per_s),
            peers(&|point| fmt_rate(point.per_s))
        );
        let _ = writeln!(
            out,
            "| time a caller waits in `acquire` at 64 waiters, p99 | {} | {} |",
            p(ours.wait, |w| w.p99_ns),
            peers(&|point| p(point.wait, |w| w.p99_ns))
        );
        let _ = writeln!(
            out,
            "| Redis commands per acquisition at 64 waiters | {:.1} | {} |",
            ours.client_commands_per_acquisition,
            peers(&|point| format!("{:.1}", point.client_commands_per_acquisition))
        );
    }
    if let Some(footprint) = &results.footprint {
        let ours = &footprint.ours;
        let _ = writeln!(
            out,
            "| {} tasks waiting on {} names | {} pub/sub + {} command connection, {} per task (RSS), {:.0} commands/s | a bare parked Tokio task: {} |",
            group_thousands(ours.tasks as f64),
            group_thousands(ours.names as f64),
            ours.connections.pubsub,
            ours.connections.normal,
            fmt_bytes(ours.bytes_per_task),
            ours.commands_per_s_while_waiting,
            fmt_bytes(footprint.bare.bytes_per_task)
        );
    }
    let met = results
        .targets
        .iter()
        .filter(|t| t.met == Some(true))
        .count();
    let measured = results.targets.iter().filter(|t| t.met.is_some()).count();
    let _ = writeln!(
        out,
        "\n{met} of the {measured} targets of the benchmark were met in this run; the report says \
         which, and what bounds the others.\n"
    );
    let _ = writeln!(
        out,
        "![Hand-off latency against waiters](benches/results/{HANDOFF_SVG})"
    );
    out
}

fn render_contention(out: &mut String, results: &Results, contention: &ContentionResult) {
    let implementations: Vec<Implementation> = Implementation::ALL
        .into_iter()
        .filter(|i| contention.points.iter().any(|p| p.implementation == *i))
        .collect();
    let header = |out: &mut String, first: &str| {
        let columns: Vec<&str> = std::iter::once(first)
            .chain(implementations.iter().map(|i| i.name()))
            .collect();
        table_header(out, &columns);
    };
    let rows = |out: &mut String, cell: &dyn Fn(&ContentionPoint) -> String| {
        for &waiters in &contention.waiters {
            let _ = write!(out, "| {waiters} |");
            for &i in &implementations {
                let text = contention.point(i, waiters).map_or("–".to_owned(), cell);
                let _ = write!(out, " {text} |");
            }
            let _ = writeln!(out);
        }
    };

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
    if let Some(latency) = &results.latency {
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
    header(out, "waiters");
    rows(out, &|point| match point.handoff {
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
    header(out, "waiters");
    rows(out, &|point| {
        format!("{} ({:.1})", fmt_rate(point.per_s), point.mean_waiting)
    });
    let _ = writeln!(
        out,
        "\n**Time inside `acquire`, p50 / p99** (every acquisition: how long a caller waits)\n"
    );
    header(out, "waiters");
    rows(out, &|point| {
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

    let _ = writeln!(out, "## 4. Redis load under contention\n");
    let _ = writeln!(
        out,
        "Client-sent commands per acquisition (`INFO commandstats` over the window; commands run \
         inside Lua scripts are not client-sent and are counted separately below).\n"
    );
    header(out, "waiters");
    rows(out, &|point| {
        format!("{:.2}", point.client_commands_per_acquisition)
    });
    let _ = writeln!(out, "\n![Redis commands per acquisition]({COMMANDS_SVG})\n");
    let _ = writeln!(
        out,
        "Where `ours` spends them, per acquisition: every command Redis executed (inside scripts \
         too), the release messages published, the processes subscribed to the lock's channel \
         (sampled), and the messages delivered (published × subscribers).\n"
    );
    table_header(
        out,
        &[
            "waiters",
            "processes",
            "client-sent",
            "executed",
            "EVALSHA",
            "SUBSCRIBE + UNSUBSCRIBE",
            "published",
            "subscribers",
            "delivered",
        ],
    );
    for point in contention
        .points
        .iter()
        .filter(|p| p.implementation == Implementation::Ours)
    {
        let per = |name: &str| {
            point.commands.by_command.get(name).copied().unwrap_or(0) as f64
                / point.acquisitions.max(1) as f64
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.1} | {:.2} | {:.3} | {:.2} | {:.1} | {:.2} |",
            point.waiters,
            point.processes,
            point.client_commands_per_acquisition,
            point.executed_per_acquisition,
            per("evalsha") + per("eval"),
            per("subscribe") + per("unsubscribe"),
            point.published_per_acquisition,
            point.mean_subscribers,
            point.deliveries_per_acquisition
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## 5. Peers on the same workloads\n");
    let spin = &results.meta.spin;
    let _ = writeln!(
        out,
        "All four implementations ran through the same harness in scenarios 1 to 4:\n\n\
         - **ours**: `lock-runtime`, `Lock::acquire` (watchdog lease) and `LockGuard::unlock`;\n\
         - **spin-fixed**: `SET key token NX PX 30000`, on failure sleep {} ms and retry; release \
           with a compare-and-delete script. {} ms is Redisson's `ConstantBackOff` default;\n\
         - **spin-jitter**: the same with exponential backoff and full jitter: after the n-th \
           failure sleep uniformly in `0..=min({} ms, {} ms·2ⁿ)` (Redisson's `ExponentialBackOff` \
           bounds);\n\
         - **rslock** {}: the published Redlock crate on one server, `LockManager::acquire` / \
           `LockGuard::release`, default retries (3 tries, a random 0–200 ms apart, and on failure \
           it deletes its own key with a script: 2 commands per failed try).\n",
        spin.fixed_delay_ms,
        spin.fixed_delay_ms,
        spin.backoff_max_ms,
        spin.backoff_initial_ms,
        RSLOCK_VERSION
    );
    if !contention.spin_sweep.is_empty() {
        let _ = writeln!(
            out,
            "**The spin lock's trade-off.** A shorter delay buys hand-off latency with Redis load. \
             `spin-fixed` at {} waiters with other delays, next to `ours`:\n",
            contention
                .spin_sweep
                .first()
                .map_or(0, |point| point.waiters)
        );
        table_header(
            out,
            &[
                "",
                "hand-off p50",
                "hand-off p99",
                "wait p99",
                "acquisitions/s",
                "commands/acquisition",
            ],
        );
        let sweep_waiters = contention
            .spin_sweep
            .first()
            .map_or(0, |point| point.waiters);
        let ours = contention.point(Implementation::Ours, sweep_waiters);
        for point in contention.spin_sweep.iter().chain(ours) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.2} |",
                point.label,
                p(point.handoff, |h| h.p50_ns),
                p(point.handoff, |h| h.p99_ns),
                p(point.wait, |w| w.p99_ns),
                fmt_rate(point.per_s),
                point.client_commands_per_acquisition
            );
        }
        let _ = writeln!(out);
    }
    if !contention.process_sweep.is_empty() {
        let _ = writeln!(
            out,
            "**Processes, not waiters, drive our load.** `ours` at {} waiters spread over more or \
             fewer processes:\n",
            contention
                .process_sweep
                .first()
                .map_or(0, |point| point.waiters)
        );
        table_header(
            out,
            &[
                "processes",
                "hand-off p50",
                "hand-off p99",
                "acquisitions/s",
                "client commands/acquisition",
                "subscribers",
            ],
        );
        for point in &contention.process_sweep {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.1} |",
                point.processes,
                p(point.handoff, |h| h.p50_ns),
                p(point.handoff, |h| h.p99_ns),
                fmt_rate(point.per_s),
                point.client_commands_per_acquisition,
                point.mean_subscribers
            );
        }
        let _ = writeln!(out);
    }
}

/// The version of rslock this tool is built against.
pub const RSLOCK_VERSION: &str = "0.10";

/// What bounds the figures that miss their targets, written from what was measured.
fn render_analysis(out: &mut String, results: &Results) {
    let missed: Vec<&Target> = results
        .targets
        .iter()
        .filter(|t| t.met == Some(false))
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(out, "### What bounds the missed targets\n");
        for target in missed {
            let text = match (target.scenario, target.target.as_str()) {
                (1, _) => analysis_latency(results),
                (2, _) => analysis_throughput(results),
                (3, t) if t.contains("10×") => analysis_spin(results),
                (3, t) if t.contains("flat") => analysis_flat(results),
                (3, _) => format!(
                    "{ANALYSIS_HANDOFF} On two CPUs shared with Redis, every extra woken process \
                     delays the winner: p50 at 64 waiters {}.",
                    process_sweep_line(results, &|point| p(point.handoff, |h| h.p50_ns))
                ),
                (4, _) => analysis_commands(results),
                (6, t) if t.contains("memory") => analysis_memory(results),
                _ => "The hub keeps one pub/sub connection per client.".to_owned(),
            };
            let _ = writeln!(out, "- **{}.** {text}", target.target);
        }
        let _ = writeln!(out);
    }
    render_observations(out, results);
}

fn analysis_latency(results: &Results) -> String {
    let Some(latency) = &results.latency else {
        return String::new();
    };
    let Some(ours) = latency.series_of(Implementation::Ours) else {
        return String::new();
    };
    let extra_ns = ours.latency.p50_ns as f64 - latency.floor.latency.p50_ns as f64;
    let redis_ns = (ours.redis_us_per_op - latency.floor.redis_us_per_op) * 1_000.0;
    format!(
        "Our p50 is {} above the floor. Redis itself spends {} more per acquire + release running \
         our two scripts than `return 1` twice (acquire: `TYPE`, `INCR`, `HSET`, `PEXPIRE`; \
         release: `GET`, `TYPE`, `HEXISTS`, `HINCRBY`, `DEL`, `PUBLISH`, `SET` of the request \
         memo): that much no client can remove without dropping a guarantee (fencing tokens, \
         reentrancy, idempotent resends). The rest, about {}, is the client: two owner / request \
         ids and five key strings formatted per call, the watchdog registration, the tracing \
         span, the `ConnectionManager` indirection.",
        fmt_ns(extra_ns),
        fmt_ns(redis_ns),
        fmt_ns((extra_ns - redis_ns).max(0.0))
    )
}

fn analysis_throughput(results: &Results) -> String {
    let Some(throughput) = &results.throughput else {
        return String::new();
    };
    let share = |i: Implementation| {
        throughput
            .series
            .iter()
            .find(|s| s.implementation == i)
            .map_or(f64::NAN, |s| s.of_ceiling * 100.0)
    };
    format!(
        "Redis and the client share two CPUs. The pipelined ceiling spends almost no client CPU per \
         pair; a lock call pays redis-rs's per-request cost on its multiplexed connection (a \
         command encoded, a oneshot channel, the reply parsed, a wake-up) twice per acquisition, \
         while Redis runs our heavier scripts. The spin lock, whose client work per acquisition is \
         the same redis-rs path with no lock library around it, reaches {:.0} % of its own ceiling \
         (ours: {:.0} %). A `perf` profile of this scenario, taken while building the tool, put \
         `lock_runtime`'s own functions at about 2 % of the client process's samples; the rest \
         was redis-rs, the allocator and the kernel's socket calls.",
        share(Implementation::SpinFixed),
        share(Implementation::Ours)
    )
}

fn process_sweep_line(results: &Results, what: &dyn Fn(&ContentionPoint) -> String) -> String {
    results
        .contention
        .as_ref()
        .map(|c| {
            c.process_sweep
                .iter()
                .map(|p| format!("{} with {} process(es)", what(p), p.processes))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

const ANALYSIS_HANDOFF: &str = "A hand-off is at least half the release round trip (Redis runs \
the release and publishes), the pub/sub delivery to each waiting process and the wake-up of one \
task there, then the acquire round trip; more when the woken task loses the race to a task of \
another process or to a newcomer and waits again.";

fn analysis_flat(results: &Results) -> String {
    format!(
        "Every release wakes one task in each process that has waiters, and they race; on two \
         CPUs shared with Redis, more woken processes means a longer queue for the CPU before the \
         winner's acquire is sent. The hand-off depends on the processes, not on the waiters: \
         p50 {}.",
        process_sweep_line(results, &|point| p(point.handoff, |h| h.p50_ns))
    )
}

fn analysis_spin(results: &Results) -> String {
    let contention = results.contention.as_ref();
    let point = |i| contention.and_then(|c| c.point(i, 64));
    let (Some(ours), Some(spin)) = (
        point(Implementation::Ours),
        point(Implementation::SpinFixed),
    ) else {
        return String::new();
    };
    format!(
        "A spin lock's hand-off is not only its delay. With 64 waiters polling at random phases, \
         the first poll after a release comes after about `delay / 64`, and in this closed loop a \
         task coming back from its pause often takes the free lock first. Hand-offs to waiters \
         are therefore rare and short ({} of {} spin-fixed acquisitions, against {} of {} for \
         ours), and the price is paid elsewhere: a caller's wait (time inside `acquire`, p99: {} \
         against ours {}), the time the lock sits idle between holders ({} against {} \
         acquisitions per second), and Redis load: shorter delays buy latency with Redis load (the delay \
         sweep in section 5). The 10× figure assumed a hand-off equal to the polling delay; \
         measured on the same clock and workload it is not.",
        group_thousands(spin.handoffs as f64),
        group_thousands(spin.acquisitions as f64),
        group_thousands(ours.handoffs as f64),
        group_thousands(ours.acquisitions as f64),
        p(spin.wait, |w| w.p99_ns),
        p(ours.wait, |w| w.p99_ns),
        fmt_rate(spin.per_s),
        fmt_rate(ours.per_s)
    )
}

fn analysis_commands(results: &Results) -> String {
    format!(
        "Pub/sub wakes one task per subscribed process, not one per cluster. Each release wakes one \
         waiter in every process that has waiters; all but one lose the race and send one failed \
         attempt each; and every task that comes back from its pause tries once before it waits. \
         So the cost is about `2 + processes` commands per acquisition, whatever the number of \
         waiters: {}. Redisson's lock has the same shape (one permit released per JVM). Only a \
         lock that names its next owner in Redis (a fair lock's queue) wakes exactly one waiter \
         across processes.",
        process_sweep_line(results, &|p| format!(
            "{:.2}",
            p.client_commands_per_acquisition
        ))
    )
}

fn analysis_memory(results: &Results) -> String {
    let Some(footprint) = &results.footprint else {
        return String::new();
    };
    format!(
        "A waiting task is a spawned Tokio task holding the `Lock::acquire` future, {} bytes by \
         itself (a bare parked task holds {} of heap in all), plus what the acquisition keeps \
         while it waits: the `Lock` handle and its name, the owner id, the lease, the watchdog \
         registration, its share of the hub's entry; {} of live heap per task in all. The RSS adds the \
         allocator's slack.",
        footprint.ours.acquire_future_bytes.unwrap_or(0),
        fmt_bytes(footprint.bare.heap_bytes_per_task),
        fmt_bytes(footprint.ours.heap_bytes_per_task)
    )
}

/// What the measurements show about the runtime beyond the targets (only what stands out).
fn render_observations(out: &mut String, results: &Results) {
    let mut notes = Vec::new();
    if let Some(contention) = &results.contention {
        let churn: Vec<(usize, f64)> = contention
            .points
            .iter()
            .filter(|p| p.implementation == Implementation::Ours && p.acquisitions > 0)
            .map(|p| {
                let calls = |name: &str| p.commands.by_command.get(name).copied().unwrap_or(0);
                let per =
                    (calls("subscribe") + calls("unsubscribe")) as f64 / p.acquisitions as f64;
                (p.waiters, per)
            })
            .collect();
        if churn.iter().any(|&(_, per)| per > 0.1) {
            let listed: Vec<String> = churn
                .iter()
                .map(|(waiters, per)| format!("{per:.2} at {waiters} waiters"))
                .collect();
            notes.push(format!(
                "**Subscription churn.** `SUBSCRIBE` + `UNSUBSCRIBE` per acquisition for `ours`: \
                 {}. A process whose last local waiter gets the lock unsubscribes, and its next \
                 waiter subscribes again and makes one more attempt once the subscription is \
                 confirmed. Keeping a channel subscribed for a short grace period after its last \
                 waiter leaves removes both.",
                listed.join(", ")
            ));
        }
        if let Some(ours) = contention.point(Implementation::Ours, 64)
            && let Some(wait) = ours.wait
        {
            notes.push(format!(
                "**Fairness.** The lock is not fair: a task coming back from its pause tries \
                 before it waits and can take a lock just released, and each process wakes its \
                 own waiters in order but races the others. At 64 waiters a caller waits {} at \
                 the median but {} at p99. Callers that need bounded waits want the fair lock \
                 (DESIGN §4).",
                fmt_ns(wait.p50_ns as f64),
                fmt_ns(wait.p99_ns as f64)
            ));
        }
    }
    if let Some(footprint) = &results.footprint
        && let Some(bytes) = footprint.ours.acquire_future_bytes
        && bytes > 1024
    {
        notes.push(format!(
            "**The acquire future is {bytes} bytes.** It is the state machine of the whole \
             acquisition, sized for its largest await point (a resent request inside the retry \
             loop). Boxing the request future of an attempt would shrink every waiting task at \
             the cost of one allocation per attempt."
        ));
    }
    if notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Observations on the runtime\n");
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out);
}

fn render_method(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Method\n");
    let _ = writeln!(
        out,
        "- **One run, references beside the figures.** Scenario 1 interleaves its series one \
         operation at a time and scenario 2 in rounds (the order rotated each time), so a noisy moment hits the reference and the \
         implementations alike. Scenario 3 runs each point in fresh worker processes.\n\
         - **Clocks.** Latencies within one process use `Instant`; hand-offs across processes use \
         `clock_gettime(CLOCK_MONOTONIC)`, one kernel clock for all processes of the machine. A \
         holder writes the time it starts releasing into a shared 24-byte file while it still \
         holds the lock, and the next holder reads it right after its acquire returns: the file is \
         itself protected by the lock under test, costs no Redis command, and doubles as a \
         mutual-exclusion check.\n\
         - **Why a critical section and a pause.** Each task holds the lock for about a \
         millisecond and pauses as long before asking again, so a task coming back finds the lock \
         held and joins the waiters: the lock is contended at every waiter count (the mean number \
         of tasks inside `acquire`, from Little's law, is in the throughput table). Without the \
         pause a releasing task takes the lock straight back, and a spin lock's waiters never \
         get it.\n\
         - **What a hand-off is.** An acquisition counts as a hand-off only when its task was \
         already inside `acquire` when the previous holder started releasing. A task that comes \
         back after its pause and finds the lock free is not waiting for anybody; counting it \
         would make a lock look faster the less it is contended. The time inside `acquire` is \
         reported for every acquisition as well.\n\
         - **Counting commands.** `CONFIG RESETSTAT` opens the window, `INFO commandstats` closes \
         it. Redis counts a command called from a Lua script like one a client sent, so the \
         commands each implementation's scripts call (for `ours`: `TYPE`, `INCR`, `HSET`, \
         `PEXPIRE`, `HEXISTS`, `GET`, `PTTL`, `EXISTS`, `HINCRBY`, `SET`, `DEL`, `PUBLISH`; for \
         the spin lock and rslock: `GET`, `DEL`) are subtracted to get client-sent commands \
         (`EVALSHA`, `EVAL`, `SCRIPT LOAD`, `SUBSCRIBE`, `UNSUBSCRIBE`, `PING`, the spin lock's \
         `SET`), and reported separately as *executed*. The harness's own commands (`INFO`, \
         `CONFIG`, `CLIENT`, `PUBSUB`) are left out.\n\
         - **Pub/sub messages.** Every `PUBLISH` happens inside our release script and is counted \
         as *published*; Redis delivers each to every subscribed connection, one per process with \
         waiters, sampled every 100 ms with `PUBSUB NUMSUB`, so *delivered* is an estimate.\n\
         - **Memory.** RSS (`VmRSS`) of a worker process before and while its tasks wait, so the \
         figure includes allocator overhead; the bare-task reference shows Tokio's own share.\n\
         - **Not tuned to this run.** The sizes are fixed in `benches/src/run.rs`; `--quick` \
         shrinks them to keep the tool working in CI and asserts nothing about timing."
    );
    if results.meta.quick {
        let _ = writeln!(
            out,
            "\nThis was a quick run: its sizes are too small to mean anything."
        );
    }
}

/// Writes the header row of a Markdown table and its separator, one `---` per column.
fn table_header(out: &mut String, columns: &[&str]) {
    let _ = write!(out, "|");
    for column in columns {
        if column.is_empty() {
            let _ = write!(out, " |");
        } else {
            let _ = write!(out, " {column} |");
        }
    }
    let _ = writeln!(out, "\n|{}", " --- |".repeat(columns.len()));
}
