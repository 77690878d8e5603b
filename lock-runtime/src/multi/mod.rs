//! Locks composed of other locks: [`MultiLock`] (several locks of one client, all or nothing)
//! and [`Redlock`] (one lock over several independent masters, by quorum). They are made of the
//! reentrant lock's guards; the Redlock adds only a script that raises a lock's fencing state to
//! its quorum's token (`redlock/scripts/raise_fence.lua`), and its contender on each master
//! (`redlock/contender.rs`).

use futures_util::future::join_all;

use crate::{error::LockError, family::guard::LockGuard};

pub(crate) mod multi_lock;
pub(crate) mod redlock;

pub use multi_lock::{MultiLock, MultiLockGuard};
pub use redlock::{Redlock, RedlockBuilder, RedlockGuard, RedlockInfo, RedlockLock};

/// Gives back the members taken by an acquisition that failed; their failures are only logged
/// (each frees itself when its lease runs out).
async fn release_all(guards: Vec<LockGuard>) {
    for (name, outcome) in released(guards).await {
        if let Err(err) = outcome {
            tracing::debug!(lock = %name, error = %err, "giving back a member of a multi-lock or Redlock failed");
        }
    }
}

/// Releases every guard at once; each outcome with its lock's name, in order.
async fn released(guards: Vec<LockGuard>) -> Vec<(String, Result<(), LockError>)> {
    let names: Vec<String> = guards.iter().map(|guard| guard.name().to_owned()).collect();
    let outcomes = join_all(guards.into_iter().map(LockGuard::unlock)).await;
    names.into_iter().zip(outcomes).collect()
}
