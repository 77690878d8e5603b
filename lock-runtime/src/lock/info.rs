//! What an operator asks of a lock: who holds it, since when, who waits ([`LockInfo`]), and which
//! locks are held at all ([`held_locks`]).
//!
//! The reentrant and the fair lock keep the same keys, so one read-only script
//! (`scripts/info.lua`) describes both. It is not among the lock's `sources()`: those are the
//! scripts of acquiring and releasing, whose commands the benchmark counts.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use once_cell::sync::Lazy;
use redis::{FromRedisValue, ParsingError, Value};

use crate::{
    LockClient, LockError,
    core::{
        backend::Backend,
        keys::Keys,
        script::{Flagged, Items, unexpected},
        slots::SlotRange,
    },
    lock::{EXCLUSIVE, acquisition::Layout, scripts::split_record},
    transport::config::Deployment,
};

/// How many waiters' owner ids a [`LockInfo`] lists at most, longest-queued first (it counts
/// them all).
pub(crate) const QUEUE_SHOWN: usize = 100;

/// How many keys one `SCAN` call looks at: small enough that Redis answers each at once.
const SCAN_COUNT: usize = 1000;

/// `scripts/info.lua` as sent: declared read-only, with `scripts/inspect.lua` in front.
const INFO_SOURCE: &str = concat!(
    "#!lua flags=no-writes\n",
    include_str!("scripts/inspect.lua"),
    include_str!("scripts/info.lua")
);

/// Describe a reentrant or fair lock without changing it; see `scripts/info.lua`.
pub(crate) static INFO: Lazy<Flagged> = Lazy::new(|| Flagged::new(INFO_SOURCE));

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

    /// The holder's owner id: its client's [id](LockClient::id), a colon, and the id of the
    /// scope holding the lock.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The holder's client name ([`LockClientBuilder::client_name`](crate::LockClientBuilder::client_name):
    /// by default the host's name and the process id), or `None` if the hold recorded none.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// How long the holder had held the lock, by the Redis server's clock, or `None` if the hold
    /// recorded no start. Re-entries do not restart it.
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

/// A hold's record of who took it, `who` ("<client name> <server ms>", see [`split_record`]),
/// read at server time `now_ms`: the client's name, and how long it has held.
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

/// The reply of a primitive's `info.lua`, decoded by its [`Snapshot`].
enum Described<T> {
    Found(T),
    /// The primitive's key holds another type.
    WrongType {
        found: String,
    },
}

impl<T: Snapshot> FromRedisValue for Described<T> {
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

/// The snapshot of `name`, a primitive of `layout` (one whose holds each have a lease: the
/// read-write lock, the semaphore), by `script`, its `info.lua`. Every such script takes the
/// family's keys (main, fencing state, queue, liveness, wants, leases) and how many holds and
/// waiters to list.
pub(crate) async fn describe<T: Snapshot>(
    script: &Flagged,
    layout: &Layout,
    client: &LockClient,
    name: &Arc<str>,
) -> Result<T, LockError> {
    let backend = &client.backend;
    let keys = layout.keys(backend, name)?;
    let mut call = script.for_server(backend).prepare_invoke();
    call.key(&keys.main)
        .key(keys.fence())
        .key(keys.queue())
        .key(keys.alive())
        .key(keys.wants())
        .key(keys.leases())
        .arg(QUEUE_SHOWN);
    let context = || format!("describing {} `{}`", T::KIND, keys.name);
    let described = backend.in_context(backend.scripts.eval::<Described<T>>(&call, None, context));
    match described.await?.reply {
        Described::Found(snapshot) => Ok(snapshot.named(name.to_string())),
        Described::WrongType { found } => Err(keys.wrong_type(Some(found))),
    }
}

/// The snapshot of the reentrant or fair lock `name` (they share their keys).
pub(crate) async fn info(client: &LockClient, name: &Arc<str>) -> Result<LockInfo, LockError> {
    let backend = &client.backend;
    let keys = EXCLUSIVE.keys(backend, name)?;
    let mut call = INFO.for_server(backend).prepare_invoke();
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
            name: name.to_string(),
            holder,
            waiters,
            queue,
            last_fencing_token,
        }),
        Inspected::WrongType { found } => Err(keys.wrong_type(Some(found))),
    }
}

/// The names of the reentrant and fair locks held under `client`'s key prefix whose name matches
/// the glob `pattern`, at most `limit` of them, sorted; see [`LockClient::held_locks`].
pub(crate) async fn held_locks(
    client: &LockClient,
    pattern: &str,
    limit: usize,
) -> Result<Vec<String>, LockError> {
    let backend = &client.backend;
    if pattern.contains(['{', '}']) {
        return Err(LockError::config(format!(
            "the pattern `{pattern}` must not contain `{{` or `}}`: no lock name does"
        )));
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    let prefix = &backend.config.key_prefix;
    // `{prefix:pattern}` matches the main key of every lock whose name matches `pattern`, and no
    // other key of a lock (they all go on after the closing brace); SCAN's TYPE leaves out the
    // read-write locks, semaphores and latches, whose main keys are not bare hashes at the tag.
    let matching = format!("{{{}:{pattern}}}", escape_glob(prefix));
    let mut names = BTreeSet::new();
    // Each primary of a cluster holds its own slots' keys: walked one after the other, each
    // reached through one of its slots.
    for node in primaries(backend).await? {
        let mut cursor = 0_u64;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&matching)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg("hash")
                .clone();
            let context = || format!("listing the locks matching `{pattern}`");
            let (next, keys): (u64, Vec<String>) = backend
                .in_context(backend.scripts.query_on(&scan, node, context))
                .await?;
            names.extend(keys.iter().filter_map(|key| name_of(prefix, key)));
            cursor = next;
            if names.len() >= limit {
                return Ok(names.into_iter().take(limit).collect());
            }
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(names.into_iter().take(limit).collect())
}

/// The nodes whose keys make up the deployment, each as a slot it serves, through which a
/// command reaches it: one Redis (or a Sentinel-managed primary) is `[None]`; a cluster is each primary's first slot, from
/// `CLUSTER SLOTS`.
async fn primaries(backend: &Backend) -> Result<Vec<Option<u16>>, LockError> {
    if !matches!(backend.config.deployment, Deployment::Cluster(_)) {
        return Ok(vec![None]);
    }
    let slots = redis::cmd("CLUSTER").arg("SLOTS").clone();
    let context = || "listing the primaries of the Redis Cluster".to_owned();
    let ranges: Vec<SlotRange> = backend
        .in_context(backend.scripts.query(&slots, context))
        .await?;
    let mut seen = BTreeSet::new();
    Ok(ranges
        .into_iter()
        .filter(|range| seen.insert(range.primary.clone()))
        .map(|range| Some(range.start))
        .collect())
}

/// The lock name whose main key is `key` under `prefix`, if it is one (see [`Keys::new`]).
fn name_of(prefix: &str, key: &str) -> Option<String> {
    let name = key
        .strip_prefix('{')?
        .strip_prefix(prefix)?
        .strip_prefix(':')?
        .strip_suffix('}')?;
    let keys = Keys::new(prefix, &Arc::from(name)).ok()?;
    (keys.main == key).then(|| name.to_owned())
}

/// `text` with the characters that mean something in a Redis glob escaped, so it matches itself.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_main_keys_name_a_lock() {
        assert_eq!(name_of("lock", "{lock:stock:42}"), Some("stock:42".into()));
        assert_eq!(name_of("lock", "{lock:stock:42}:fence"), None);
        assert_eq!(name_of("lock", "{other:stock:42}"), None);
        assert_eq!(name_of("lock", "{lock:}"), None);
        assert_eq!(name_of("lock", "{lock:a{b}"), None);
    }

    #[test]
    fn a_prefix_matches_itself_only() {
        assert_eq!(escape_glob("app*[1]?\\"), "app\\*\\[1\\]\\?\\\\");
    }

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
