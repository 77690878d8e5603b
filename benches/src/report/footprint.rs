//! Section 6 of `REPORT.md`: the footprint of waiting tasks, against bare parked Tokio tasks.

use std::fmt::Write as _;

use super::markdown::table_header;
use crate::{
    results::FootprintResult,
    util::{fmt_bytes, group_thousands},
};

/// Writes section 6.
pub(super) fn render(out: &mut String, footprint: &FootprintResult) {
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
    table_header(out, &["", "ours", "bare parked task"]);
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
        "| channels subscribed (the locks', and the client's own of each) / most subscribers on \
         one | {} + {} / {} | – |",
        ours.subscribed_channels, ours.own_channels, ours.max_subscribers_per_channel
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
