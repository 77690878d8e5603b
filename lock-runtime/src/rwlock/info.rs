//! What an operator asks of a read-write lock ([`ReadWriteLockInfo`]): its write hold, its read
//! holds, who waits and for what, read in one read-only script (`scripts/info.lua`). Like the
//! lock's `info.lua`, it is not among the read-write lock's `SOURCES` (the scripts whose
//! commands tests and the benchmark count).

use redis::{ParsingError, Value};

use crate::{
    core::reply::Items,
    family::info::{LockHolder, Snapshot, waiters},
};

/// A snapshot of one read-write lock, as Redis held it at one instant: made by
/// [`ReadWriteLock::info`](crate::ReadWriteLock::info).
///
/// Read in one atomic script, so its parts agree with each other; by the time it is read, the
/// lock may have changed hands. Each hold, read or write, is a [`LockHolder`] of its own: its
/// owner id (which starts with the holder's client [id](crate::LockClient::id)), its client's
/// [name](LockHolder::client_name), how long it has been [held](LockHolder::held_for), its hold
/// count and its lease left.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadWriteLockInfo {
    name: String,
    writer: Option<LockHolder>,
    readers: Vec<LockHolder>,
    read_holds: u64,
    waiters: u64,
    queue: Vec<ReadWriteWaiter>,
    last_fencing_token: Option<u64>,
}

impl ReadWriteLockInfo {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether anyone held the lock, to read or to write.
    pub fn is_locked(&self) -> bool {
        self.writer.is_some() || self.read_holds > 0
    }

    /// The write hold, or `None` if nobody held the write lock.
    pub fn writer(&self) -> Option<&LockHolder> {
        self.writer.as_ref()
    }

    /// The read holds, soonest lease end first: at most the first 100, while
    /// [`read_holds`](Self::read_holds) counts all. A read hold taken under the write hold of
    /// its own scope (a downgrade) is one of them, with an owner id of its own.
    pub fn readers(&self) -> &[LockHolder] {
        &self.readers
    }

    /// How many read holds there were.
    pub fn read_holds(&self) -> u64 {
        self.read_holds
    }

    /// How many tasks waited for the lock, in every process: the queued waiters still live (as
    /// [`LockInfo::waiters`](crate::LockInfo::waiters) counts them).
    pub fn waiters(&self) -> u64 {
        self.waiters
    }

    /// The live waiters, longest-queued first (the order the lock lets them in): at most the
    /// first 100, while [`waiters`](Self::waiters) counts all.
    pub fn queue(&self) -> &[ReadWriteWaiter] {
        &self.queue
    }

    /// The last fencing token handed out for this name (the latest write hold's; read holds
    /// carry it and take none of their own), or `None` if none was handed out within the
    /// fencing state's lifetime.
    pub fn last_fencing_token(&self) -> Option<u64> {
        self.last_fencing_token
    }
}

/// A task waiting for a read-write lock, as a [`ReadWriteLockInfo`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadWriteWaiter {
    owner: String,
    wants_write: bool,
}

impl ReadWriteWaiter {
    /// The owner id the waiter will hold the lock under (its client's
    /// [id](crate::LockClient::id), a colon, and its own).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether it waited for the write lock (`false`: for the read lock).
    pub fn wants_write(&self) -> bool {
        self.wants_write
    }
}

/// Decodes one hold of the reply, seen at server time `now_ms`: owner id, hold count,
/// milliseconds of lease left, who took it.
fn hold(items: &mut Items, now_ms: u64) -> Result<LockHolder, ParsingError> {
    let owner = items.next()?;
    let hold_count = items.next()?;
    let ttl = items.next_millis()?;
    let who = items.next::<String>()?;
    Ok(LockHolder::new(owner, hold_count, ttl, &who, now_ms))
}

/// The holds of a flat list of them (see [`hold`]).
fn holds(value: Value, now_ms: u64) -> Result<Vec<LockHolder>, ParsingError> {
    let mut items = Items::new(value, ReadWriteLockInfo::KIND)?;
    items.rest(|items| hold(items, now_ms))
}

/// Decodes the reply of `scripts/info.lua`.
impl Snapshot for ReadWriteLockInfo {
    const KIND: &'static str = "read-write lock";

    fn decode(parts: &mut Items) -> Result<Self, ParsingError> {
        let now_ms = parts.next()?;
        let writer = holds(parts.next()?, now_ms)?.into_iter().next();
        let readers = holds(parts.next()?, now_ms)?;
        let read_holds = parts.next()?;
        let token = parts.next::<String>()?;
        let (waiters, queue) = waiters(parts, |owner, wants| ReadWriteWaiter {
            owner,
            wants_write: wants == "write",
        })?;
        Ok(Self {
            name: String::new(),
            writer,
            readers,
            read_holds,
            waiters,
            queue,
            last_fencing_token: token.parse().ok(),
        })
    }

    fn named(self, name: String) -> Self {
        Self { name, ..self }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{core::reply::text, family::info::decoded};

    #[test]
    fn a_reply_decodes_into_holds_and_waiters() {
        let info: ReadWriteLockInfo = decoded(Value::Array(vec![
            Value::Int(10_000),
            Value::Array(vec![
                text("c:w"),
                Value::Int(2),
                Value::Int(900),
                text("orders api 7500"),
            ]),
            Value::Array(vec![text("c:r"), Value::Int(1), Value::Int(300), text("")]),
            Value::Int(1),
            text("1700000000000001"),
            Value::Int(2),
            Value::Array(vec![text("d:1"), text("d:2")]),
            Value::Array(vec![text("write"), text("read")]),
        ]));
        let writer = info.writer().expect("a writer");
        assert_eq!((writer.owner(), writer.hold_count()), ("c:w", 2));
        assert_eq!(writer.ttl(), Some(Duration::from_millis(900)));
        assert_eq!(writer.client_name(), Some("orders api"));
        assert_eq!(writer.held_for(), Some(Duration::from_millis(2_500)));
        let reader = &info.readers()[0];
        assert_eq!((reader.client_name(), reader.held_for()), (None, None));
        assert_eq!(info.readers().len(), 1);
        assert_eq!(info.read_holds(), 1);
        assert_eq!(info.last_fencing_token(), Some(1_700_000_000_000_001));
        let wants: Vec<_> = info
            .queue()
            .iter()
            .map(ReadWriteWaiter::wants_write)
            .collect();
        assert_eq!(wants, [true, false]);

        let info: ReadWriteLockInfo = decoded(Value::Array(vec![
            Value::Int(10_000),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Int(0),
            text(""),
            Value::Int(0),
            Value::Array(vec![]),
            Value::Array(vec![]),
        ]));
        assert!(!info.is_locked());
        assert_eq!(info.last_fencing_token(), None);
    }
}
