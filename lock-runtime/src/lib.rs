//! Redis distributed locks for async Rust.
//!
//! `lock-runtime` gives async services what Redisson gives Java ones: a reentrant lock held in
//! Redis, taken with an atomic Lua script, waited for through pub/sub instead of polling, kept
//! alive by a lease watchdog, released on every exit path, and handing out fencing tokens.
//!
//! ```
//! # lock_tests::locks::run_with_redis(|url| async move {
//! use std::time::Duration;
//! use lock_runtime::LockClient;
//!
//! let client = LockClient::connect(&url).await?;
//! let lock = client.lock("stock:42");
//!
//! // Wait up to 5 s for the lock; hold it at most 3 s.
//! let guard = lock.try_acquire(Duration::from_secs(5), Some(Duration::from_secs(3))).await?;
//! let token = guard.fencing_token(); // pass it along with every write the lock protects
//! assert!(lock.is_locked().await?);
//! guard.unlock().await?;
//! assert!(!lock.is_locked().await?);
//!
//! // Without a lease, the watchdog renews the lock for as long as the guard lives,
//! // and dropping the guard releases it.
//! let guard = lock.acquire().await?;
//! assert!(guard.fencing_token() > token);
//! drop(guard);
//! # Ok::<(), lock_runtime::LockError>(())
//! # });
//! ```
//!
//! # How it works
//!
//! - **One client, two connections.** A [`LockClient`] holds one multiplexed command connection
//!   and one pub/sub connection, whatever the number of locks and waiting tasks; clones share them.
//! - **Atomic scripts.** Acquire, release, renew and force-unlock are each one Lua script
//!   (`src/scripts/*.lua`) run with `EVALSHA`. Every key of one lock shares a hash tag
//!   (`{prefix:name}`), so each script touches one slot.
//! - **Waiting without polling.** A task that finds the lock taken joins the lock's channel in the
//!   client's subscription hub and sleeps until a release message wakes it, never longer than the
//!   holder's remaining TTL. One subscription serves every local waiter of a lock, and one
//!   release wakes one local waiter.
//! - **Leases.** A fixed lease (`try_acquire(wait, Some(lease))`) is never renewed. Without one,
//!   the lock is set with the client's `watchdog_timeout` (30 s by default) and renewed every
//!   third of it while the guard lives. Either way the guard knows its deadline, measured on the
//!   monotonic clock with a drift margin, and [`LockGuard::lease_lost`] resolves when the lease is
//!   known lost.
//! - **Reentrancy by scope.** Inside [`LockGuard::scope`], acquiring the same lock again
//!   re-enters it instead of deadlocking. Ownership follows that scope, not a thread or a task.
//! - **Fencing tokens.** Each fresh acquisition gets a token strictly greater than every earlier
//!   one for that name; [`fencing_token`] returns the innermost one inside a scope.
//! - **Safe to resend.** Releases and re-entries carry request ids the scripts remember, and a
//!   fresh acquisition's owner id is unique to it, so a command resent after a timeout or a
//!   reconnect never counts twice.
//!
//! # What a lock does and does not guarantee
//!
//! Redis replication is asynchronous: if the primary fails before a lock reaches a replica, a
//! promoted replica does not know the lock. A lease can also run out while its holder is stalled
//! (a pause, a long GC in another language, a frozen VM). Fencing tokens are the defence: have the
//! protected store refuse writes that carry a token older than the newest it has seen.
//!
//! Configure Redis with `maxmemory-policy noeviction`: every other policy may evict a held lock.
//! The client warns (through `tracing`) at connect when the policy is anything else.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod config;
mod default_client;
mod error;
mod guard;
mod hub;
mod keys;
mod lease;
mod lock;
mod scope;
mod scripts;
mod sync;
mod watchdog;

pub use client::LockClient;
pub use config::LockClientBuilder;
pub use default_client::{default_client, set_default_client};
pub use error::LockError;
pub use guard::LockGuard;
pub use lock::Lock;
pub use scope::fencing_token;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<LockClient>();
        assert_send_sync::<LockClientBuilder>();
        assert_send_sync::<Lock>();
        assert_send_sync::<LockGuard>();
        assert_send_sync::<LockError>();
    }

    #[test]
    fn futures_can_move_between_threads() {
        async fn used(lock: Lock) -> Result<(), LockError> {
            let guard = lock.acquire().await?;
            guard.scope(async { fencing_token() }).await;
            guard.lease_lost().await;
            guard.unlock().await
        }
        let future = async {
            let client = LockClient::connect("redis://127.0.0.1:1").await?;
            used(client.lock("x")).await
        };
        assert_send(&future);
    }
}
