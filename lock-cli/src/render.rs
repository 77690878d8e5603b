//! How a [`LockInfo`] is printed: for people (text) and for scripts (JSON).
//!
//! The JSON document of a lock, for `inspect`, each element of `list` and each line of `watch`:
//!
//! ```json
//! { "name": "stock:42", "held": true,
//!   "holder": { "owner": "<client id>:<scope id>", "client_name": "orders-api@host-3",
//!               "held_for_ms": 12400, "hold_count": 1, "ttl_ms": 27600 },
//!   "waiters": 2, "queue": ["<owner id>", "<owner id>"], "last_fencing_token": 1732000000000001 }
//! ```
//!
//! `holder` is `null` for a free lock; `client_name`, `held_for_ms`, `ttl_ms` and
//! `last_fencing_token` are `null` when not known.

use std::{fmt::Write as _, time::Duration};

use lock_runtime::{LockHolder, LockInfo};
use serde_json::{Value, json};

/// The JSON document of `info`.
pub(crate) fn json(info: &LockInfo) -> Value {
    json!({
        "name": info.name(),
        "held": info.is_held(),
        "holder": info.holder().map(|holder| json!({
            "owner": holder.owner(),
            "client_name": holder.client_name(),
            "held_for_ms": holder.held_for().map(millis),
            "hold_count": holder.hold_count(),
            "ttl_ms": holder.ttl().map(millis),
        })),
        "waiters": info.waiters(),
        "queue": info.queue(),
        "last_fencing_token": info.last_fencing_token(),
    })
}

/// `info` for `inspect`: a title line, then one line per fact.
pub(crate) fn details(info: &LockInfo) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "lock `{}`: {}", info.name(), state(info));
    if let Some(holder) = info.holder() {
        let _ = writeln!(text, "  holder:      {}", who(holder));
        let _ = writeln!(text, "  owner id:    {}", holder.owner());
        let _ = writeln!(text, "  held for:    {}", maybe_seconds(holder.held_for()));
        let _ = writeln!(text, "  holds:       {}", holder.hold_count());
        let _ = writeln!(text, "  lease left:  {}", lease_left(holder));
    }
    let _ = writeln!(text, "  waiters:     {}", info.waiters());
    for (place, owner) in info.queue().iter().enumerate() {
        let _ = writeln!(text, "    {}. {owner}", place + 1);
    }
    if (info.queue().len() as u64) < info.waiters() {
        let _ = writeln!(
            text,
            "    ... and {} more",
            info.waiters() - info.queue().len() as u64
        );
    }
    let _ = writeln!(text, "  last token:  {}", token(info));
    text
}

/// `info` on one line, for `list`, `watch`'s lines and `force-unlock`'s messages.
pub(crate) fn line(info: &LockInfo) -> String {
    let waiting = format!("{} waiting", info.waiters());
    match info.holder() {
        None => format!("{}  free, {waiting}", info.name()),
        Some(holder) => format!(
            "{}  held by {} for {}, {} hold{}, lease {} left, {waiting}, token {}",
            info.name(),
            who(holder),
            maybe_seconds(holder.held_for()),
            holder.hold_count(),
            if holder.hold_count() == 1 { "" } else { "s" },
            lease_left(holder),
            token(info),
        ),
    }
}

/// What `watch` compares from one look to the next: who holds the lock (owner and holds) and
/// who waits. Times and the lease move on their own and are not changes.
pub(crate) fn watched(info: &LockInfo) -> impl PartialEq + use<> {
    (
        info.holder()
            .map(|holder| (holder.owner().to_owned(), holder.hold_count())),
        info.waiters(),
        info.queue().to_vec(),
    )
}

pub(crate) fn state(info: &LockInfo) -> &'static str {
    if info.is_held() { "held" } else { "free" }
}

/// The holder's client name, or its owner id when it recorded none.
pub(crate) fn who(holder: &LockHolder) -> String {
    match holder.client_name() {
        Some(name) => name.to_owned(),
        None => format!("owner {} (no client name recorded)", holder.owner()),
    }
}

pub(crate) fn lease_left(holder: &LockHolder) -> String {
    holder
        .ttl()
        .map_or_else(|| "unlimited (no expiry)".to_owned(), seconds)
}

pub(crate) fn token(info: &LockInfo) -> String {
    info.last_fencing_token()
        .map_or_else(|| "none".to_owned(), |token| token.to_string())
}

pub(crate) fn maybe_seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "unknown".to_owned(), seconds)
}

/// A duration as people read it in a log: `12.4 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Milliseconds for JSON (saturating: no lock is held for 584 million years).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
