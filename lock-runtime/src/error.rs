//! The error type of every fallible operation in this crate.

use std::time::Duration;

/// What went wrong with a lock operation.
///
/// Every variant names the lock (or the configuration value) it is about, so a message in a log
/// says where to look. The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// wildcard arm, or use the query methods such as [`LockError::is_timeout`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock stayed held by another owner for the whole wait.
    #[error(
        "timed out after {waited:?} waiting for lock `{name}`{}",
        in_brackets(holder)
    )]
    Timeout {
        /// The lock's name, as the caller gave it.
        name: String,
        /// How long the caller waited.
        waited: Duration,
        /// Who held it at the caller's last try, when the holds recorded it (every lock and
        /// semaphore of this crate records it): the holder's client name
        /// (`LockClientBuilder::client_name`), how long it had held the lock, and how many
        /// waited in the queue; for a read-write lock, the writer ("held by orders-api (writer)
        /// for 2.1 s, 1 in the queue") or the readers, and for a semaphore the acquisitions
        /// holding permits ("held by 4 permit holders (a for 2.1 s, b for 0.4 s, c for 0.1 s,
        /// 1 more), 2 in the queue": three named at most). Read in the same script as that try.
        holder: Option<String>,
    },

    /// The lease ran out, or the lock was deleted or taken over, while the guard was held.
    #[error("lost the lease of lock `{name}`: another owner may hold it now")]
    LeaseLost {
        /// The lock's name.
        name: String,
    },

    /// The lock was not held by this owner when it was released.
    #[error("lock `{name}` was not held by this owner when it was released")]
    NotHeld {
        /// The lock's name.
        name: String,
    },

    /// The lock name cannot be used as a Redis lock key.
    #[error("invalid lock name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The lock's Redis key holds a value that is not a lock (another program uses that key).
    #[error(
        "the Redis key `{key}` of lock `{name}` holds a {found}, not a lock; rename the lock or change the key prefix"
    )]
    WrongType {
        /// The lock's name.
        name: String,
        /// The Redis key that was found occupied.
        key: String,
        /// The Redis type found at that key.
        found: String,
    },

    /// Fewer replicas than the client requires confirmed the lock in time
    /// ([`LockClientBuilder::wait_for_replicas`](crate::LockClientBuilder::wait_for_replicas)).
    /// The lock was released.
    #[error(
        "lock `{name}` reached {acknowledged} replica(s) in time, {required} required; it was released"
    )]
    NotReplicated {
        /// The lock's name.
        name: String,
        /// Replicas that confirmed.
        acknowledged: usize,
        /// Replicas required.
        required: usize,
    },

    /// Redis refused or failed a command, or could not be reached.
    #[error("Redis error while {context}")]
    Redis {
        /// What the client was doing, naming the lock or the URL.
        context: String,
        /// The error reported by the Redis client.
        #[source]
        source: redis::RedisError,
    },

    /// Some locks of a multi-lock could not be released as asked (each error says which and
    /// why); every other lock of it was released. A lock that could not be released frees
    /// itself when its lease runs out.
    #[error("releasing a multi-lock: {}", joined(failed))]
    MultiRelease {
        /// One error per lock that failed, in name order.
        failed: Vec<LockError>,
    },

    /// Fewer masters of a [`Redlock`](crate::Redlock) than its quorum answered in time (each
    /// error says why one did not): the lock could not be taken, looked at, or released on a
    /// quorum. Holds left on masters free themselves when their leases run out.
    #[error(
        "Redlock `{name}`: {answered} master(s) answered, {quorum} needed: {}",
        joined(failed)
    )]
    NoQuorum {
        /// The lock's name.
        name: String,
        /// How many masters answered.
        answered: usize,
        /// How many must: a majority.
        quorum: usize,
        /// One error per master that did not answer.
        failed: Vec<LockError>,
    },

    /// The client configuration is invalid or incomplete.
    #[error("invalid lock client configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl LockError {
    /// True if the lock could not be acquired within the wait.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// True if the lease of a held lock was lost.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }

    /// True if a release found the lock not held by this owner.
    pub fn is_not_held(&self) -> bool {
        matches!(self, Self::NotHeld { .. })
    }

    /// True if Redis failed or could not be reached.
    pub fn is_redis(&self) -> bool {
        matches!(self, Self::Redis { .. })
    }

    pub(crate) fn redis(context: impl Into<String>, source: redis::RedisError) -> Self {
        Self::Redis {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }
}

/// The messages of `errors`, joined for one line.
fn joined(errors: &[LockError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// ` (text)`, or nothing.
fn in_brackets(text: &Option<String>) -> String {
    text.as_ref()
        .map(|text| format!(" ({text})"))
        .unwrap_or_default()
}
