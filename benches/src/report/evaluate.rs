//! The verdicts: every target of the issue evaluated against what a run measured.

use crate::{
    contenders::Implementation,
    results::{ContentionPoint, Results, Target},
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
