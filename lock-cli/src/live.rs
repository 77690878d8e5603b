//! What `watch`'s live view shows: the lock as last seen, and the changes of holder seen since
//! the view began. Text only; [`crate::screen`] puts it on the terminal.
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
//! A hand-off is the lock taken by a new owner (a new acquisition) after the view began. The
//! view looks once per interval, so a holder that came and went between two looks is not seen.

use std::{collections::VecDeque, fmt::Write as _, time::Duration, time::SystemTime};

use lock_runtime::LockInfo;

use crate::render;

/// How many changes of holder the view keeps (it shows as many as the terminal has rows for).
const KEPT_CHANGES: usize = 100;

/// The changes of holder seen from one look to the next.
#[derive(Debug)]
pub(crate) struct History {
    /// The owner id at the last look (`None`: free).
    owner: Option<String>,
    /// How many times a new owner was seen.
    handoffs: u64,
    /// The latest changes, newest first: when seen, and the lock's state then.
    changes: VecDeque<(SystemTime, String)>,
}

impl History {
    /// A history starting from the first look, `first`, which is no change.
    pub(crate) fn new(first: &LockInfo) -> Self {
        Self {
            owner: owner(first),
            handoffs: 0,
            changes: VecDeque::new(),
        }
    }

    /// Records the look `info`, taken at `at`, if the lock changed hands since the last.
    pub(crate) fn observe(&mut self, info: &LockInfo, at: SystemTime) {
        let now = owner(info);
        if now == self.owner {
            return;
        }
        if now.is_some() {
            self.handoffs += 1;
        }
        self.owner = now;
        self.changes.push_front((at, holder_state(info)));
        self.changes.truncate(KEPT_CHANGES);
    }
}

/// One frame of the view, to draw with [`crate::screen::Screen::draw`].
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// How often the view looks.
    pub(crate) interval: Duration,
    /// The last successful look, and when it was taken.
    pub(crate) info: &'a LockInfo,
    pub(crate) at: SystemTime,
    /// The last look, if it failed: when, and why.
    pub(crate) failure: Option<&'a (SystemTime, String)>,
    pub(crate) history: &'a History,
}

impl Frame<'_> {
    /// The frame's lines, top to bottom.
    pub(crate) fn lines(&self) -> Vec<String> {
        let info = self.info;
        let mut lines = vec![
            format!(
                "lock-cli watch `{}` every {} (Ctrl-C to stop)",
                info.name(),
                humantime::format_duration(self.interval)
            ),
            format!("as of {}", timestamp(self.at)),
        ];
        if let Some((at, why)) = self.failure {
            lines.push(format!("the look at {} failed: {why}", timestamp(*at)));
        }
        lines.push(String::new());
        lines.extend(state_lines(info));
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
        lines.push(format!("  holder:      {}", render::who(holder)));
        lines.push(format!("  owner id:    {}", holder.owner()));
        lines.push(format!(
            "  held for:    {}",
            render::maybe_seconds(holder.held_for())
        ));
        lines.push(format!("  lease left:  {}", render::lease_left(holder)));
        lines.push(format!("  holds:       {}", holder.hold_count()));
    }
    lines.push(format!("  last token:  {}", render::token(info)));
    let mut waiters = format!("  waiters:     {}", info.waiters());
    if let Some(head) = info.queue().first() {
        let _ = write!(waiters, ", next: {head}");
    }
    lines.push(waiters);
    lines
}

/// The owner id holding the lock at this look.
fn owner(info: &LockInfo) -> Option<String> {
    info.holder().map(|holder| holder.owner().to_owned())
}

/// The lock's holder for the history: `held by <who>`, or `free`.
fn holder_state(info: &LockInfo) -> String {
    info.holder().map_or_else(
        || "free".to_owned(),
        |holder| format!("held by {}", render::who(holder)),
    )
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
