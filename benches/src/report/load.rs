//! Section 4 of `REPORT.md`: Redis load under contention, the commands each acquisition costs.

use std::fmt::Write as _;

use super::{
    markdown::{WaiterTable, table_header},
    plots::COMMANDS_SVG,
};
use crate::{contenders::Implementation, results::ContentionResult};

/// Writes section 4.
pub(super) fn render(out: &mut String, contention: &ContentionResult) {
    let table = WaiterTable::new(contention);
    let _ = writeln!(out, "## 4. Redis load under contention\n");
    let _ = writeln!(
        out,
        "Client-sent commands per acquisition (`INFO commandstats` over the window; commands run \
         inside Lua scripts are not client-sent and are counted separately below).\n"
    );
    table.write(out, &|point| {
        format!("{:.2}", point.client_commands_per_acquisition)
    });
    let _ = writeln!(out, "\n![Redis commands per acquisition]({COMMANDS_SVG})\n");
    let _ = writeln!(
        out,
        "Where lock-runtime's locks spend them, per acquisition: every command Redis executed \
         (inside scripts too), the release messages published, the processes subscribed to the \
         lock's channel and the subscribers of each client's own channel of the lock (sampled), \
         and the messages delivered (published × subscribers of the channels they go to). A \
         message of either lock names one waiter, in whichever process it waits (`ours` wakes it \
         to try, `fair` tells it the lock is now its own), and goes to that waiter's client's own \
         channel: no other process receives it.\n"
    );
    table_header(
        out,
        &[
            "lock",
            "waiters",
            "processes",
            "client-sent",
            "executed",
            "FCALL / EVALSHA",
            "SUBSCRIBE + UNSUBSCRIBE",
            "published",
            "subscribers",
            "own-channel subscribers",
            "delivered",
        ],
    );
    let family = Implementation::FAMILY.into_iter().flat_map(|lock| {
        contention
            .points
            .iter()
            .filter(move |p| p.implementation == lock)
    });
    for point in family {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.1} | {:.2} | {:.3} | {:.2} | {:.1} | {:.1} | {:.2} |",
            point.implementation,
            point.waiters,
            point.processes,
            point.client_commands_per_acquisition,
            point.executed_per_acquisition,
            point.calls_per_acquisition("fcall")
                + point.calls_per_acquisition("evalsha")
                + point.calls_per_acquisition("eval"),
            point.calls_per_acquisition("subscribe") + point.calls_per_acquisition("unsubscribe"),
            point.published_per_acquisition,
            point.mean_subscribers,
            point.mean_own_subscribers,
            point.deliveries_per_acquisition
        );
    }
    let _ = writeln!(out);
}
