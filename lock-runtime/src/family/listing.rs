//! Which primitives exist at all: the names of the locks held under a client's key prefix, and
//! of every primitive of every kind, found with `SCAN` on every primary (see
//! `LockClient::held_locks` and `LockClient::primitives`).

use std::collections::BTreeSet;

use crate::{
    core::{backend::Backend, keys::validate_name, slots::SlotRange},
    error::LockError,
    transport::config::Deployment,
};

/// How many keys one `SCAN` call looks at: small enough that Redis answers each at once.
const SCAN_COUNT: usize = 1000;

/// The names of the reentrant and fair locks held under the key prefix of the client whose
/// state is `backend` whose name matches the glob `pattern`, at most `limit` of them, sorted;
/// see [`LockClient::held_locks`](crate::LockClient::held_locks).
pub(crate) async fn held_locks(
    backend: &Backend,
    pattern: &str,
    limit: usize,
) -> Result<Vec<String>, LockError> {
    check_pattern(pattern)?;
    let prefix = &backend.config.key_prefix;
    // `{prefix:pattern}` matches the main key of every lock whose name matches `pattern`, and no
    // other key of a lock (they all go on after the closing brace); SCAN's TYPE leaves out the
    // read-write locks, semaphores and latches, whose main keys are not bare hashes at the tag.
    let matching = format!("{{{}:{pattern}}}", escape_glob(prefix));
    let mut names = BTreeSet::new();
    let mut found = |key: &str| {
        if let Some(name) = name_of(prefix, key) {
            names.insert(name);
        }
        names.len()
    };
    scan(backend, pattern, (&matching, "hash"), limit, &mut found).await?;
    Ok(names.into_iter().take(limit).collect())
}

/// What kind of primitive [`LockClient::primitives`](crate::LockClient::primitives) found under
/// a name.
///
/// The reentrant and the fair lock keep the same keys, so they are one kind here (and
/// [`Lock::info`](crate::Lock::info) describes either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PrimitiveKind {
    /// A reentrant or fair lock, held ([`LockClient::lock`](crate::LockClient::lock),
    /// [`LockClient::fair_lock`](crate::LockClient::fair_lock)).
    Lock,
    /// A read-write lock, held to read or to write
    /// ([`LockClient::read_write_lock`](crate::LockClient::read_write_lock)).
    ReadWriteLock,
    /// A semaphore whose permits were set, held or not
    /// ([`LockClient::semaphore`](crate::LockClient::semaphore)).
    Semaphore,
    /// A count-down latch, set and not yet at zero
    /// ([`LockClient::count_down_latch`](crate::LockClient::count_down_latch)).
    CountDownLatch,
}

impl PrimitiveKind {
    /// The kind in words: `"lock"`, `"read-write lock"`, `"semaphore"`, `"count-down latch"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::ReadWriteLock => "read-write lock",
            Self::Semaphore => "semaphore",
            Self::CountDownLatch => "count-down latch",
        }
    }

    /// The kind of the primitive whose main key is `{prefix:name}` followed by `rest`, and the
    /// Redis type that key has (see the primitives' layouts).
    fn of(rest: &str) -> Option<(Self, &'static str)> {
        Some(match rest {
            "" => (Self::Lock, "hash"),
            ":rw" => (Self::ReadWriteLock, "hash"),
            ":sem" => (Self::Semaphore, "hash"),
            ":latch" => (Self::CountDownLatch, "string"),
            _ => return None,
        })
    }
}

/// The primitives of every kind under the key prefix of the client whose state is `backend`
/// whose name matches the glob `pattern`, at most `limit` of them, sorted by name; see
/// [`LockClient::primitives`](crate::LockClient::primitives).
pub(crate) async fn primitives(
    backend: &Backend,
    pattern: &str,
    limit: usize,
) -> Result<Vec<(PrimitiveKind, String)>, LockError> {
    check_pattern(pattern)?;
    let prefix = &backend.config.key_prefix;
    let mut found = BTreeSet::new();
    // `{prefix:pattern}` then anything matches every key of every name matching `pattern`; a
    // key is a primitive's main key if what follows the tag names a kind and it has that
    // kind's type. Two walks: SCAN filters by one type at a time.
    let matching = format!("{{{}:{pattern}}}*", escape_glob(prefix));
    for key_type in ["hash", "string"] {
        let mut add = |key: &str| {
            if let Some((name, rest)) = split_key(prefix, key)
                && let Some((kind, expected)) = PrimitiveKind::of(rest)
                && expected == key_type
            {
                found.insert((name.to_owned(), kind));
            }
            found.len()
        };
        if scan(backend, pattern, (&matching, key_type), limit, &mut add).await? >= limit {
            break;
        }
    }
    Ok(found
        .into_iter()
        .take(limit)
        .map(|(name, kind)| (kind, name))
        .collect())
}

/// Refuses a glob no lock name can match as it is meant: braces are the hash tag's.
fn check_pattern(pattern: &str) -> Result<(), LockError> {
    if pattern.contains(['{', '}']) {
        return Err(LockError::invalid_argument(format!(
            "the pattern `{pattern}` must not contain `{{` or `}}`: no lock name does"
        )));
    }
    Ok(())
}

/// Walks the keys of type `key_type` matching the glob `matching` with `SCAN`, on every primary
/// in turn, handing each to `found`, which answers how many it has kept; stops once that
/// reaches `limit`, and answers it.
async fn scan(
    backend: &Backend,
    pattern: &str,
    (matching, key_type): (&str, &str),
    limit: usize,
    found: &mut impl FnMut(&str) -> usize,
) -> Result<usize, LockError> {
    let mut kept = 0;
    if limit == 0 {
        return Ok(kept);
    }
    // Each primary of a cluster holds its own slots' keys: walked one after the other, each
    // reached through one of its slots.
    for node in primaries(backend).await? {
        let mut cursor = 0_u64;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(matching)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg(key_type)
                .clone();
            let context = || format!("listing the locks matching `{pattern}`");
            let (next, keys): (u64, Vec<String>) = backend
                .in_context(backend.scripts.query_on(&scan, node, context))
                .await?;
            for key in &keys {
                kept = found(key);
            }
            cursor = next;
            if kept >= limit {
                return Ok(kept);
            }
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(kept)
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

/// The lock name whose main key is `key` under `prefix`, if it is one (see `Keys::new`).
fn name_of(prefix: &str, key: &str) -> Option<String> {
    match split_key(prefix, key)? {
        (name, "") => Some(name.to_owned()),
        _ => None,
    }
}

/// The valid name in the hash tag of `key` under `prefix` (`{prefix:name}`), and what follows
/// the tag.
fn split_key<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    let (name, rest) = key
        .strip_prefix('{')?
        .strip_prefix(prefix)?
        .strip_prefix(':')?
        .split_once('}')?;
    validate_name(name).ok()?;
    Some((name, rest))
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
    fn main_keys_tell_their_kind() {
        let kind = |key| {
            let (name, rest) = split_key("lock", key)?;
            Some((name, PrimitiveKind::of(rest)?.0))
        };
        assert_eq!(kind("{lock:doc:1}"), Some(("doc:1", PrimitiveKind::Lock)));
        assert_eq!(
            kind("{lock:doc:1}:rw"),
            Some(("doc:1", PrimitiveKind::ReadWriteLock))
        );
        assert_eq!(
            kind("{lock:pool}:sem"),
            Some(("pool", PrimitiveKind::Semaphore))
        );
        assert_eq!(
            kind("{lock:batch}:latch"),
            Some(("batch", PrimitiveKind::CountDownLatch))
        );
        for other in [
            "{lock:doc:1}:fence",
            "{lock:doc:1}:rw:leases",
            "{lock:}:rw",
            "x",
        ] {
            assert_eq!(kind(other), None, "{other}");
        }
    }

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
}
