//! The error type of every fallible operation in this crate.

use std::{fmt, time::Duration};

/// What went wrong with a lock operation.
///
/// Every variant names the lock (or the configuration value) it is about, so a message in a log
/// says where to look. The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// wildcard arm, or use the query methods such as [`LockError::is_timeout`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock (or the semaphore's permits) stayed held by others for the whole wait.
    ///
    /// The message names what was waited for and says how long in one unit family: "timed out
    /// after 502 ms waiting for semaphore `pool` (held by 2 permit holders (api-1 for 9.0 s,
    /// api-2 for 200 ms), 1 other caller waiting)".
    #[error(
        "timed out after {} waiting for {what} `{name}`{}",
        human_duration(*waited),
        in_brackets(holder)
    )]
    Timeout {
        /// The lock's name, as the caller gave it.
        name: String,
        /// What was waited for: `"lock"`, `"fair lock"`, `"read lock"`, `"write lock"`,
        /// `"semaphore"`, `"count-down latch"` or `"Redlock"` (a multi-lock names the member
        /// lock that stayed held).
        what: &'static str,
        /// How long the caller waited.
        waited: Duration,
        /// Who held it at the caller's last try, when the holds recorded it (every lock and
        /// semaphore of this crate records it): the holder's client name
        /// (`LockClientBuilder::client_name`), how long it had held the lock, and how many
        /// other callers waited in the queue (the caller itself not counted); for a read-write
        /// lock, the writer ("held by orders-api (writer) for 2.1 s, 1 other caller waiting")
        /// or the readers, and for a semaphore the acquisitions holding permits ("held by 4
        /// permit holders (a for 2.1 s, b for 400 ms, c for 100 ms, 1 more), 2 other callers
        /// waiting": three named at most). Read in the same script as that try.
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

    /// The Redis key of a lock (or of a read-write lock, a semaphore, a latch) holds a value
    /// of another type: another program uses that key.
    #[error(
        "the Redis key `{key}` of `{name}` holds a {found}, not lock-runtime's data; use another name or change the key prefix"
    )]
    WrongType {
        /// The name of the lock (or other primitive).
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
    ///
    /// The message ends with the Redis client's own ("… while connecting to
    /// redis://127.0.0.1:1: Connection refused (os error 111)"), so one log line tells the
    /// cause; [`source`](std::error::Error::source) still gives the [`redis::RedisError`] (whose
    /// message a report walking the sources may therefore repeat, as redis-rs's own errors do).
    #[error("Redis error while {context}: {source}")]
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

    /// A mistake of the caller's, refused before anything changed: the client's configuration
    /// (a setting of [`LockClientBuilder`](crate::LockClientBuilder) or
    /// [`RedlockBuilder`](crate::RedlockBuilder), a URL, a certificate), an argument of one call
    /// out of range, or a call the state it is made in does not allow. `mistake` says which, and
    /// the message begins with it ("invalid lock client configuration: …", "invalid argument:
    /// …", "misuse: …").
    #[error("{mistake}: {message}")]
    Config {
        /// Which kind of mistake.
        mistake: Mistake,
        /// What is wrong and how to fix it; names the lock where there is one.
        message: String,
    },
}

/// Which kind of mistake a [`LockError::Config`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mistake {
    /// The client's configuration is invalid or incomplete. Found at `build()` or `connect()`,
    /// before anything is sent.
    Configuration,
    /// An argument of one call is out of range or cannot be used, whatever the state in Redis:
    /// a lease outside 1 ms ..= 1 year, zero permits, a latch count of zero, a multi-lock of no
    /// names, a glob with braces, a command that cannot run as a lock-checked write.
    InvalidArgument,
    /// A call that the state it is made in does not allow, refused at once instead of waiting
    /// forever or doing the wrong thing: acquiring from a semaphore whose permits were never
    /// set, or more permits than its total; the write lock asked under the same lock's read
    /// hold (an upgrade); `lock_runtime::exec` with no lock held around it, or under a read
    /// hold; the attribute with no client given and no default client; any request of a client
    /// whose runtime, given with
    /// [`LockClientBuilder::background_runtime`](crate::LockClientBuilder::background_runtime),
    /// has shut down.
    Misuse,
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Configuration => "invalid lock client configuration",
            Self::InvalidArgument => "invalid argument",
            Self::Misuse => "misuse",
        })
    }
}

/// The error of a Redis command run with `?` in code that returns [`LockError`] (such as a
/// `#[distribute_lock]` body): a [`LockError::Redis`] "while running a command".
impl From<redis::RedisError> for LockError {
    fn from(source: redis::RedisError) -> Self {
        Self::redis("running a command", source)
    }
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

    /// True for every mistake of the caller's ([`LockError::Config`]): the client's
    /// configuration, an invalid argument or a misuse.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config { .. })
    }

    /// The kind of mistake, for a [`LockError::Config`].
    pub fn mistake(&self) -> Option<Mistake> {
        match self {
            Self::Config { mistake, .. } => Some(*mistake),
            _ => None,
        }
    }

    /// True if an argument of the call was refused ([`Mistake::InvalidArgument`]).
    pub fn is_invalid_argument(&self) -> bool {
        self.mistake() == Some(Mistake::InvalidArgument)
    }

    /// True if the call is not allowed in the state it was made in ([`Mistake::Misuse`]).
    pub fn is_misuse(&self) -> bool {
        self.mistake() == Some(Mistake::Misuse)
    }

    pub(crate) fn redis(context: impl Into<String>, source: redis::RedisError) -> Self {
        Self::Redis {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::mistaken(Mistake::Configuration, message)
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::mistaken(Mistake::InvalidArgument, message)
    }

    pub(crate) fn misuse(message: impl Into<String>) -> Self {
        Self::mistaken(Mistake::Misuse, message)
    }

    fn mistaken(mistake: Mistake, message: impl Into<String>) -> Self {
        Self::Config {
            mistake,
            message: message.into(),
        }
    }
}

/// A duration as the messages give it, in one family of units whatever its size: whole
/// microseconds under a millisecond, whole milliseconds under a second, then seconds to a
/// tenth ("850 µs", "502 ms", "1.8 s", "125.0 s").
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        format!("{} µs", duration.as_micros())
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_one_family_of_units() {
        assert_eq!(human_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(human_duration(Duration::from_nanos(502_485_790)), "502 ms");
        assert_eq!(human_duration(Duration::from_millis(1_849)), "1.8 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "125.0 s");
    }
}
