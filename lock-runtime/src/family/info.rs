//! What an operator asks of a lock of the family: who holds it, since when, who waits.
//!
//! The reentrant and the fair lock keep the same keys, so one read-only script
//! (`scripts/info.lua`) describes both ([`LockInfo`]). A primitive whose holds each have a lease
//! (the read-write lock, the semaphore) describes itself with an `info.lua` of its own that
//! answers in the same frame, decoded by its [`Snapshot`] ([`describe`]); each hold is a
//! [`LockHolder`]. None of these scripts is among the `SOURCES`: those are the scripts of
//! acquiring and releasing, whose commands the benchmark counts.

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, Value};

use crate::{
    core::{
        lua::LuaScript,
        reply::{Items, unexpected},
    },
    error::LockError,
    family::{
        flavor::{Layout, ONE_OWNER},
        handle::Handle,
        replies::split_record,
        scripts::INFO,
    },
};

/// How many waiters' owner ids a [`LockInfo`] lists at most, longest-queued first (it counts
/// them all).
pub(crate) const QUEUE_SHOWN: usize = 100;

/// A snapshot of one reentrant or fair lock, as Redis held it at one instant: made by
/// [`Lock::info`](crate::Lock::info) and [`FairLock::info`](crate::FairLock::info).
///
/// The snapshot is read in one atomic script, so its parts agree with each other; by the time
/// it is read, the lock may have changed hands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    name: String,
    holder: Option<LockHolder>,
    waiters: u64,
    queue: Vec<String>,
    last_fencing_token: Option<u64>,
}

impl LockInfo {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether anyone held the lock.
    pub fn is_held(&self) -> bool {
        self.holder.is_some()
    }

    /// Who held the lock, or `None` if it was free.
    pub fn holder(&self) -> Option<&LockHolder> {
        self.holder.as_ref()
    }

    /// How many tasks waited for the lock, in every process: the queued waiters still live
    /// (each waiting task renews its liveness at every try; one whose process died stops
    /// counting one `watchdog_timeout` after its last try).
    pub fn waiters(&self) -> u64 {
        self.waiters
    }

    /// The owner ids of the live waiters, longest-queued first (the order in which the fair
    /// lock serves them): at most the first 100, while [`waiters`](Self::waiters) counts all.
    pub fn queue(&self) -> &[String] {
        &self.queue
    }

    /// The last fencing token handed out for this name (the holder's, if it took the lock
    /// last), or `None` if none was handed out within the fencing state's lifetime (ten minutes
    /// after it started counting).
    pub fn last_fencing_token(&self) -> Option<u64> {
        self.last_fencing_token
    }
}

/// Who held a lock, as a [`LockInfo`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockHolder {
    owner: String,
    client_name: Option<String>,
    held_for: Option<Duration>,
    hold_count: u64,
    ttl: Option<Duration>,
}

impl LockHolder {
    /// The hold of `owner` whose record of who took it is `who` (see [`recorded`]), seen at
    /// server time `now_ms`.
    pub(crate) fn new(
        owner: String,
        hold_count: u64,
        ttl: Option<Duration>,
        who: &str,
        now_ms: u64,
    ) -> Self {
        let (client_name, held_for) = recorded(who, now_ms);
        Self {
            owner,
            client_name,
            held_for,
            hold_count,
            ttl,
        }
    }

    /// The holder's owner id: its client's [id](crate::LockClient::id), a colon, and the id of the
    /// scope holding the lock.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The holder's client name ([`LockClientBuilder::client_name`](crate::LockClientBuilder::client_name):
    /// by default the host's name and the process id), or `None` if the hold recorded none.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// How long the holder had held the lock, or `None` if the hold recorded no start.
    /// Re-entries do not restart it. The start is read from the acquiring client's clock (from
    /// Redis's for a fair lock handed over by its release) and the end from Redis's: clocks that
    /// disagree by a second make it a second off, and it never reads below zero.
    pub fn held_for(&self) -> Option<Duration> {
        self.held_for
    }

    /// How many holds the owner had: 1, plus one per re-entry not yet released.
    pub fn hold_count(&self) -> u64 {
        self.hold_count
    }

    /// How long the lease had left (in watchdog mode, until the next renewal extends it), or
    /// `None` if the lock's key had no expiry (never set so by this crate).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

/// The reply of `scripts/info.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inspected {
    /// The lock as it stood (held or free).
    Found {
        holder: Option<LockHolder>,
        waiters: u64,
        queue: Vec<String>,
        last_fencing_token: Option<u64>,
    },
    /// The lock's key holds another type.
    WrongType { found: String },
}

impl FromRedisValue for Inspected {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "info")?;
        let status = items.next::<i64>()?;
        if status == -1 {
            return Ok(Self::WrongType {
                found: items.next()?,
            });
        }
        if status != 0 && status != 1 {
            return Err(unexpected("info", status));
        }
        let now_ms = items.next::<u64>()?;
        let ttl = items.next_millis()?;
        let owner = items.next::<String>()?;
        let hold_count = items.next::<u64>()?;
        let who = items.next::<String>()?;
        let token = items.next::<String>()?;
        let waiters = items.next::<u64>()?;
        let queue = items.next::<Vec<String>>()?;
        let holder = (status == 1).then(|| LockHolder::new(owner, hold_count, ttl, &who, now_ms));
        Ok(Self::Found {
            holder,
            waiters,
            queue,
            last_fencing_token: token.parse().ok(),
        })
    }
}

/// A hold's record of who took it, `who` (`"<client name> <ms>"`, see [`split_record`]), read at
/// server time `now_ms`: the client's name, and how long it has held.
pub(crate) fn recorded(who: &str, now_ms: u64) -> (Option<String>, Option<Duration>) {
    let (name, since_ms) = split_record(who);
    (
        name.map(str::to_owned),
        since_ms.map(|since| Duration::from_millis(now_ms.saturating_sub(since))),
    )
}

/// A snapshot decoded from the reply of its primitive's `info.lua`, which answers
/// `{1, parts...}`, or `{-1, type}` when the primitive's key holds another type: the snapshot
/// decodes the parts, and [`describe`] names it.
pub(crate) trait Snapshot: Sized {
    /// What the primitive is called in errors: "read-write lock", "semaphore".
    const KIND: &'static str;

    /// The snapshot from the parts of the reply, after its status.
    fn decode(parts: &mut Items) -> Result<Self, ParsingError>;

    /// The snapshot, of the primitive called `name`.
    fn named(self, name: String) -> Self;
}

/// The live waiters that a primitive's `info.lua` lists last, as `inspect.lua` reads them: how
/// many there were, and the first [`QUEUE_SHOWN`] of them in queue order, each made by `waiter`
/// from its id and what it wants (`read` or `write`, a number of permits).
pub(crate) fn waiters<W>(
    parts: &mut Items,
    waiter: impl Fn(String, String) -> W,
) -> Result<(u64, Vec<W>), ParsingError> {
    let count = parts.next()?;
    let ids = parts.next::<Vec<String>>()?;
    let wants = parts.next::<Vec<String>>()?;
    let queue = ids
        .into_iter()
        .zip(wants)
        .map(|(id, wants)| waiter(id, wants))
        .collect();
    Ok((count, queue))
}

/// The reply of a primitive's `info.lua`, decoded by its [`Snapshot`].
enum SnapshotReply<T> {
    Found(T),
    /// The primitive's key holds another type.
    WrongType {
        found: String,
    },
}

impl<T: Snapshot> FromRedisValue for SnapshotReply<T> {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, T::KIND)?;
        match items.next::<i64>()? {
            1 => Ok(Self::Found(T::decode(&mut items)?)),
            -1 => Ok(Self::WrongType {
                found: items.next()?,
            }),
            other => Err(unexpected(T::KIND, other)),
        }
    }
}

/// The snapshot of `handle`'s resource, a primitive of `layout` (one whose holds each have a
/// lease: the read-write lock, the semaphore), by `script`, its `info.lua`. Every such script
/// takes the family's keys (main, fencing state, queue, liveness, wants, leases, and the
/// semaphore's lone lease) and how many holds and waiters to list.
pub(crate) async fn describe<T: Snapshot>(
    script: &'static LuaScript,
    layout: &Layout,
    handle: &Handle,
) -> Result<T, LockError> {
    let backend = &handle.backend;
    let keys = handle.keys(layout)?;
    let mut call = script.prepare_invoke(backend.scripts.calls());
    call.key(&keys.main)
        .key(keys.fence())
        .key(keys.queue())
        .key(keys.alive())
        .key(keys.wants());
    layout.with_leases(&mut call, &keys).arg(QUEUE_SHOWN);
    let context = || format!("describing {} `{}`", T::KIND, keys.name);
    let described = backend.in_context(
        backend
            .scripts
            .eval::<SnapshotReply<T>>(&call, None, context),
    );
    match described.await?.reply {
        SnapshotReply::Found(snapshot) => Ok(snapshot.named(handle.name.to_string())),
        SnapshotReply::WrongType { found } => Err(keys.wrong_type(Some(found))),
    }
}

/// The snapshot decoded from `reply`, the parts of an `info.lua` reply after its status: for the
/// tests of each [`Snapshot`].
#[cfg(test)]
pub(crate) fn decoded<T: Snapshot>(reply: Value) -> T {
    let mut items = Items::new(reply, "test").expect("an array");
    T::decode(&mut items).expect("decodes")
}

/// The snapshot of `handle`'s reentrant or fair lock (they share their keys).
pub(crate) async fn info(handle: &Handle) -> Result<LockInfo, LockError> {
    let backend = &handle.backend;
    let keys = handle.keys(&ONE_OWNER)?;
    let mut call = INFO.prepare_invoke(backend.scripts.calls());
    call.key(&keys.main)
        .key(keys.fence())
        .key(keys.queue())
        .key(keys.alive())
        .arg(QUEUE_SHOWN);
    let context = || format!("describing lock `{}`", keys.name);
    let inspected = backend.in_context(backend.scripts.eval::<Inspected>(&call, None, context));
    match inspected.await?.reply {
        Inspected::Found {
            holder,
            waiters,
            queue,
            last_fencing_token,
        } => Ok(LockInfo {
            name: handle.name.to_string(),
            holder,
            waiters,
            queue,
            last_fencing_token,
        }),
        Inspected::WrongType { found } => Err(keys.wrong_type(Some(found))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply of `info.lua` for a held lock whose `~who` record is `who`, at server time 10 s.
    fn held_by(who: &str) -> Value {
        Value::Array(vec![
            Value::Int(1),
            Value::Int(10_000),
            Value::Int(2_500),
            Value::BulkString(b"client:7".to_vec()),
            Value::Int(2),
            Value::BulkString(who.as_bytes().to_vec()),
            Value::BulkString(b"1700000000000001".to_vec()),
            Value::Int(1),
            Value::Array(vec![Value::BulkString(b"client:8".to_vec())]),
        ])
    }

    fn holder_of(reply: Value) -> LockHolder {
        match Inspected::from_redis_value(reply).expect("decodes") {
            Inspected::Found {
                holder: Some(holder),
                waiters: 1,
                queue,
                last_fencing_token: Some(1_700_000_000_000_001),
            } if queue == ["client:8"] => holder,
            other => panic!("expected a held lock, one waiter, a token: {other:?}"),
        }
    }

    #[test]
    fn a_reply_decodes_into_names() {
        let holder = holder_of(held_by("orders api 9000"));
        assert_eq!(holder.owner(), "client:7");
        assert_eq!(holder.client_name(), Some("orders api"));
        assert_eq!(holder.held_for(), Some(Duration::from_secs(1)));
        assert_eq!(holder.ttl(), Some(Duration::from_millis(2_500)));
        assert_eq!(holder.hold_count(), 2);

        let holder = holder_of(held_by("orders api 7_400"));
        assert_eq!(holder.client_name(), Some("orders api 7_400"));
        assert_eq!(holder.held_for(), None);
        let holder = holder_of(held_by(""));
        assert_eq!((holder.client_name(), holder.held_for()), (None, None));

        let short = Value::Array(vec![Value::Int(0)]);
        assert!(Inspected::from_redis_value(short).is_err());
        let odd = Value::Array(vec![Value::Int(7), Value::Int(0)]);
        assert!(Inspected::from_redis_value(odd).is_err());
    }
}
