//! How a look is printed: for people (text) and for scripts (JSON).
//!
//! Each primitive has a JSON document, with its `kind` and `name`; `list` prints an array of
//! them, one per primitive found:
//!
//! ```json
//! { "kind": "lock", "name": "stock:42", "held": true,
//!   "holder": { "owner": "<client id>:<scope id>", "client_name": "orders-api@host-3",
//!               "held_for_ms": 12400, "hold_count": 1, "ttl_ms": 27600 },
//!   "waiters": 2, "queue": ["<owner id>", "<owner id>"], "last_fencing_token": 1732000000000001 }
//! { "kind": "read_write_lock", "name": "doc:1", "locked": true, "writer": null,
//!   "readers": [<holder>, ...], "read_holds": 1, "waiters": 0,
//!   "queue": [{ "owner": "<owner id>", "wants": "write" }], "last_fencing_token": 17 }
//! { "kind": "semaphore", "name": "pool:cli", "total": 3, "used": 1, "available": 2,
//!   "holders": [{ "id": "<permit id>", "client_name": "api-1", "held_for_ms": 200,
//!                 "permits": 1, "ttl_ms": 29800 }],
//!   "acquisitions": 1, "waiters": 0, "queue": [{ "id": "<permit id>", "permits": 2 }] }
//! { "kind": "count_down_latch", "name": "batch:9", "count": 3, "ttl_ms": 86390000 }
//! ```
//!
//! `inspect` (and each line of `watch`) prints every kind of one name in one document, `null`
//! for a kind that does not exist under that name:
//! `{ "name": "doc:1", "lock": null, "read_write_lock": {…}, "semaphore": null,
//! "count_down_latch": null }`. Values that are not known (`client_name`, `held_for_ms`,
//! `ttl_ms`, `total`, `last_fencing_token`) are `null`.

use std::{fmt::Write as _, time::Duration};

use lock_runtime::{
    LatchInfo, LockHolder, LockInfo, PrimitiveKind, ReadWriteLockInfo, SemaphoreInfo,
};
use serde_json::{Value, json};

use crate::snapshot::{KINDS, Snapshot, permit_holder, who};

/// The JSON key of a kind (and its `kind` field).
pub(crate) fn kind_key(kind: PrimitiveKind) -> &'static str {
    match kind {
        PrimitiveKind::Lock => "lock",
        PrimitiveKind::ReadWriteLock => "read_write_lock",
        PrimitiveKind::Semaphore => "semaphore",
        PrimitiveKind::CountDownLatch => "count_down_latch",
        _ => "unknown",
    }
}

/// The JSON document of every kind of one name (`inspect`, `watch`).
pub(crate) fn snapshot_json(snapshot: &Snapshot) -> Value {
    let mut document = json!({ "name": snapshot.name() });
    for kind in KINDS {
        document[kind_key(kind)] = if snapshot.exists(kind) {
            kind_json(snapshot, kind)
        } else {
            Value::Null
        };
    }
    document
}

/// The JSON document of the primitive of `kind` in `snapshot` (`list`'s elements).
pub(crate) fn kind_json(snapshot: &Snapshot, kind: PrimitiveKind) -> Value {
    match kind {
        PrimitiveKind::ReadWriteLock => rw_json(&snapshot.rw),
        PrimitiveKind::Semaphore => semaphore_json(&snapshot.semaphore),
        PrimitiveKind::CountDownLatch => latch_json(&snapshot.latch),
        _ => json(&snapshot.lock),
    }
}

/// The JSON document of a lock.
pub(crate) fn json(info: &LockInfo) -> Value {
    json!({
        "kind": kind_key(PrimitiveKind::Lock),
        "name": info.name(),
        "held": info.is_held(),
        "holder": info.holder().map(holder_json),
        "waiters": info.waiters(),
        "queue": info.queue(),
        "last_fencing_token": info.last_fencing_token(),
    })
}

fn holder_json(holder: &LockHolder) -> Value {
    json!({
        "owner": holder.owner(),
        "client_name": holder.client_name(),
        "held_for_ms": holder.held_for().map(millis),
        "hold_count": holder.hold_count(),
        "ttl_ms": holder.ttl().map(millis),
    })
}

fn rw_json(info: &ReadWriteLockInfo) -> Value {
    json!({
        "kind": kind_key(PrimitiveKind::ReadWriteLock),
        "name": info.name(),
        "locked": info.is_locked(),
        "writer": info.writer().map(holder_json),
        "readers": info.readers().iter().map(holder_json).collect::<Vec<_>>(),
        "read_holds": info.read_holds(),
        "waiters": info.waiters(),
        "queue": info.queue().iter().map(|waiter| json!({
            "owner": waiter.owner(),
            "wants": if waiter.wants_write() { "write" } else { "read" },
        })).collect::<Vec<_>>(),
        "last_fencing_token": info.last_fencing_token(),
    })
}

fn semaphore_json(info: &SemaphoreInfo) -> Value {
    json!({
        "kind": kind_key(PrimitiveKind::Semaphore),
        "name": info.name(),
        "total": info.total_permits(),
        "used": info.used_permits(),
        "available": info.available_permits(),
        "holders": info.holders().iter().map(|holder| json!({
            "id": holder.id(),
            "client_name": holder.client_name(),
            "held_for_ms": holder.held_for().map(millis),
            "permits": holder.permits(),
            "ttl_ms": holder.ttl().map(millis),
        })).collect::<Vec<_>>(),
        "acquisitions": info.acquisitions(),
        "waiters": info.waiters(),
        "queue": info.queue().iter().map(|waiter| json!({
            "id": waiter.id(),
            "permits": waiter.permits(),
        })).collect::<Vec<_>>(),
    })
}

fn latch_json(info: &LatchInfo) -> Value {
    json!({
        "kind": kind_key(PrimitiveKind::CountDownLatch),
        "name": info.name(),
        "count": info.count(),
        "ttl_ms": info.ttl().map(millis),
    })
}

/// `inspect`'s text: a block for each kind that exists under the name, or the free lock and a
/// line saying that nothing else of the name exists either under `prefix`, the key prefix
/// looked under (a wrong `--prefix` shows every lock free).
pub(crate) fn details(snapshot: &Snapshot, prefix: &str) -> String {
    let kinds = snapshot.kinds();
    if kinds.is_empty() {
        let mut text = lock_details(&snapshot.lock);
        let _ = writeln!(
            text,
            "  nothing else of that name under prefix `{prefix}`: no read-write lock, semaphore or \
             count-down latch (another --prefix?)"
        );
        return text;
    }
    let blocks: Vec<String> = kinds
        .into_iter()
        .map(|kind| match kind {
            PrimitiveKind::ReadWriteLock => lines_text(rw_lines(&snapshot.rw)),
            PrimitiveKind::Semaphore => lines_text(semaphore_lines(&snapshot.semaphore)),
            PrimitiveKind::CountDownLatch => lines_text(latch_lines(&snapshot.latch)),
            _ => lock_details(&snapshot.lock),
        })
        .collect();
    blocks.join("\n")
}

fn lines_text(lines: Vec<String>) -> String {
    lines.into_iter().map(|line| line + "\n").collect()
}

/// A lock for `inspect`: a title line, then one line per fact.
pub(crate) fn lock_details(info: &LockInfo) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "lock `{}`: {}", info.name(), state(info));
    if let Some(holder) = info.holder() {
        let _ = writeln!(text, "  holder:      {}", who(holder));
        let _ = writeln!(text, "  owner id:    {}", holder.owner());
        let _ = writeln!(text, "  held for:    {}", maybe_span(holder.held_for()));
        let _ = writeln!(text, "  holds:       {}", holder.hold_count());
        let _ = writeln!(text, "  lease left:  {}", lease_left(holder.ttl()));
    }
    let _ = writeln!(text, "  waiters:     {}", info.waiters());
    for (place, owner) in info.queue().iter().enumerate() {
        let _ = writeln!(text, "    {}. {owner}", place + 1);
    }
    more(&mut text, info.queue().len(), info.waiters());
    let _ = writeln!(text, "  last token:  {}", token(info.last_fencing_token()));
    text
}

/// A read-write lock, one fact a line: a line per hold, then the queue.
pub(crate) fn rw_lines(info: &ReadWriteLockInfo) -> Vec<String> {
    let mut lines = vec![format!(
        "read-write lock `{}`: {}",
        info.name(),
        rw_state(info)
    )];
    if let Some(writer) = info.writer() {
        lines.push(format!("  writer:      {}", hold_line(writer)));
    }
    for reader in info.readers() {
        lines.push(format!("  reader:      {}", hold_line(reader)));
    }
    let unlisted = info
        .read_holds()
        .saturating_sub(info.readers().len() as u64);
    if unlisted > 0 {
        lines.push(format!("    ... and {unlisted} more readers"));
    }
    lines.push(format!("  waiters:     {}", info.waiters()));
    for (place, waiter) in info.queue().iter().enumerate() {
        let wants = if waiter.wants_write() {
            "write"
        } else {
            "read"
        };
        lines.push(format!(
            "    {}. {} (to {wants})",
            place + 1,
            waiter.owner()
        ));
    }
    let mut rest = String::new();
    more(&mut rest, info.queue().len(), info.waiters());
    lines.extend(rest.lines().map(str::to_owned));
    lines.push(format!(
        "  last token:  {}",
        token(info.last_fencing_token())
    ));
    lines
}

/// A semaphore, one fact a line: a line per acquisition holding permits, then the queue.
pub(crate) fn semaphore_lines(info: &SemaphoreInfo) -> Vec<String> {
    let mut lines = vec![format!(
        "semaphore `{}`: {}",
        info.name(),
        semaphore_state(info)
    )];
    for holder in info.holders() {
        lines.push(format!(
            "  holder:      {}: {}, permit id {}, held for {}, lease {} left",
            permit_holder(holder),
            permits(holder.permits()),
            holder.id(),
            maybe_span(holder.held_for()),
            lease_left(holder.ttl()),
        ));
    }
    let unlisted = info
        .acquisitions()
        .saturating_sub(info.holders().len() as u64);
    if unlisted > 0 {
        lines.push(format!("    ... and {unlisted} more holders"));
    }
    lines.push(format!("  waiters:     {}", info.waiters()));
    for (place, waiter) in info.queue().iter().enumerate() {
        lines.push(format!(
            "    {}. {} (for {})",
            place + 1,
            waiter.id(),
            permits(waiter.permits())
        ));
    }
    let mut rest = String::new();
    more(&mut rest, info.queue().len(), info.waiters());
    lines.extend(rest.lines().map(str::to_owned));
    lines
}

/// A count-down latch: its count and how long it has left.
pub(crate) fn latch_lines(info: &LatchInfo) -> Vec<String> {
    vec![
        format!("count-down latch `{}`: {}", info.name(), latch_state(info)),
        format!(
            "  expires in:  {}",
            info.ttl().map_or_else(|| "never".to_owned(), span)
        ),
    ]
}

/// `list`'s line of the primitive of `kind` in `snapshot`: kind, name (padded to
/// `name_width`), state.
pub(crate) fn list_line(snapshot: &Snapshot, kind: PrimitiveKind, name_width: usize) -> String {
    format!(
        "{:<16}  {:<name_width$}  {}",
        kind.as_str(),
        snapshot.name(),
        kind_state(snapshot, kind)
    )
}

/// `watch`'s line: the name, the lock's state, then each other kind that exists.
pub(crate) fn watch_line(snapshot: &Snapshot) -> String {
    let mut text = format!(
        "{}  {}",
        snapshot.name(),
        kind_state(snapshot, PrimitiveKind::Lock)
    );
    for kind in snapshot.kinds() {
        if kind != PrimitiveKind::Lock {
            let _ = write!(text, "; {}: {}", kind.as_str(), kind_state(snapshot, kind));
        }
    }
    text
}

/// The state of the primitive of `kind` in `snapshot`, on one line.
fn kind_state(snapshot: &Snapshot, kind: PrimitiveKind) -> String {
    match kind {
        PrimitiveKind::ReadWriteLock => {
            let info = &snapshot.rw;
            let mut held: Vec<String> = info
                .writer()
                .map(|writer| {
                    format!(
                        "{} (writer) for {}",
                        who(writer),
                        maybe_span(writer.held_for())
                    )
                })
                .into_iter()
                .collect();
            held.extend(
                info.readers()
                    .iter()
                    .map(|reader| format!("{} for {}", who(reader), maybe_span(reader.held_for()))),
            );
            let state = rw_state(info);
            if held.is_empty() {
                format!("{state}, {} waiting", info.waiters())
            } else {
                format!("{state} ({}), {} waiting", held.join(", "), info.waiters())
            }
        }
        PrimitiveKind::Semaphore => {
            let info = &snapshot.semaphore;
            let held: Vec<String> = info.holders().iter().map(permit_holder).collect();
            let state = semaphore_state(info);
            if held.is_empty() {
                format!("{state}, {} waiting", info.waiters())
            } else {
                format!("{state} ({}), {} waiting", held.join(", "), info.waiters())
            }
        }
        PrimitiveKind::CountDownLatch => {
            let info = &snapshot.latch;
            match info.ttl() {
                Some(ttl) => format!("{}, expires in {}", latch_state(info), span(ttl)),
                None => latch_state(info),
            }
        }
        _ => lock_state_line(&snapshot.lock),
    }
}

/// A lock's state on one line, after its name: `list`, `watch`, `force-unlock`'s messages.
fn lock_state_line(info: &LockInfo) -> String {
    let waiting = format!("{} waiting", info.waiters());
    match info.holder() {
        None => format!("free, {waiting}"),
        Some(holder) => format!(
            "held by {} for {}, {} hold{}, lease {} left, {waiting}, token {}",
            who(holder),
            maybe_span(holder.held_for()),
            holder.hold_count(),
            if holder.hold_count() == 1 { "" } else { "s" },
            lease_left(holder.ttl()),
            token(info.last_fencing_token()),
        ),
    }
}

/// A lock on one line: its name, then its state.
pub(crate) fn line(info: &LockInfo) -> String {
    format!("{}  {}", info.name(), lock_state_line(info))
}

pub(crate) fn state(info: &LockInfo) -> &'static str {
    if info.is_held() { "held" } else { "free" }
}

fn rw_state(info: &ReadWriteLockInfo) -> String {
    match (info.writer(), info.read_holds()) {
        (Some(_), 0) => "held by a writer".to_owned(),
        (Some(_), reads) => format!("held by a writer and {}", readers(reads)),
        (None, 0) => "free".to_owned(),
        (None, reads) => format!("held by {}", readers(reads)),
    }
}

fn readers(count: u64) -> String {
    if count == 1 {
        "1 reader".to_owned()
    } else {
        format!("{count} readers")
    }
}

fn semaphore_state(info: &SemaphoreInfo) -> String {
    match info.total_permits() {
        Some(total) => format!(
            "{} of {total} permits held, {} free",
            info.used_permits(),
            info.available_permits()
        ),
        None => format!("permits never set, {} held", info.used_permits()),
    }
}

fn latch_state(info: &LatchInfo) -> String {
    format!("count {}", info.count())
}

fn permits(count: u64) -> String {
    if count == 1 {
        "1 permit".to_owned()
    } else {
        format!("{count} permits")
    }
}

/// `    ... and N more` under a queue that lists fewer than `waiters`.
fn more(text: &mut String, listed: usize, waiters: u64) {
    let unlisted = waiters.saturating_sub(listed as u64);
    if unlisted > 0 {
        let _ = writeln!(text, "    ... and {unlisted} more");
    }
}

/// A hold on one line: who, owner id, for how long, its holds, its lease.
fn hold_line(holder: &LockHolder) -> String {
    format!(
        "{} (owner {}), held for {}, {} hold{}, lease {} left",
        who(holder),
        holder.owner(),
        maybe_span(holder.held_for()),
        holder.hold_count(),
        if holder.hold_count() == 1 { "" } else { "s" },
        lease_left(holder.ttl()),
    )
}

pub(crate) fn lease_left(ttl: Option<Duration>) -> String {
    ttl.map_or_else(|| "unlimited (no expiry)".to_owned(), span)
}

pub(crate) fn token(token: Option<u64>) -> String {
    token.map_or_else(|| "none".to_owned(), |token| token.to_string())
}

pub(crate) fn maybe_span(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "unknown".to_owned(), span)
}

/// A duration as people read it in a log: `12.4 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// A duration that may run to hours (a latch's 24 h, a lock held since this morning): seconds
/// under a minute, else to the second (`23h 59m 58s`).
fn span(duration: Duration) -> String {
    if duration < Duration::from_secs(60) {
        seconds(duration)
    } else {
        humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
    }
}

/// Milliseconds for JSON (saturating: no lock is held for 584 million years).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_holds_and_leases_read_in_hours_short_ones_in_seconds() {
        assert_eq!(maybe_span(Some(Duration::from_millis(12_400))), "12.4 s");
        assert_eq!(maybe_span(Some(Duration::from_secs(3 * 3600 + 5))), "3h 5s");
        assert_eq!(lease_left(Some(Duration::from_secs(300))), "5m");
        assert_eq!(maybe_span(None), "unknown");
    }
}
