//! The verdicts: every target of the issue evaluated against what a run measured.

use super::{
    redis_cpu::fmt_us,
    thresholds::{
        COMMANDS_PER_ACQUISITION_MAX, COMPARED_AT_WAITERS, FAIR_WAIT_P99_MAX_QUEUE_RATIO,
        FAMILY_TARGET_PROCESSES, Goal, HANDOFF_FROM_WAITERS, HANDOFF_MAX_ROUND_TRIPS,
        HANDOFF_MAX_SPREAD, MEMORY_PER_TASK_MAX_KIB, PUBSUB_CONNECTIONS_PER_CLIENT,
        REDIS_CPU_MAX_RATIO, REDIS_CPU_PAIRS_MIN_RATIO, SPIN_HANDOFF_MIN_RATIO,
        SUBSCRIBERS_PER_CHANNEL, THROUGHPUT_MIN_SHARE, UNCONTENDED_P50_MAX_RATIO,
        commands_per_acquisition_max, handoff_max_round_trips,
    },
};
use crate::{
    contenders::Implementation,
    results::{ContentionPoint, CpuSeries, CpuSubject, Results, Target},
    util::{fmt_bytes, fmt_ns, fmt_rate, group_thousands},
};

/// What was measured for a target and whether that meets it; `None` when it was not measured.
type Verdict = Option<(String, bool)>;

/// Evaluates every target of the issue against `results`.
pub fn evaluate_targets(results: &Results) -> Vec<Target> {
    Goal::ALL
        .into_iter()
        .map(|goal| {
            let verdict = match goal {
                Goal::UncontendedLatency => uncontended_latency(results),
                Goal::UncontendedThroughput => uncontended_throughput(results),
                Goal::HandoffRoundTrips => handoff_round_trips(results),
                Goal::HandoffFlat => handoff_flat(results),
                Goal::HandoffBeatsSpin => handoff_beats_spin(results),
                Goal::FamilyHandoff(lock) => family_handoff(results, lock),
                Goal::FamilyThroughput(lock) => family_beats_peers(results, lock, &THROUGHPUT),
                Goal::FamilyWait(lock) => family_beats_peers(results, lock, &WAIT_P99),
                Goal::FairWaitNearQueue => fair_wait_near_queue(results),
                Goal::CommandsPerAcquisition => commands_per_acquisition(results),
                Goal::FamilyCommands(lock) => family_commands(results, lock),
                Goal::OnePubSubConnection => one_pubsub_connection(results),
                Goal::MemoryPerTask => memory_per_task(results),
                Goal::RedisCpu => beside_reference(results, &REDIS_CPU),
                Goal::RedisCpuPairs => beside_reference(results, &PAIRS_PER_S),
            };
            let (measured, met) = verdict.map_or_else(
                || ("not measured".to_owned(), None),
                |(measured, met)| (measured, Some(met)),
            );
            Target {
                scenario: goal.scenario(),
                target: goal.statement(),
                measured,
                met,
            }
        })
        .collect()
}

fn uncontended_latency(results: &Results) -> Verdict {
    let latency = results.latency.as_ref()?;
    let ours = latency.series_of(Implementation::Ours)?;
    let ratio = latency.p50_over_floor(ours);
    let reference = latency
        .reference
        .as_ref()
        .map_or_else(String::new, |reference| {
            format!(
                "; the Redisson-style reference: {:.2}×",
                latency.p50_over_floor(reference)
            )
        });
    Some((
        format!(
            "{ratio:.2}× (p50 {} vs floor {}{reference})",
            fmt_ns(ours.latency.p50_ns as f64),
            fmt_ns(latency.floor.latency.p50_ns as f64)
        ),
        ratio <= UNCONTENDED_P50_MAX_RATIO,
    ))
}

fn uncontended_throughput(results: &Results) -> Verdict {
    let ours = results
        .throughput
        .as_ref()?
        .series_of(Implementation::Ours)?;
    Some((
        format!(
            "{:.0} % ({} of {})",
            ours.of_ceiling * 100.0,
            fmt_rate(ours.per_s),
            fmt_rate(ours.per_s / ours.of_ceiling)
        ),
        ours.of_ceiling >= THROUGHPUT_MIN_SHARE,
    ))
}

/// Our contention points from [`HANDOFF_FROM_WAITERS`] waiters on.
fn handoff_points(results: &Results) -> Vec<&ContentionPoint> {
    results
        .contention
        .as_ref()
        .map(|c| {
            c.points
                .iter()
                .filter(|p| {
                    p.implementation == Implementation::Ours && p.waiters >= HANDOFF_FROM_WAITERS
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The p50 hand-offs of `points` that had hand-offs, in nanoseconds.
fn handoff_p50s(points: &[&ContentionPoint]) -> Vec<f64> {
    points
        .iter()
        .filter_map(|p| p.handoff.map(|h| h.p50_ns as f64))
        .collect()
}

fn handoff_round_trips(results: &Results) -> Verdict {
    let latency = results.latency.as_ref()?;
    let points = handoff_points(results);
    let p50s = handoff_p50s(&points);
    if p50s.is_empty() {
        return None;
    }
    let round_trip = latency.round_trip_ns();
    let worst = p50s.iter().copied().fold(0.0, f64::max);
    Some((
        format!(
            "worst p50 {} = {:.1} round trips of {} ({HANDOFF_FROM_WAITERS} to {} waiters)",
            fmt_ns(worst),
            worst / round_trip,
            fmt_ns(round_trip),
            points.iter().map(|p| p.waiters).max().unwrap_or(0)
        ),
        worst <= HANDOFF_MAX_ROUND_TRIPS * round_trip,
    ))
}

fn handoff_flat(results: &Results) -> Verdict {
    let p50s = handoff_p50s(&handoff_points(results));
    if p50s.len() < 2 {
        return None;
    }
    let max = p50s.iter().copied().fold(0.0, f64::max);
    let min = p50s.iter().copied().fold(f64::MAX, f64::min);
    Some((
        format!(
            "p50 from {} to {}: max/min {:.2}",
            fmt_ns(min),
            fmt_ns(max),
            max / min
        ),
        max / min <= HANDOFF_MAX_SPREAD,
    ))
}

fn handoff_beats_spin(results: &Results) -> Verdict {
    let contention = results.contention.as_ref()?;
    let handoff = |i| {
        contention
            .point(i, COMPARED_AT_WAITERS)
            .and_then(|p| p.handoff)
    };
    let ours = handoff(Implementation::Ours)?;
    let mut parts = Vec::new();
    let mut all_met = true;
    for spin in [Implementation::SpinFixed, Implementation::SpinJitter] {
        if let Some(theirs) = handoff(spin) {
            let ratio = theirs.p50_ns as f64 / ours.p50_ns.max(1) as f64;
            all_met &= ratio >= SPIN_HANDOFF_MIN_RATIO;
            parts.push(format!(
                "{spin} {} / ours {} = {ratio:.1}×",
                fmt_ns(theirs.p50_ns as f64),
                fmt_ns(ours.p50_ns as f64)
            ));
        }
    }
    (!parts.is_empty()).then(|| (parts.join("; "), all_met))
}

fn commands_per_acquisition(results: &Results) -> Verdict {
    let worst = results
        .contention
        .as_ref()?
        .points
        .iter()
        .filter(|p| p.implementation == Implementation::Ours)
        .max_by(|a, b| {
            a.client_commands_per_acquisition
                .total_cmp(&b.client_commands_per_acquisition)
        })?;
    Some((
        format!(
            "worst {:.2} at {} waiters ({} processes)",
            worst.client_commands_per_acquisition, worst.waiters, worst.processes
        ),
        worst.client_commands_per_acquisition <= COMMANDS_PER_ACQUISITION_MAX,
    ))
}

/// The points of `lock` where the family's targets hold: at [`COMPARED_AT_WAITERS`] waiters, one
/// per count of [`FAMILY_TARGET_PROCESSES`]; `None` unless every one was measured.
pub(super) fn family_points(
    results: &Results,
    lock: Implementation,
) -> Option<Vec<&ContentionPoint>> {
    let contention = results.contention.as_ref()?;
    FAMILY_TARGET_PROCESSES
        .iter()
        .map(|&processes| contention.at(lock, COMPARED_AT_WAITERS, processes))
        .collect()
}

/// The verdict over every point of `lock` at the family's targets: `figure` says what a point
/// measured and whether it meets the target; each is prefixed with its process count.
fn over_family_points(
    results: &Results,
    lock: Implementation,
    figure: impl Fn(&ContentionPoint) -> Option<(String, bool)>,
) -> Verdict {
    let mut parts = Vec::new();
    let mut all_met = true;
    for point in family_points(results, lock)? {
        let (measured, met) = figure(point)?;
        all_met &= met;
        parts.push(format!("{} processes: {measured}", point.processes));
    }
    Some((parts.join("; "), all_met))
}

fn family_commands(results: &Results, lock: Implementation) -> Verdict {
    let max = commands_per_acquisition_max(lock);
    over_family_points(results, lock, |point| {
        let commands = point.client_commands_per_acquisition;
        Some((format!("{commands:.2}"), commands <= max))
    })
}

fn family_handoff(results: &Results, lock: Implementation) -> Verdict {
    let round_trip = results.latency.as_ref()?.round_trip_ns();
    let max = handoff_max_round_trips(lock) * round_trip;
    let verdict = over_family_points(results, lock, |point| {
        let p50 = point.handoff?.p50_ns as f64;
        Some((
            format!("p50 {} = {:.1} round trips", fmt_ns(p50), p50 / round_trip),
            p50 <= max,
        ))
    })?;
    Some((
        format!("{} (a round trip: {})", verdict.0, fmt_ns(round_trip)),
        verdict.1,
    ))
}

/// A figure the family's locks must beat every peer on.
pub(super) struct Figure {
    /// What it is called in the verdict.
    pub(super) name: &'static str,
    /// Its value at a point, if measured.
    pub(super) value: fn(&ContentionPoint) -> Option<f64>,
    /// Its value as the verdict writes it.
    pub(super) format: fn(f64) -> String,
    /// Whether more is better.
    pub(super) higher_is_better: bool,
}

impl Figure {
    /// Whether `ours` is better than `theirs` on this figure.
    pub(super) fn beats(&self, ours: f64, theirs: f64) -> bool {
        if self.higher_is_better {
            ours > theirs
        } else {
            ours < theirs
        }
    }
}

/// Acquisitions per second: more is better.
pub(super) const THROUGHPUT: Figure = Figure {
    name: "acquisitions/s",
    value: |point| Some(point.per_s),
    format: fmt_rate,
    higher_is_better: true,
};

/// The p99 time inside `acquire`: less is better.
pub(super) const WAIT_P99: Figure = Figure {
    name: "p99 in `acquire`",
    value: |point| point.wait.map(|w| w.p99_ns as f64),
    format: fmt_ns,
    higher_is_better: false,
};

/// The best peer on `figure` at `point`'s waiters and processes, with its value.
pub(super) fn best_peer(
    results: &Results,
    point: &ContentionPoint,
    figure: &Figure,
) -> Option<(Implementation, f64)> {
    let contention = results.contention.as_ref()?;
    Implementation::ALL
        .into_iter()
        .filter(|peer| !peer.is_family())
        .filter_map(|peer| {
            let theirs = contention.at(peer, point.waiters, point.processes)?;
            Some((peer, (figure.value)(theirs)?))
        })
        .max_by(|a, b| {
            let order = a.1.total_cmp(&b.1);
            if figure.higher_is_better {
                order
            } else {
                order.reverse()
            }
        })
}

fn family_beats_peers(results: &Results, lock: Implementation, figure: &Figure) -> Verdict {
    over_family_points(results, lock, |point| {
        let ours = (figure.value)(point)?;
        let (peer, theirs) = best_peer(results, point, figure)?;
        Some((
            format!(
                "{} {}, best peer {peer} {}",
                figure.name,
                (figure.format)(ours),
                (figure.format)(theirs)
            ),
            figure.beats(ours, theirs),
        ))
    })
}

/// `waiters × mean hold` of `point`, in nanoseconds: how long a caller joining the back of a full
/// queue waits if every hand-off were instant.
pub(super) fn queue_wait_ns(point: &ContentionPoint) -> f64 {
    point.waiters as f64 * point.mean_hold_ns
}

fn fair_wait_near_queue(results: &Results) -> Verdict {
    over_family_points(results, Implementation::Fair, |point| {
        let p99 = point.wait?.p99_ns as f64;
        let queue = queue_wait_ns(point);
        let ratio = p99 / queue.max(1.0);
        Some((
            format!(
                "p99 {} = {ratio:.2}× of {} × {}",
                fmt_ns(p99),
                point.waiters,
                fmt_ns(point.mean_hold_ns)
            ),
            ratio <= FAIR_WAIT_P99_MAX_QUEUE_RATIO,
        ))
    })
}

fn one_pubsub_connection(results: &Results) -> Verdict {
    let ours = &results.footprint.as_ref()?.ours;
    Some((
        format!(
            "{} pub/sub + {} command connection(s) for {} tasks on {} names; {} subscriber(s) per channel at most",
            ours.connections.pubsub,
            ours.connections.normal,
            group_thousands(ours.tasks as f64),
            group_thousands(ours.names as f64),
            ours.max_subscribers_per_channel
        ),
        ours.connections.pubsub == PUBSUB_CONNECTIONS_PER_CLIENT
            && ours.max_subscribers_per_channel == SUBSCRIBERS_PER_CHANNEL,
    ))
}

fn memory_per_task(results: &Results) -> Verdict {
    let footprint = results.footprint.as_ref()?;
    Some((
        format!(
            "{} RSS per task ({} of live heap); a bare parked task: {} ({})",
            fmt_bytes(footprint.ours.bytes_per_task),
            fmt_bytes(footprint.ours.heap_bytes_per_task),
            fmt_bytes(footprint.bare.bytes_per_task),
            fmt_bytes(footprint.bare.heap_bytes_per_task)
        ),
        footprint.ours.bytes_per_task < MEMORY_PER_TASK_MAX_KIB * 1024.0,
    ))
}

/// A figure of scenario 8 that each of lock-runtime's primitives is held to, as a ratio to the
/// Redisson-style reference's.
pub(super) struct CpuFigure {
    /// Its value for a series.
    pub(super) value: fn(&CpuSeries) -> f64,
    /// Its value as the verdict writes it.
    pub(super) format: fn(f64) -> String,
    /// The bound on the ratio: at most it, or at least it when more is better.
    pub(super) bound: f64,
    /// Whether more is better.
    pub(super) higher_is_better: bool,
}

impl CpuFigure {
    /// Whether `ratio` (ours over the reference's) meets the bound.
    pub(super) fn meets(&self, ratio: f64) -> bool {
        if self.higher_is_better {
            ratio >= self.bound
        } else {
            ratio <= self.bound
        }
    }
}

/// Redis's CPU per uncontended acquire + release: at most [`REDIS_CPU_MAX_RATIO`] × the reference's.
pub(super) const REDIS_CPU: CpuFigure = CpuFigure {
    value: |series| series.cpu_us_per_pair,
    format: fmt_us,
    bound: REDIS_CPU_MAX_RATIO,
    higher_is_better: false,
};

/// Uncontended pairs per second: at least [`REDIS_CPU_PAIRS_MIN_RATIO`] × the reference's.
pub(super) const PAIRS_PER_S: CpuFigure = CpuFigure {
    value: |series| series.pairs_per_s,
    format: fmt_rate,
    bound: REDIS_CPU_PAIRS_MIN_RATIO,
    higher_is_better: true,
};

/// The verdict on `figure` for every primitive of scenario 8 (tasks of one client, not
/// pipelined) against the Redisson-style reference measured in the same run.
fn beside_reference(results: &Results, figure: &CpuFigure) -> Verdict {
    let cpu = results.redis_cpu.as_ref()?;
    let reference = cpu.series_of(CpuSubject::RedissonReference, false)?;
    let mut parts = Vec::new();
    let mut all_met = true;
    for series in cpu
        .series
        .iter()
        .filter(|s| s.subject.is_ours() && !s.pipelined)
    {
        let ratio = cpu.ratio(series, figure.value)?;
        all_met &= figure.meets(ratio);
        parts.push(format!(
            "{} {} = {ratio:.2}×",
            series.subject,
            (figure.format)((figure.value)(series))
        ));
    }
    (!parts.is_empty()).then(|| {
        (
            format!(
                "{} (reference {})",
                parts.join(", "),
                (figure.format)((figure.value)(reference))
            ),
            all_met,
        )
    })
}
