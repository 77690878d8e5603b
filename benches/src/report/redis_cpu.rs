//! Section 8 of `REPORT.md`: Redis's own CPU per uncontended acquire + release, every primitive
//! beside the Redisson-style reference and `SET NX PX` + compare-and-delete; its row of
//! `SUMMARY.md`, and what bounds its targets when they are missed.

use std::fmt::Write as _;

use super::{
    markdown::table_header,
    thresholds::{REDIS_CPU_GOAL_RATIO, REDIS_CPU_MAX_RATIO, REDIS_CPU_PAIRS_MIN_RATIO},
};
use crate::{
    results::{CpuSeries, CpuSubject, RedisCpuResult},
    util::fmt_rate,
};

/// `us` microseconds with one decimal: Redis's cost per pair is a few to a few tens of them.
pub(super) fn fmt_us(us: f64) -> String {
    format!("{us:.1} µs")
}

/// `figure` of `series` and its ratio to the reference's, as a cell: `19.5 µs (1.91×)`.
fn with_ratio(
    cpu: &RedisCpuResult,
    series: &CpuSeries,
    figure: fn(&CpuSeries) -> f64,
    format: fn(f64) -> String,
) -> String {
    let ratio = cpu
        .ratio(series, figure)
        .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×"));
    format!("{} ({ratio})", format(figure(series)))
}

/// Writes the table of the series measured one way (`pipelined` or not).
fn table(out: &mut String, cpu: &RedisCpuResult, pipelined: bool) {
    table_header(
        out,
        &[
            "",
            "Redis CPU per pair (`INFO cpu`)",
            "script time per pair (`INFO commandstats`)",
            "pairs/s",
            "client commands per pair",
            "commands executed per pair",
        ],
    );
    for series in cpu.series.iter().filter(|s| s.pipelined == pipelined) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            series.subject,
            with_ratio(cpu, series, |s| s.cpu_us_per_pair, fmt_us),
            with_ratio(cpu, series, |s| s.command_us_per_pair, fmt_us),
            with_ratio(cpu, series, |s| s.pairs_per_s, fmt_rate),
            series.client_commands_per_pair,
            series.executed_commands_per_pair
        );
    }
    let _ = writeln!(out);
}

/// Writes section 8.
pub(super) fn render(out: &mut String, cpu: &RedisCpuResult) {
    let _ = writeln!(out, "## 8. Redis CPU per acquisition\n");
    let _ = writeln!(
        out,
        "What a shared Redis pays for every lock its clients take. {} tasks of one client, each \
         on a name of its own, acquire and release in a loop for {:.1} s per series ({} \
         interleaved rounds) on {}: lock-runtime's primitives through one `LockClient`; the \
         Redisson-style reference (Redisson's `RLock` algorithm written in the bench as two \
         scripts, `benches/src/redisson/`) and `SET NX PX` + a compare-and-delete script through \
         one plain redis-rs multiplexed connection. *Redis CPU* is the growth of `used_cpu_sys` + \
         `used_cpu_user` over the slice, per pair: everything Redis did, reading and replying \
         included. *Script time* is the `INFO commandstats` microseconds of the commands the \
         client sent (`FCALL` for lock-runtime's scripts where Redis has Functions, `EVALSHA` \
         for the reference's and the compare-and-delete, `SET` for `SET NX`), the scripts' inner \
         calls included; it is wall-clock time inside each command, so on a busy machine it \
         includes moments Redis was descheduled and can exceed its CPU. `FCALL` and `EVALSHA` \
         do not split a call's work between the command and what is around it the same way \
         (for the same two requests per pair, the CPU left outside the script time differs), \
         so the primitives compare with the reference by their Redis CPU, which the targets \
         use. Each figure is followed by its ratio to the Redisson-style reference's in the \
         same run.\n",
        cpu.tasks,
        cpu.seconds_per_series,
        cpu.rounds,
        if cpu.fresh_redis {
            "a Redis started for this scenario alone"
        } else {
            "the Redis given by `--redis-url`"
        }
    );
    table(out, cpu, false);
    let _ = writeln!(
        out,
        "The scripts alone, sent pipelined ({}): Redis's own ceiling, and its cost per pair \
         without a round trip per request. lock-runtime builds pipelined calls of the lock's \
         scripts only, so the other primitives are not in this table.\n",
        cpu.pipeline
    );
    table(out, cpu, true);
    let ratios: Vec<(CpuSubject, f64)> = cpu
        .series
        .iter()
        .filter(|s| s.subject.is_ours() && !s.pipelined)
        .filter_map(|s| Some((s.subject, cpu.ratio(s, |s| s.cpu_us_per_pair)?)))
        .collect();
    if !ratios.is_empty() {
        let reached = ratios
            .iter()
            .filter(|(_, ratio)| *ratio <= REDIS_CPU_GOAL_RATIO)
            .count();
        let _ = writeln!(
            out,
            "Targets: Redis CPU per pair at most {REDIS_CPU_MAX_RATIO:.1}× the reference's, pairs/s \
             at least {REDIS_CPU_PAIRS_MIN_RATIO}× its. The goal of {REDIS_CPU_GOAL_RATIO}× the \
             reference's CPU is reached by {reached} of the {} primitives. The release memos a \
             slice wrote are deleted after it, outside the measured time: every series pays \
             for writing its own, none for another's expiring.\n",
            ratios.len()
        );
    }
}

/// The row of `SUMMARY.md`: the lock's and the fair lock's Redis CPU and pairs/s, each with its
/// ratio to the Redisson-style reference, the references in the last column.
pub(super) fn summary_row(cpu: &RedisCpuResult) -> Option<String> {
    let reference = cpu.series_of(CpuSubject::RedissonReference, false)?;
    let cell = |subject| {
        cpu.series_of(subject, false).map_or_else(
            || "–".to_owned(),
            |series| {
                format!(
                    "{}, {}",
                    with_ratio(cpu, series, |s| s.cpu_us_per_pair, fmt_us),
                    with_ratio(cpu, series, |s| s.pairs_per_s, fmt_rate)
                )
            },
        )
    };
    let set_nx = cpu
        .series_of(CpuSubject::SetNx, false)
        .map_or_else(String::new, |series| {
            format!(
                "; `SET NX PX` + compare-and-delete: {}, {}",
                fmt_us(series.cpu_us_per_pair),
                fmt_rate(series.pairs_per_s)
            )
        });
    Some(format!(
        "| Redis CPU per uncontended acquire + release (`INFO cpu`), and pairs per second, {} \
         tasks of one client | {} | {} | Redisson-style reference: {}, {}{set_nx} |\n",
        cpu.tasks,
        cell(CpuSubject::Lock),
        cell(CpuSubject::FairLock),
        fmt_us(reference.cpu_us_per_pair),
        fmt_rate(reference.pairs_per_s)
    ))
}

/// The primitive of ours with the largest ratio to the reference on `figure` (the smallest, when
/// more is better), with the reference's series.
fn worst(
    cpu: &RedisCpuResult,
    figure: fn(&CpuSeries) -> f64,
    higher_is_better: bool,
) -> Option<(&CpuSeries, &CpuSeries)> {
    let reference = cpu.series_of(CpuSubject::RedissonReference, false)?;
    let worst = cpu
        .series
        .iter()
        .filter(|s| s.subject.is_ours() && !s.pipelined)
        .filter_map(|s| Some((s, cpu.ratio(s, figure)?)))
        .max_by(|a, b| {
            let order = a.1.total_cmp(&b.1);
            if higher_is_better {
                order.reverse()
            } else {
                order
            }
        })?;
    Some((worst.0, reference))
}

/// What bounds Redis's CPU per pair, when the target is missed.
pub(super) fn analysis_cpu(cpu: &RedisCpuResult) -> String {
    let Some((ours, reference)) = worst(cpu, |s| s.cpu_us_per_pair, false) else {
        return String::new();
    };
    format!(
        "The {} costs Redis {} per pair against the reference's {}. Its scripts run {:.1} \
         commands per pair against {:.1}, in {} of script time against {}; the rest of the CPU \
         ({} against {}) is what Redis spends around the scripts: reading, parsing and replying \
         to {:.1} requests per pair against {:.1}, and the event loop.",
        ours.subject,
        fmt_us(ours.cpu_us_per_pair),
        fmt_us(reference.cpu_us_per_pair),
        ours.executed_commands_per_pair,
        reference.executed_commands_per_pair,
        fmt_us(ours.command_us_per_pair),
        fmt_us(reference.command_us_per_pair),
        fmt_us(ours.cpu_us_per_pair - ours.command_us_per_pair),
        fmt_us(reference.cpu_us_per_pair - reference.command_us_per_pair),
        ours.client_commands_per_pair,
        reference.client_commands_per_pair
    )
}

/// What bounds the pairs per second, when the target is missed.
pub(super) fn analysis_pairs(cpu: &RedisCpuResult) -> String {
    let Some((ours, reference)) = worst(cpu, |s| s.pairs_per_s, true) else {
        return String::new();
    };
    let pipelined = match (
        cpu.series_of(CpuSubject::Lock, true),
        cpu.series_of(CpuSubject::RedissonReference, true),
    ) {
        (Some(lock), Some(reference)) => format!(
            " Pipelined, Redis alone does {} of the lock's scripts and {} of the reference's.",
            fmt_rate(lock.pairs_per_s),
            fmt_rate(reference.pairs_per_s)
        ),
        _ => String::new(),
    };
    format!(
        "The {} does {} against the reference's {}, with Redis spending {} of CPU per pair \
         against {}: where Redis is the busiest process of the machine, pairs/s follows its CPU \
         per pair; the client's own CPU and round trips bound the rest.{pipelined}",
        ours.subject,
        fmt_rate(ours.pairs_per_s),
        fmt_rate(reference.pairs_per_s),
        fmt_us(ours.cpu_us_per_pair),
        fmt_us(reference.cpu_us_per_pair)
    )
}
