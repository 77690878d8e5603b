//! *What bounds the missed targets* (under *Targets* in `REPORT.md`): for each target missed, what
//! limits the figure, written from what was measured.

use std::fmt::Write as _;

use super::{
    markdown::p,
    thresholds::{COMPARED_AT_WAITERS, Goal, SPIN_HANDOFF_MIN_RATIO},
};
use crate::{
    contenders::Implementation,
    results::{ContentionPoint, Results, Target},
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
                Goal::CommandsPerAcquisition => analysis_commands(results),
                Goal::OnePubSubConnection => {
                    "The hub keeps one pub/sub connection per client.".to_owned()
                }
                Goal::MemoryPerTask => analysis_memory(results),
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

fn analysis_handoff(results: &Results) -> String {
    let waiters = results
        .contention
        .as_ref()
        .and_then(|c| c.process_sweep.first())
        .map_or(0, |point| point.waiters);
    format!(
        "{ANALYSIS_HANDOFF} On {} CPUs shared with Redis, every extra woken process delays the \
         winner: p50 at {waiters} waiters {}.",
        results.meta.machine.cpus,
        process_sweep_line(results, &|point| p(point.handoff, |h| h.p50_ns))
    )
}

fn analysis_flat(results: &Results) -> String {
    format!(
        "Every release wakes one task in each process that has waiters, and they race; on {} \
         CPUs shared with Redis, more woken processes means a longer queue for the CPU before the \
         winner's acquire is sent. The hand-off depends on the processes, not on the waiters: \
         p50 {}.",
        results.meta.machine.cpus,
        process_sweep_line(results, &|point| p(point.handoff, |h| h.p50_ns))
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
