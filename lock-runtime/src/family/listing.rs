//! Which locks are held at all: the names of the reentrant and fair locks held under a client's
//! key prefix, found with `SCAN` on every primary (see `LockClient::held_locks`).

use std::{collections::BTreeSet, sync::Arc};

use crate::{
    core::{backend::Backend, keys::Keys, slots::SlotRange},
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
}
