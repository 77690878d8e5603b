//! Redis key names of a lock.
//!
//! Every key of one lock (the lock itself, its fencing counter, its unlock channel and its request
//! memos) starts with the same hash tag `{prefix:name}`, so all of them live in one hash slot: each
//! script touches a single slot and runs unchanged on Redis Cluster.

use std::sync::Arc;

use crate::LockError;

/// The Redis names derived from one lock name.
///
/// Only the lock key is kept; the others are derived when a request needs them, so that a task
/// waiting for a lock holds as little as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockKeys {
    /// The lock's name as the user gave it, shared with its [`Lock`](crate::Lock) handle.
    pub(crate) name: Arc<str>,
    /// The lock key: a hash of owner id -> hold count. Also the hash tag of every other key.
    pub(crate) lock: String,
}

impl LockKeys {
    /// Derives the keys of `name` under `prefix`, or says why the name cannot be used.
    pub(crate) fn new(prefix: &str, name: &Arc<str>) -> Result<Self, LockError> {
        validate_name(name)?;
        Ok(Self {
            name: Arc::clone(name),
            lock: format!("{{{prefix}:{name}}}"),
        })
    }

    /// The fencing counter; outlives the lock.
    pub(crate) fn fence(&self) -> String {
        format!("{}:fence", self.lock)
    }

    /// The channel that announces releases.
    pub(crate) fn channel(&self) -> String {
        format!("{}:unlock", self.lock)
    }

    /// The memo key of one request (see the scripts' headers).
    pub(crate) fn memo(&self, request_id: &str) -> String {
        format!("{}:memo:{request_id}", self.lock)
    }
}

/// Checks a lock name (or key prefix) for what would break the key scheme.
pub(crate) fn validate_name(name: &str) -> Result<(), LockError> {
    let reason = if name.is_empty() {
        "a lock name must not be empty"
    } else if name.contains(['{', '}']) {
        "a lock name must not contain `{` or `}`: the client wraps it in a Redis Cluster hash tag"
    } else {
        return Ok(());
    };
    Err(LockError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_one_hash_tag() {
        let keys = LockKeys::new("app", &Arc::from("stock:42")).expect("valid name");
        assert_eq!(keys.lock, "{app:stock:42}");
        for key in [&keys.fence(), &keys.channel(), &keys.memo("r1")] {
            assert!(key.starts_with("{app:stock:42}:"), "{key}");
        }
    }

    #[test]
    fn empty_and_braced_names_are_refused() {
        for name in ["", "a{b", "a}b", "{x}"] {
            let err = LockKeys::new("app", &Arc::from(name)).expect_err(name);
            assert!(matches!(err, LockError::InvalidName { .. }), "{err}");
        }
    }
}
