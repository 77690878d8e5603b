//! *What bounds the missed targets* (under *Targets* in `REPORT.md`): for each target missed, what
//! limits the figure, written from what was measured.

use std::fmt::Write as _;

use super::{
    evaluate::{Figure, THROUGHPUT, WAIT_P99, best_peer, family_points, queue_wait_ns},
    markdown::p,
    redis_cpu::{analysis_cpu, analysis_pairs},
    thresholds::{
        COMPARED_AT_WAITERS, FAIR_WAIT_P99_MAX_QUEUE_RATIO, Goal, SPIN_HANDOFF_MIN_RATIO,
    },
};
use crate::{
    contenders::Implementation,
    results::{ContentionPoint, LatencySeries, Results, Target},
    util::{fmt_bytes, fmt_ns, fmt_rate, group_thousands},
};

/// What bounds the figures that miss their targets, written from what was measured.
pub(super) fn render(out: &mut String, results: &Results) {
    let missed: Vec<(&Target, Goal)> = results
        .targets
        .iter()
        .filter(|t| t.met == Some(false))
        .filter_map(|t| Some((t, Goal::of(&t.target)?)))
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(out, "### What bounds the missed targets\n");
        for (target, goal) in missed {
            let text = match goal {
                Goal::UncontendedLatency => analysis_latency(results),
                Goal::UncontendedThroughput => analysis_throughput(results),
                Goal::HandoffRoundTrips => analysis_handoff(results),
                Goal::HandoffFlat => analysis_flat(results),
                Goal::HandoffBeatsSpin => analysis_spin(results),
                Goal::FamilyHandoff(Implementation::Fair) => analysis_fair_handoff(results),
                Goal::FamilyHandoff(lock) => analysis_family_handoff(results, lock),
                Goal::FamilyThroughput(lock) => analysis_throughput_vs_peers(results, lock),
                Goal::FamilyWait(lock) => analysis_wait_vs_peers(results, lock),
                Goal::FairWaitNearQueue => analysis_fair_queue(results),
                Goal::CommandsPerAcquisition => analysis_commands(results),
                Goal::FamilyCommands(Implementation::Fair) => analysis_fair_commands(results),
                Goal::FamilyCommands(lock) => analysis_family_commands(results, lock),
                Goal::OnePubSubConnection => {
                    "The hub keeps one pub/sub connection per client.".to_owned()
                }
                Goal::MemoryPerTask => analysis_memory(results),
                Goal::RedisCpu => results
                    .redis_cpu
                    .as_ref()
                    .map_or_else(String::new, analysis_cpu),
                Goal::RedisCpuPairs => results
                    .redis_cpu
                    .as_ref()
                    .map_or_else(String::new, analysis_pairs),
            };
            let _ = writeln!(out, "- **{}.** {text}", target.target);
        }
        let _ = writeln!(out);
    }
}

fn analysis_latency(results: &Results) -> String {
    let Some(latency) = &results.latency else {
        return String::new();
    };
    let Some(ours) = latency.series_of(Implementation::Ours) else {
        return String::new();
    };
    let floor = &latency.floor;
    let above_floor = |series: &LatencySeries| {
        (
            series.latency.p50_ns as f64 - floor.latency.p50_ns as f64,
            (series.redis_us_per_op - floor.redis_us_per_op) * 1_000.0,
        )
    };
    let (extra_ns, redis_ns) = above_floor(ours);
    let scripts = "(acquire: `EXISTS` of the lock and the owner's abandoned mark, `INCR` of the \
                   fencing token, `HSET`, `PEXPIRE`; release: `HMGET`, `DEL`, `EXISTS` of the \
                   queue, `SET` of the request memo)";
    let Some(reference) = &latency.reference else {
        return format!(
            "Our p50 is {} above the floor, {} of it Redis running our two scripts {scripts} \
             rather than `return 1` twice; the rest, about {}, is the client.",
            fmt_ns(extra_ns),
            fmt_ns(redis_ns),
            fmt_ns((extra_ns - redis_ns).max(0.0))
        );
    };
    let (reference_extra_ns, reference_redis_ns) = above_floor(reference);
    format!(
        "Our p50 is {} above the floor ({:.2}×). The Redisson-style reference, two scripts \
         through a plain redis-rs connection, is {} above it ({:.2}×): Redis running a lock's \
         scripts instead of `return 1` ({} more Redis time per pair), and their longer requests \
         and replies. That part any lock made of one script to acquire and one to release pays, \
         whatever its client. Our two scripts {scripts} take {} more Redis time per pair than \
         `return 1` twice, {} more than the reference's; the rest of our distance to the \
         reference, about {}, is the client's path: two script calls built, the hold \
         registered with the watchdog and the request's deadline with the deadline table, the \
         reply decoded, the `ConnectionManager` in front of the multiplexed connection.",
        fmt_ns(extra_ns),
        latency.p50_over_floor(ours),
        fmt_ns(reference_extra_ns),
        latency.p50_over_floor(reference),
        fmt_ns(reference_redis_ns),
        fmt_ns(redis_ns),
        fmt_ns(redis_ns - reference_redis_ns),
        fmt_ns((extra_ns - reference_extra_ns - (redis_ns - reference_redis_ns)).max(0.0))
    )
}

fn analysis_throughput(results: &Results) -> String {
    let Some(throughput) = &results.throughput else {
        return String::new();
    };
    let share = |i: Implementation| {
        throughput
            .series_of(i)
            .map_or(f64::NAN, |s| s.of_ceiling * 100.0)
    };
    format!(
        "Redis and the client share {} CPUs. The pipelined ceiling spends almost no client CPU per \
         pair; a lock call pays redis-rs's per-request cost on its multiplexed connection (a \
         command encoded, a oneshot channel, the reply parsed, a wake-up) twice per acquisition, \
         while Redis runs our heavier scripts. The spin lock, whose client work per acquisition is \
         the same redis-rs path with no lock library around it, reaches {:.0} % of its own ceiling \
         (ours: {:.0} %). A `perf` profile of this scenario, taken while building the tool, put \
         `lock_runtime`'s own functions at about 2 % of the client process's samples; the rest \
         was redis-rs, the allocator and the kernel's socket calls.",
        results.meta.machine.cpus,
        share(Implementation::SpinFixed),
        share(Implementation::Ours)
    )
}

/// `what` of each point of `lock`'s sweep over processes, one after the other.
fn process_sweep_line(
    results: &Results,
    lock: Implementation,
    what: &dyn Fn(&ContentionPoint) -> String,
) -> String {
    results
        .contention
        .as_ref()
        .map(|c| {
            c.swept(lock)
                .map(|p| format!("{} with {} process(es)", what(p), p.processes))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The p50 of the floor of a pub/sub hand-off measured in scenario 1, in nanoseconds, if it was.
fn pubsub_floor_ns(results: &Results) -> Option<f64> {
    Some(results.latency.as_ref()?.pubsub_delivery?.p50_ns as f64)
}

/// The p50 of the same floor measured after idling (see
/// [`IdleDelivery`](crate::results::IdleDelivery)), in nanoseconds, with the pause in
/// microseconds, if it was.
fn idle_floor_ns(results: &Results) -> Option<(f64, u64)> {
    let idle = results.latency.as_ref()?.pubsub_delivery_idle?;
    Some((idle.delivery.p50_ns as f64, idle.pause_us))
}

/// The floor of a pub/sub hand-off as the analyses cite it, with its p50 in round trips, and
/// after idling if measured.
fn pubsub_floor(results: &Results) -> String {
    let Some((latency, floor)) = results.latency.as_ref().zip(pubsub_floor_ns(results)) else {
        return "the pub/sub floor (not measured in this run)".to_owned();
    };
    let round_trip = latency.round_trip_ns();
    let idle = idle_floor_ns(results).map_or_else(String::new, |(idle, pause_us)| {
        format!(
            "; after {pause_us} µs of idling, as a hand-off comes after the holder's critical \
             section, p50 {} = {:.2} round trips",
            fmt_ns(idle),
            idle / round_trip
        )
    });
    format!(
        "the pub/sub floor measured in scenario 1 (p50 {} = {:.2} round trips of {}{idle})",
        fmt_ns(floor),
        floor / round_trip,
        fmt_ns(round_trip)
    )
}

/// `point`'s p50 hand-off, and how far it is from `least` (nanoseconds, called `what`) when that
/// was measured.
fn handoff_beyond(point: &ContentionPoint, least: Option<f64>, what: &str) -> String {
    let p50 = p(point.handoff, |h| h.p50_ns);
    match (point.handoff, least) {
        (Some(handoff), Some(least)) => {
            let beyond = handoff.p50_ns as f64 - least;
            let side = if beyond < 0.0 { "below" } else { "above" };
            format!("{p50} ({} {side} {what})", fmt_ns(beyond.abs()))
        }
        _ => p50,
    }
}

/// The least a hand-off of the default lock costs, in nanoseconds, from the floors measured: the
/// release and the message to the woken waiter (the pub/sub floor), then its own acquire (a
/// round trip). `None` unless scenario 1 measured both.
fn default_handoff_least_ns(results: &Results) -> Option<f64> {
    Some(pubsub_floor_ns(results)? + results.latency.as_ref()?.round_trip_ns())
}

/// Why a hand-off of the default lock takes what it takes, and its least as measured.
fn default_handoff_bound(results: &Results) -> String {
    let least = default_handoff_least_ns(results).map_or_else(String::new, |least| {
        format!(
            " That least is {} plus one round trip: {}.",
            pubsub_floor(results),
            fmt_ns(least)
        )
    });
    format!(
        "A release of `{}` wakes one waiter, by name, across every process (the longest-queued \
         live one), which then sends its own acquire. A hand-off is therefore half the release \
         round trip, one pub/sub delivery and a wake-up, then a full acquire round trip: at \
         least about 2 round trips plus the wake-ups, and more when a newcomer, a task back from \
         its pause, barges in first and the woken waiter must wait again.{least}",
        Implementation::Ours
    )
}

fn analysis_handoff(results: &Results) -> String {
    let waiters = results
        .contention
        .as_ref()
        .and_then(|c| c.sweep_waiters())
        .unwrap_or(0);
    format!(
        "{} The release's message reaches the waiter's process alone (it goes to the waiter's \
         client's own channel of the lock), but on {} CPUs shared with Redis every process with \
         waiters competes with the woken task for the CPU: p50 at {waiters} waiters {}.",
        default_handoff_bound(results),
        results.meta.machine.cpus,
        process_sweep_line(results, Implementation::Ours, &|point| p(
            point.handoff,
            |h| h.p50_ns
        ))
    )
}

fn analysis_flat(results: &Results) -> String {
    format!(
        "A release wakes one waiter, by name, on its client's own channel of the lock: its \
         message reaches that waiter's process alone, however many processes wait. On {} CPUs \
         shared with Redis, what more processes add is a longer queue for the CPU before the \
         woken waiter runs. The hand-off depends on the processes, if on anything, not on the \
         waiters: p50 {}.",
        results.meta.machine.cpus,
        process_sweep_line(results, Implementation::Ours, &|point| p(
            point.handoff,
            |h| h.p50_ns
        ))
    )
}

fn analysis_spin(results: &Results) -> String {
    let contention = results.contention.as_ref();
    let point = |i| contention.and_then(|c| c.point(i, COMPARED_AT_WAITERS));
    let (Some(ours), Some(spin)) = (
        point(Implementation::Ours),
        point(Implementation::SpinFixed),
    ) else {
        return String::new();
    };
    format!(
        "A spin lock's hand-off is not only its delay. With {COMPARED_AT_WAITERS} waiters polling \
         at random phases, the first poll after a release comes after about \
         `delay / {COMPARED_AT_WAITERS}`, and in this closed loop a \
         task coming back from its pause often takes the free lock first. Hand-offs to waiters \
         are therefore rare and short ({} of {} spin-fixed acquisitions, against {} of {} for \
         ours), and the price is paid elsewhere: a caller's wait (time inside `acquire`, p99: {} \
         against ours {}), the time the lock sits idle between holders ({} against {} \
         acquisitions per second), and Redis load: shorter delays buy latency with Redis load \
         (the delay sweep in section 5). The {SPIN_HANDOFF_MIN_RATIO}× figure assumed a hand-off \
         equal to the polling delay; measured on the same clock and workload it is not.",
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

/// Where the default lock's commands per acquisition go.
const DEFAULT_COMMANDS: &str = "A release wakes one waiter, by name, across every process, and \
only that waiter tries again: an acquisition costs the try that queued its caller, the woken \
waiter's try and the release, about 3 commands whatever the number of waiters or processes; more \
when a newcomer barges in first and the woken waiter must try once more, or when a process \
subscribes to the lock's channel again (`SUBSCRIBE` + `UNSUBSCRIBE`, and one try by each of its \
waiters once the subscription is confirmed)";

fn analysis_commands(results: &Results) -> String {
    format!(
        "{DEFAULT_COMMANDS}: {}. Redisson's lock, which releases one permit in each JVM, pays one \
         failed attempt per other process on top.",
        process_sweep_line(results, Implementation::Ours, &|p| format!(
            "{:.2}",
            p.client_commands_per_acquisition
        ))
    ) + &fair_commands_line(results)
}

/// The fair lock's commands per acquisition over the processes, as a sentence, if it was swept.
fn fair_commands_line(results: &Results) -> String {
    let line = process_sweep_line(results, Implementation::Fair, &|p| {
        format!("{:.2}", p.client_commands_per_acquisition)
    });
    if line.is_empty() {
        String::new()
    } else {
        format!(" The fair lock, measured beside it: {line}.")
    }
}

/// `what` of `lock` at each point of the family's targets, with its processes.
fn family_line(
    results: &Results,
    lock: Implementation,
    what: &dyn Fn(&ContentionPoint) -> String,
) -> String {
    family_points(results, lock)
        .unwrap_or_default()
        .into_iter()
        .map(|point| format!("{} over {} processes", what(point), point.processes))
        .collect::<Vec<_>>()
        .join(", ")
}

fn analysis_family_handoff(results: &Results, lock: Implementation) -> String {
    let least = default_handoff_least_ns(results);
    let floor = pubsub_floor_ns(results);
    format!(
        "{} p50 of `{lock}`: {}; of the fair lock, whose release hands the lock over: {}.",
        default_handoff_bound(results),
        family_line(results, lock, &|point| handoff_beyond(
            point,
            least,
            "that least"
        )),
        family_line(results, Implementation::Fair, &|point| handoff_beyond(
            point,
            floor,
            "the pub/sub floor"
        ))
    )
}

fn analysis_fair_handoff(results: &Results) -> String {
    let floor = pubsub_floor_ns(results);
    format!(
        "The release hands the lock over: in the same script it makes the head of the queue the \
         owner and publishes one message naming it, and the head's task returns its guard with \
         no further request. A hand-off is therefore {}, the release reaching Redis and the \
         message coming back out to a thread of the head's process (its client's own channel \
         of the lock: no other process receives it), plus waking the head's task on the \
         application's runtime, in a process that shares the machine's {} CPUs with Redis, the \
         harness and the other worker processes. Both ends cross a thread: the release goes \
         out through the client's background runtime, and the message comes in on it. p50 {}.{}",
        pubsub_floor(results),
        results.meta.machine.cpus,
        family_line(results, Implementation::Fair, &|point| handoff_beyond(
            point,
            floor,
            "the floor"
        )),
        idle_floor_ns(results).map_or_else(String::new, |(idle, _)| format!(
            " Against the floor after idling: {}.",
            family_line(results, Implementation::Fair, &|point| handoff_beyond(
                point,
                Some(idle),
                "it"
            ))
        ))
    )
}

/// Each point of `lock` at the family's targets that `figure` finds behind the best peer, with
/// that peer, as a sentence.
fn behind_peers(results: &Results, lock: Implementation, figure: &Figure) -> String {
    family_points(results, lock)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|point| {
            let ours = (figure.value)(point)?;
            let (peer, theirs) = best_peer(results, point, figure)?;
            (!figure.beats(ours, theirs)).then(|| {
                format!(
                    "over {} processes `{lock}` {} against {peer} {}",
                    point.processes,
                    (figure.format)(ours),
                    (figure.format)(theirs)
                )
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn analysis_throughput_vs_peers(results: &Results, lock: Implementation) -> String {
    let bound = family_line(results, lock, &|point| {
        let handoff = point.handoff.map_or(0.0, |h| h.mean_ns);
        format!(
            "1 / ({} + {}) = {}",
            fmt_ns(point.mean_hold_ns),
            fmt_ns(handoff),
            fmt_rate(1e9 / (point.mean_hold_ns + handoff).max(1.0))
        )
    });
    format!(
        "Under contention the lock sits idle from the start of each release to the next holder's \
         acquire returning, so acquisitions per second are at most 1 / (mean hold + mean \
         hand-off): {bound}. A peer whose waiters poll finds a just-released lock without a \
         wake-up when one of its many polls lands right after the release, and a task coming back \
         from its pause may take it at once: {}.",
        behind_peers(results, lock, &THROUGHPUT)
    )
}

fn analysis_wait_vs_peers(results: &Results, lock: Implementation) -> String {
    let behind = behind_peers(results, lock, &WAIT_P99);
    if lock == Implementation::Fair {
        let beyond_queue = family_points(results, lock)
            .unwrap_or_default()
            .into_iter()
            .any(|point| {
                point.wait.map_or(0.0, |w| w.p99_ns as f64)
                    > FAIR_WAIT_P99_MAX_QUEUE_RATIO * queue_wait_ns(point)
            });
        let why = if beyond_queue {
            "Its p99 here is beyond that (see the target on waiters × mean hold): the tail is \
             waits the queue does not explain"
        } else {
            "A peer whose p99 is below that serves its callers unevenly and kept its tail \
             shorter in this run"
        };
        format!(
            "A fair lock's caller waits for the queue ahead of it: about waiters × (mean hold + \
             hand-off) for every caller alike ({}). {why}: {behind}.",
            family_line(results, lock, &|point| {
                let handoff = point.handoff.map_or(0.0, |h| h.mean_ns);
                fmt_ns(point.waiters as f64 * (point.mean_hold_ns + handoff))
            })
        )
    } else {
        format!(
            "`{lock}` is not fair: a release wakes its longest-queued waiter, but a task back from \
             its pause tries before it queues and may take the lock first, and the woken waiter \
             then waits again, so an unlucky caller loses many times in a row: {behind}. The fair \
             lock on the same workload: p99 {}.",
            family_line(results, Implementation::Fair, &|point| p(point.wait, |w| w
                .p99_ns))
        )
    }
}

fn analysis_fair_queue(results: &Results) -> String {
    format!(
        "Each of the turns ahead of a caller costs a hand-off on top of the hold, so the queue's \
         own bound is waiters × (mean hold + mean hand-off), not waiters × mean hold: {}.",
        family_line(results, Implementation::Fair, &|point| {
            let handoff = point.handoff.map_or(0.0, |h| h.mean_ns);
            format!(
                "p99 {} against {} × ({} + {}) = {} ({:.2}× of waiters × mean hold)",
                p(point.wait, |w| w.p99_ns),
                point.waiters,
                fmt_ns(point.mean_hold_ns),
                fmt_ns(handoff),
                fmt_ns(point.waiters as f64 * (point.mean_hold_ns + handoff)),
                point.wait.map_or(0.0, |w| w.p99_ns as f64) / queue_wait_ns(point).max(1.0)
            )
        })
    )
}

fn analysis_family_commands(results: &Results, lock: Implementation) -> String {
    format!(
        "{DEFAULT_COMMANDS}: {}.{}",
        family_line(results, lock, &|point| format!(
            "{:.2}",
            point.client_commands_per_acquisition
        )),
        fair_commands_line(results)
    )
}

fn analysis_fair_commands(results: &Results) -> String {
    format!(
        "A caller of the fair lock sends the try that queues it and, once it holds the lock, the \
         release: 2 scripts per acquisition, whatever the processes. The head the release hands \
         the lock to sends nothing. More when a process subscribes to the lock's channel again \
         (`SUBSCRIBE` + `UNSUBSCRIBE`, and one try by each of its waiters once the subscription \
         is confirmed) or a waiter renews its place in the queue (a try at least every third of \
         the watchdog timeout). Measured: {}.",
        family_line(results, Implementation::Fair, &|point| format!(
            "{:.2} ({:.2} `FCALL` or `EVALSHA`, {:.2} `SUBSCRIBE` + `UNSUBSCRIBE`)",
            point.client_commands_per_acquisition,
            point.calls_per_acquisition("fcall")
                + point.calls_per_acquisition("evalsha")
                + point.calls_per_acquisition("eval"),
            point.calls_per_acquisition("subscribe") + point.calls_per_acquisition("unsubscribe")
        ))
    )
}

fn analysis_memory(results: &Results) -> String {
    let Some(footprint) = &results.footprint else {
        return String::new();
    };
    format!(
        "A waiting task is a spawned Tokio task holding the `Lock::acquire` future, {} bytes by \
         itself, in a task cell Tokio rounds up to a multiple of 128 bytes (a bare parked task \
         holds {} of heap in all), plus what the acquisition keeps while it waits: the `Lock` \
         handle's name, the owner id, the lock's keys, its entry among the named waiters of its \
         channel and its share of the channel's entry in the hub (a waiting task is not \
         registered with the watchdog); {} of live heap per task in all. The RSS adds the \
         allocator's slack.",
        footprint.ours.acquire_future_bytes.unwrap_or(0),
        fmt_bytes(footprint.bare.heap_bytes_per_task),
        fmt_bytes(footprint.ours.heap_bytes_per_task)
    )
}
