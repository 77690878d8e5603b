//! The *Machine* section of `REPORT.md`: what the figures were measured on, as the run recorded it.

use std::fmt::Write as _;

use super::markdown::table_header;
use crate::results::Meta;

/// Writes the *Machine* section.
pub(super) fn render(out: &mut String, meta: &Meta) {
    let machine = &meta.machine;
    let _ = writeln!(out, "## Machine\n");
    table_header(out, &["", ""]);
    let _ = writeln!(
        out,
        "| CPU | {} ({} logical CPUs) |",
        machine.cpu, machine.cpus
    );
    let _ = writeln!(out, "| Memory | {:.1} GiB |", machine.memory_gib);
    let _ = writeln!(out, "| Kernel | Linux {} |", machine.kernel);
    let _ = writeln!(
        out,
        "| Redis | {} on loopback, {} (no persistence) |",
        machine.redis_version,
        if meta.own_redis {
            "started by the tool"
        } else {
            "given by `--redis-url`"
        }
    );
    let _ = writeln!(out, "| Rust | {} |", machine.rustc);
    let _ = writeln!(
        out,
        "| Load average | {} before, {} after |",
        machine.load_before, machine.load_after
    );
    let _ = writeln!(
        out,
        "\nRedis, the harness and every worker process share these {} CPUs: a round trip here \
         includes waking the other side's thread, and under contention the processes compete \
         with Redis for CPU time. A load average above 0 before the run means something else was \
         running too.\n",
        machine.cpus
    );
}
