//! Section 5 of `REPORT.md`: the peers on the same workloads, the spin lock's delay sweep and the
//! sweep over processes.

use std::fmt::Write as _;

use super::markdown::{p, table_header};
use crate::{
    contenders::{Implementation, SpinSettings},
    results::ContentionResult,
    util::fmt_rate,
};

/// The version of rslock this tool is built against.
const RSLOCK_VERSION: &str = "0.10";

/// Writes section 5; `spin` are the spin lock's delays in this run.
pub(super) fn render(out: &mut String, contention: &ContentionResult, spin: &SpinSettings) {
    let _ = writeln!(out, "## 5. Peers on the same workloads\n");
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
        let sweep_waiters = contention
            .spin_sweep
            .first()
            .map_or(0, |point| point.waiters);
        let _ = writeln!(
            out,
            "**The spin lock's trade-off.** A shorter delay buys hand-off latency with Redis load. \
             `spin-fixed` at {sweep_waiters} waiters with other delays, next to `ours`:\n"
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
