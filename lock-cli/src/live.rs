//! What `watch`'s live view shows: the lock as last seen (and the read-write lock, semaphore or
//! count-down latch of the name, if one exists), and the changes of holders seen since the view
//! began. Text only; [`crate::screen`] puts it on the terminal.
//!
//! ```text
//! lock-cli watch `stock:42` every 500ms (Ctrl-C to stop)
//! as of 2025-06-01T12:00:04.500Z
//!
//! lock `stock:42`: held
//!   holder:      orders-api@host-3
//!   owner id:    0b6f7c4e-5d1a-4c53-9b7e-2f0e6c1d9a10:17
//!   held for:    2.1 s
//!   lease left:  27.9 s
//!   holds:       1
//!   last token:  1732000000000002
//!   waiters:     2, next: 5e0d…:3
//!
//! hand-offs seen: 2
//!   2025-06-01T12:00:02.400Z  held by orders-api@host-3
//!   2025-06-01T12:00:02.350Z  free
//!   2025-06-01T12:00:01.000Z  held by billing@host-1
//! ```
//!
//! A hand-off is a new hold (a new acquisition: of the lock, a read or write hold, permits)
//! after the view began. The view looks once per interval, so a holder that came and went
//! between two looks is not seen.

use std::{
    collections::{BTreeSet, VecDeque},
    fmt::Write as _,
    time::Duration,
    time::SystemTime,
};

use lock_runtime::{LockInfo, PrimitiveKind};

use crate::{
    render,
    snapshot::{Snapshot, who},
};

/// How many changes of holder the view keeps (it shows as many as the terminal has rows for).
const KEPT_CHANGES: usize = 100;

/// The changes of holders seen from one look to the next.
#[derive(Debug)]
pub(crate) struct History {
    /// The holds at the last look (owner ids, permit ids; empty: nothing held).
    holds: BTreeSet<String>,
    /// How many new holds were seen.
    handoffs: u64,
    /// The latest changes, newest first: when seen, and who held then.
    changes: VecDeque<(SystemTime, String)>,
}

impl History {
    /// A history starting from the first look, `first`, which is no change.
    pub(crate) fn new(first: &Snapshot) -> Self {
        Self {
            holds: first.holds(),
            handoffs: 0,
            changes: VecDeque::new(),
        }
    }

    /// Records the look `snapshot`, taken at `at`, if its holds changed since the last.
    pub(crate) fn observe(&mut self, snapshot: &Snapshot, at: SystemTime) {
        let now = snapshot.holds();
        if now == self.holds {
            return;
        }
        self.handoffs += now.difference(&self.holds).count() as u64;
        self.holds = now;
        self.changes.push_front((at, holder_state(snapshot)));
        self.changes.truncate(KEPT_CHANGES);
    }
}

/// One frame of the view, to draw with [`crate::screen::Screen::draw`].
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// How often the view looks.
    pub(crate) interval: Duration,
    /// The last successful look, and when it was taken.
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) at: SystemTime,
    /// The last look, if it failed: when, and why.
    pub(crate) failure: Option<&'a (SystemTime, String)>,
    pub(crate) history: &'a History,
}

impl Frame<'_> {
    /// The frame's lines, top to bottom.
    pub(crate) fn lines(&self) -> Vec<String> {
        let snapshot = self.snapshot;
        let mut lines = vec![
            format!(
                "lock-cli watch `{}` every {} (Ctrl-C to stop)",
                snapshot.name(),
                humantime::format_duration(self.interval)
            ),
            format!("as of {}", timestamp(self.at)),
        ];
        if let Some((at, why)) = self.failure {
            lines.push(format!("the look at {} failed: {why}", timestamp(*at)));
        }
        lines.push(String::new());
        lines.extend(state_lines(&snapshot.lock));
        for kind in snapshot.kinds() {
            let block = match kind {
                PrimitiveKind::ReadWriteLock => render::rw_lines(&snapshot.rw),
                PrimitiveKind::Semaphore => render::semaphore_lines(&snapshot.semaphore),
                PrimitiveKind::CountDownLatch => render::latch_lines(&snapshot.latch),
                _ => continue,
            };
            lines.push(String::new());
            lines.extend(block);
        }
        lines.push(String::new());
        lines.push(format!("hand-offs seen: {}", self.history.handoffs));
        lines.extend(
            self.history
                .changes
                .iter()
                .map(|(at, state)| format!("  {}  {state}", timestamp(*at))),
        );
        lines
    }
}

/// The lock's state, one fact a line: `inspect`'s facts, with the queue's head only.
fn state_lines(info: &LockInfo) -> Vec<String> {
    let mut lines = vec![format!("lock `{}`: {}", info.name(), render::state(info))];
    if let Some(holder) = info.holder() {
        lines.push(format!("  holder:      {}", who(holder)));
        lines.push(format!("  owner id:    {}", holder.owner()));
        lines.push(format!(
            "  held for:    {}",
            render::maybe_span(holder.held_for())
        ));
        lines.push(format!(
            "  lease left:  {}",
            render::lease_left(holder.ttl())
        ));
        lines.push(format!("  holds:       {}", holder.hold_count()));
    }
    lines.push(format!(
        "  last token:  {}",
        render::token(info.last_fencing_token())
    ));
    let mut waiters = format!("  waiters:     {}", info.waiters());
    if let Some(head) = info.queue().first() {
        let _ = write!(waiters, ", next: {head}");
    }
    lines.push(waiters);
    lines
}

/// Who held anything at this look, for the history: `held by <who>, <who>`, or `free`.
fn holder_state(snapshot: &Snapshot) -> String {
    let names = snapshot.holder_names();
    if names.is_empty() {
        "free".to_owned()
    } else {
        format!("held by {}", names.join(", "))
    }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
