//! Section 5 of `REPORT.md`: the peers on the same workloads, the spin lock's delay sweep, the
//! sweep over processes of `ours` and `fair`, and every implementation at the process counts the
//! targets compare them at.

use std::fmt::Write as _;

use super::markdown::{p, table_header};
use crate::{
    contenders::{ContenderSettings, Implementation},
    results::{ContentionPoint, ContentionResult},
    util::fmt_rate,
};

/// The version of rslock this tool is built against.
const RSLOCK_VERSION: &str = "0.10";

/// Writes section 5; `spin` are the spin lock's delays in this run.
pub(super) fn render(out: &mut String, contention: &ContentionResult, spin: &ContenderSettings) {
    let _ = writeln!(out, "## 5. Peers on the same workloads\n");
    let _ = writeln!(
        out,
        "The implementations ran through the same harness in scenarios 1 to 4 (the fair lock in \
         1, 3 and 4: scenario 2 has no ceiling for its scripts):\n\n\
         - **ours**: `lock-runtime`, `Lock::acquire` (watchdog lease) and `LockGuard::unlock`;\n\
         - **fair**: `lock-runtime`'s fair lock, `FairLock::acquire` (watchdog lease; waiters \
           queue in Redis, first come first served, and a release makes the head of the queue the \
           owner and tells it) and the same `LockGuard::unlock`;\n\
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
    spin_sweep(out, contention);
    process_sweep(out, contention);
    peers_at_processes(out, contention);
}

/// The spin lock at other delays, next to lock-runtime's locks.
fn spin_sweep(out: &mut String, contention: &ContentionResult) {
    let Some(sweep_waiters) = contention.spin_sweep.first().map(|point| point.waiters) else {
        return;
    };
    let _ = writeln!(
        out,
        "**The spin lock's trade-off.** A shorter delay buys hand-off latency with Redis load. \
         `spin-fixed` at {sweep_waiters} waiters with other delays, next to `ours` and `fair`:\n"
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
    let family = Implementation::FAMILY
        .into_iter()
        .filter_map(|lock| contention.point(lock, sweep_waiters));
    for point in contention.spin_sweep.iter().chain(family) {
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

/// `ours` and `fair` over the processes, side by side.
fn process_sweep(out: &mut String, contention: &ContentionResult) {
    let locks: Vec<Implementation> = Implementation::FAMILY
        .into_iter()
        .filter(|&lock| contention.swept(lock).next().is_some())
        .collect();
    let Some(waiters) = contention.sweep_waiters() else {
        return;
    };
    if locks.is_empty() {
        return;
    }
    let names = locks
        .iter()
        .map(|lock| lock.name())
        .collect::<Vec<_>>()
        .join(" / ");
    let _ = writeln!(
        out,
        "**Processes: ours against fair.** At {waiters} waiters spread over more or fewer \
         processes, each cell `{names}`. A release of `ours` wakes the longest-queued waiter by \
         name, which tries (newcomers may barge); one of `fair` makes the head of the queue the \
         owner and tells it, in whichever process it waits:\n"
    );
    let columns = [
        "commands/acquisition",
        "hand-off p50",
        "hand-off p99",
        "acquisitions/s",
        "p99 in `acquire`",
        "subscribers",
    ];
    let headers: Vec<String> = std::iter::once("processes".to_owned())
        .chain(columns.iter().map(|column| format!("{column} ({names})")))
        .collect();
    table_header(out, &headers.iter().map(String::as_str).collect::<Vec<_>>());
    let cells: [&dyn Fn(&ContentionPoint) -> String; 6] = [
        &|point| format!("{:.2}", point.client_commands_per_acquisition),
        &|point| p(point.handoff, |h| h.p50_ns),
        &|point| p(point.handoff, |h| h.p99_ns),
        &|point| fmt_rate(point.per_s),
        &|point| p(point.wait, |w| w.p99_ns),
        &|point| format!("{:.1}", point.mean_subscribers),
    ];
    for processes in contention.sweep_processes() {
        let row: Vec<Option<&ContentionPoint>> = locks
            .iter()
            .map(|&lock| contention.at(lock, waiters, processes))
            .collect();
        if row.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(out, "| {processes} |");
        for cell in &cells {
            let pair: Vec<String> = row
                .iter()
                .map(|point| point.map_or_else(|| "–".to_owned(), cell))
                .collect();
            let _ = write!(out, " {} |", pair.join(" / "));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
}

/// Every implementation at the sweep's waiters over each process count the peers ran at: the
/// comparisons of the family's targets.
fn peers_at_processes(out: &mut String, contention: &ContentionResult) {
    let Some(waiters) = contention.sweep_waiters() else {
        return;
    };
    let counts: Vec<usize> = contention
        .sweep_processes()
        .into_iter()
        .filter(|&processes| {
            contention
                .process_sweep
                .iter()
                .any(|point| !point.implementation.is_family() && point.processes == processes)
        })
        .collect();
    if counts.is_empty() {
        return;
    }
    let over: Vec<String> = counts.iter().map(|c| format!("over {c}")).collect();
    let _ = writeln!(
        out,
        "**Every implementation at equal processes.** At {waiters} waiters {} processes, where the \
         targets compare lock-runtime's locks with the peers:\n",
        over.join(" and ")
    );
    table_header(
        out,
        &[
            "",
            "processes",
            "commands/acquisition",
            "hand-off p50",
            "acquisitions/s",
            "p99 in `acquire`",
        ],
    );
    for implementation in Implementation::ALL {
        for &processes in &counts {
            let Some(point) = contention.at(implementation, waiters, processes) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {implementation} | {processes} | {:.2} | {} | {} | {} |",
                point.client_commands_per_acquisition,
                p(point.handoff, |h| h.p50_ns),
                fmt_rate(point.per_s),
                p(point.wait, |w| w.p99_ns)
            );
        }
    }
    let _ = writeln!(out);
}
