//! What an operator asks of a count-down latch ([`LatchInfo`]): its count and how long it has
//! left, read by the latch's own `count.lua` (already one read-only look at both), so no
//! script of its own.
//!
//! Waiters are not reported: a latch's waiters take nothing in Redis (they subscribe to its
//! channel and look at the count), so Redis has no list of them to read.

use std::time::Duration;

/// A snapshot of one count-down latch: made by
/// [`CountDownLatch::info`](crate::CountDownLatch::info).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatchInfo {
    name: String,
    count: u64,
    ttl: Option<Duration>,
}

impl LatchInfo {
    pub(crate) fn new(name: String, count: u64, ttl: Option<Duration>) -> Self {
        Self { name, count, ttl }
    }

    /// The latch's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the latch was set (its count above zero): its waiters were still waiting. A
    /// latch never set, counted down to zero, expired or deleted is not.
    pub fn is_set(&self) -> bool {
        self.count > 0
    }

    /// The count: 0 for a latch that is not set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How long the latch had left before it expires (and opens) unless counted down
    /// ([`CountDownLatch::TTL`](crate::CountDownLatch::TTL) after it was set or last counted
    /// down), or `None` if it was not set (or its key had no TTL: not set so by this crate).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}
