//! *Observations on the runtime* (under *Targets* in `REPORT.md`): what the measurements show about
//! lock-runtime beyond the targets, only where a figure stands out.

use std::fmt::Write as _;

use super::thresholds::{
    COMPARED_AT_WAITERS, NOTABLE_ACQUIRE_FUTURE_BYTES, NOTABLE_CHURN_PER_ACQUISITION,
};
use crate::{contenders::Implementation, results::Results, util::fmt_ns};

/// What the measurements show about the runtime beyond the targets (only what stands out).
pub(super) fn render(out: &mut String, results: &Results) {
    let mut notes = Vec::new();
    if let Some(contention) = &results.contention {
        let churn: Vec<(usize, f64)> = contention
            .points
            .iter()
            .filter(|p| p.implementation == Implementation::Ours && p.acquisitions > 0)
            .map(|p| {
                let per =
                    p.calls_per_acquisition("subscribe") + p.calls_per_acquisition("unsubscribe");
                (p.waiters, per)
            })
            .collect();
        if churn
            .iter()
            .any(|&(_, per)| per > NOTABLE_CHURN_PER_ACQUISITION)
        {
            let listed: Vec<String> = churn
                .iter()
                .map(|(waiters, per)| format!("{per:.2} at {waiters} waiters"))
                .collect();
            notes.push(format!(
                "**Subscription churn.** `SUBSCRIBE` + `UNSUBSCRIBE` per acquisition for `ours`: \
                 {}. A process whose last local waiter leaves keeps the lock's channel subscribed \
                 for a short while (the hub's linger), then unsubscribes; its next waiter \
                 subscribes again, and every waiter of that process makes one more attempt once \
                 the subscription is confirmed. Churn here means processes left without a \
                 waiter for longer than the linger.",
                listed.join(", ")
            ));
        }
        if let Some(ours) = contention.point(Implementation::Ours, COMPARED_AT_WAITERS)
            && let Some(wait) = ours.wait
        {
            let fair = contention
                .point(Implementation::Fair, COMPARED_AT_WAITERS)
                .and_then(|fair| fair.wait)
                .map_or_else(
                    || "Callers that need bounded waits want the fair lock (DESIGN §4).".to_owned(),
                    |fair| {
                        format!(
                            "The fair lock on the same workload: {} at the median, {} at p99.",
                            fmt_ns(fair.p50_ns as f64),
                            fmt_ns(fair.p99_ns as f64)
                        )
                    },
                );
            notes.push(format!(
                "**Fairness.** The lock is not fair: a release wakes its longest-queued waiter, \
                 by name, but a task coming back from its pause tries before it queues and can \
                 take the lock first, and the woken waiter waits again. At \
                 {COMPARED_AT_WAITERS} waiters a caller waits {} at the median but {} at p99. \
                 {fair}",
                fmt_ns(wait.p50_ns as f64),
                fmt_ns(wait.p99_ns as f64)
            ));
        }
    }
    if let Some(footprint) = &results.footprint
        && let Some(bytes) = footprint.ours.acquire_future_bytes
        && bytes > NOTABLE_ACQUIRE_FUTURE_BYTES
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
