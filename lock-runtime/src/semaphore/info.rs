//! What an operator asks of a semaphore ([`SemaphoreInfo`]): its total, the permits free, who
//! holds permits and who waits, read in one read-only script (`scripts/info.lua`). Like the
//! lock's `info.lua`, it is not among the semaphore's `SOURCES` (the scripts whose commands
//! tests and the benchmark count).

use std::time::Duration;

use redis::ParsingError;

use crate::{
    core::reply::Items,
    family::info::{Snapshot, recorded, waiters},
};

/// A snapshot of one semaphore, as Redis held it at one instant: made by
/// [`Semaphore::info`](crate::Semaphore::info).
///
/// Read in one atomic script, so its parts agree with each other. An acquisition whose lease
/// ended counts as gone and its permits as free, as [`available_permits`] counts them. Each
/// acquisition holding permits is a [`PermitHolder`]: its permit id (which starts with the
/// holder's client [id](crate::LockClient::id)), its client's name, how long it has held, its
/// permits and its lease left.
///
/// [`available_permits`]: crate::Semaphore::available_permits
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemaphoreInfo {
    name: String,
    total: Option<u64>,
    used: u64,
    holders: Vec<PermitHolder>,
    acquisitions: u64,
    waiters: u64,
    queue: Vec<PermitWaiter>,
}

impl SemaphoreInfo {
    /// The semaphore's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The permits in all, or `None` if they were never set
    /// ([`try_set_permits`](crate::Semaphore::try_set_permits)).
    pub fn total_permits(&self) -> Option<u64> {
        self.total
    }

    /// The permits held.
    pub fn used_permits(&self) -> u64 {
        self.used
    }

    /// The permits nobody held (0 if the permits were never set).
    pub fn available_permits(&self) -> u64 {
        self.total.unwrap_or(0).saturating_sub(self.used)
    }

    /// The acquisitions holding permits, soonest lease end first: at most the first 100, while
    /// [`acquisitions`](Self::acquisitions) counts all.
    pub fn holders(&self) -> &[PermitHolder] {
        &self.holders
    }

    /// How many acquisitions held permits.
    pub fn acquisitions(&self) -> u64 {
        self.acquisitions
    }

    /// How many tasks waited for permits, in every process: the queued waiters still live (as
    /// [`LockInfo::waiters`](crate::LockInfo::waiters) counts them).
    pub fn waiters(&self) -> u64 {
        self.waiters
    }

    /// The live waiters, longest-queued first: at most the first 100, while
    /// [`waiters`](Self::waiters) counts all.
    pub fn queue(&self) -> &[PermitWaiter] {
        &self.queue
    }
}

/// One acquisition of a semaphore's permits, as a [`SemaphoreInfo`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PermitHolder {
    id: String,
    client_name: Option<String>,
    held_for: Option<Duration>,
    permits: u64,
    ttl: Option<Duration>,
}

impl PermitHolder {
    /// The permit id ([`SemaphorePermit::id`](crate::SemaphorePermit::id)): its client's
    /// [id](crate::LockClient::id), a colon, and its own. Release it from anywhere with
    /// [`Semaphore::release_by_id`](crate::Semaphore::release_by_id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The holder's client name
    /// ([`LockClientBuilder::client_name`](crate::LockClientBuilder::client_name): by default
    /// the host's name and the process id), or `None` if the acquisition recorded none.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// How long the acquisition had held its permits, or `None` if it recorded no start: from the
    /// acquiring client's clock to Redis's (see [`LockHolder::held_for`](crate::LockHolder::held_for)).
    pub fn held_for(&self) -> Option<Duration> {
        self.held_for
    }

    /// How many permits it held.
    pub fn permits(&self) -> u64 {
        self.permits
    }

    /// How long its lease had left (in watchdog mode, until the next renewal extends it), or
    /// `None` if its key had no expiry (never set so by this crate).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

/// A task waiting for a semaphore's permits, as a [`SemaphoreInfo`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PermitWaiter {
    id: String,
    permits: u64,
}

impl PermitWaiter {
    /// The permit id it will hold its permits under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many permits it waited for.
    pub fn permits(&self) -> u64 {
        self.permits
    }
}

/// Decodes the reply of `scripts/info.lua`.
impl Snapshot for SemaphoreInfo {
    const KIND: &'static str = "semaphore";

    fn decode(parts: &mut Items) -> Result<Self, ParsingError> {
        let now_ms = parts.next()?;
        let total = parts.next::<String>()?.parse().ok();
        let used = parts.next()?;
        let holders = Items::new(parts.next()?, Self::KIND)?.rest(|held| {
            let (id, permits, ttl) = (held.next()?, held.next()?, held.next_millis()?);
            let (client_name, held_for) = recorded(&held.next::<String>()?, now_ms);
            Ok(PermitHolder {
                id,
                client_name,
                held_for,
                permits,
                ttl,
            })
        })?;
        let acquisitions = parts.next()?;
        let (waiters, queue) = waiters(parts, |id, wants| PermitWaiter {
            id,
            permits: wants.parse().unwrap_or(1),
        })?;
        Ok(Self {
            name: String::new(),
            total,
            used,
            holders,
            acquisitions,
            waiters,
            queue,
        })
    }

    fn named(self, name: String) -> Self {
        Self { name, ..self }
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;
    use crate::{core::reply::text, family::info::decoded};

    #[test]
    fn a_reply_decodes_into_permits_holders_and_waiters() {
        let info: SemaphoreInfo = decoded(Value::Array(vec![
            Value::Int(10_000),
            text("5"),
            Value::Int(3),
            Value::Array(vec![
                text("c:1"),
                Value::Int(3),
                Value::Int(1_500),
                text("one 9000"),
            ]),
            Value::Int(1),
            Value::Int(1),
            Value::Array(vec![text("d:1")]),
            Value::Array(vec![text("4")]),
        ]));
        assert_eq!(info.total_permits(), Some(5));
        assert_eq!((info.used_permits(), info.available_permits()), (3, 2));
        let holder = &info.holders()[0];
        assert_eq!((holder.id(), holder.permits()), ("c:1", 3));
        assert_eq!(holder.ttl(), Some(Duration::from_millis(1_500)));
        assert_eq!(holder.client_name(), Some("one"));
        assert_eq!(holder.held_for(), Some(Duration::from_secs(1)));
        assert_eq!(info.queue()[0].permits(), 4);

        let info: SemaphoreInfo = decoded(Value::Array(vec![
            Value::Int(10_000),
            text(""),
            Value::Int(0),
            Value::Array(vec![]),
            Value::Int(0),
            Value::Int(0),
            Value::Array(vec![]),
            Value::Array(vec![]),
        ]));
        assert_eq!((info.total_permits(), info.available_permits()), (None, 0));
    }
}
