//! The *Method* section of `REPORT.md`: how each figure was measured.

use std::fmt::Write as _;

use crate::{contenders::Implementation, results::Results};

/// Writes the *Method* section.
pub(super) fn render(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Method\n");
    let _ = writeln!(
        out,
        "- **One run, references beside the figures.** Scenario 1 interleaves its series one \
         operation at a time (the order shuffled each time, so that no series always runs \
         right after the same one) and scenario 2 in rounds (the order rotated each time), so a \
         noisy moment hits the reference and the implementations alike; scenario 1 then measures the \
         floor of a pub/sub hand-off on its own, one delivery after the other. Scenario 3 runs \
         each point in fresh worker processes.\n\
         - **Clocks.** Latencies within one process use `Instant` (the pub/sub floor's too: its \
         publisher and its subscriber are two threads of one process); hand-offs across \
         processes use `clock_gettime(CLOCK_MONOTONIC)`, one kernel clock for all processes of \
         the machine. A \
         holder writes the time it starts releasing into a shared 24-byte file while it still \
         holds the lock, and the next holder reads it right after its acquire returns: the file is \
         itself protected by the lock under test, costs no Redis command, and doubles as a \
         mutual-exclusion check.\n\
         - **Why a critical section and a pause.** Each task holds the lock for about a \
         millisecond and pauses as long before asking again, so a task coming back finds the lock \
         held and joins the waiters: the lock is contended at every waiter count (the mean number \
         of tasks inside `acquire`, from Little's law, is in the throughput table). Without the \
         pause a releasing task takes the lock straight back, and a spin lock's waiters never \
         get it.\n\
         - **What a hand-off is.** An acquisition counts as a hand-off only when its task was \
         already inside `acquire` when the previous holder started releasing. A task that comes \
         back after its pause and finds the lock free is not waiting for anybody; counting it \
         would make a lock look faster the less it is contended. The time inside `acquire` is \
         reported for every acquisition as well.\n\
         - **Counting commands.** `CONFIG RESETSTAT` opens the window, `INFO commandstats` closes \
         it. Redis counts a command called from a Lua script like one a client sent, so the \
         commands each implementation's scripts call ({}) are subtracted to get client-sent \
         commands (`FCALL`, `EVALSHA`, `EVAL`, `FUNCTION LOAD`, `SCRIPT LOAD`, `SUBSCRIBE`, `UNSUBSCRIBE`, `PING`, the spin \
         lock's `SET`), and reported separately as *executed*. The harness's own commands \
         (`INFO`, `CONFIG`, `CLIENT`, `PUBSUB`) are left out.\n\
         - **Pub/sub messages.** Every `PUBLISH` happens inside a release script of `ours` or \
         `fair` and is counted as *published*; Redis delivers each to every subscribed \
         connection, one per process with waiters, sampled every 100 ms with `PUBSUB NUMSUB`, so \
         *delivered* is an estimate.\n\
         - **Memory.** RSS (`VmRSS`) of a worker process before and while its tasks wait, so the \
         figure includes allocator overhead; the bare-task reference shows Tokio's own share.\n\
         - **Not tuned to this run.** The sizes are fixed in `benches/src/run.rs`; `--quick` \
         shrinks them to keep the tool working in CI and asserts nothing about timing.",
        script_commands()
    );
    if results.meta.quick {
        let _ = writeln!(
            out,
            "\nThis was a quick run: its sizes are too small to mean anything."
        );
    }
}

/// The commands each implementation's scripts call, as the method states them: `for ours: …;
/// for fair: …`, the implementations with the same list named together.
fn script_commands() -> String {
    let mut groups: Vec<(Vec<&str>, &[&str])> = Vec::new();
    for implementation in Implementation::ALL {
        let commands = implementation.script_internal_commands();
        match groups.iter_mut().find(|(_, listed)| *listed == commands) {
            Some((names, _)) => names.push(implementation.name()),
            None => groups.push((vec![implementation.name()], commands)),
        }
    }
    groups
        .iter()
        .map(|(names, commands)| {
            let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
            let commands: Vec<String> = commands
                .iter()
                .map(|command| format!("`{}`", command.to_uppercase()))
                .collect();
            format!("for {}: {}", names.join(", "), commands.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
