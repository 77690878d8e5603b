//! Reentrancy by dynamic scope, and the fencing token of the innermost hold.
//!
//! Redisson ties a lock's owner to a thread, which means nothing in async Rust: a task moves
//! between threads, and one thread runs many tasks. Here the owner is a *scope*: a future run
//! through [`LockGuard::scope`](crate::LockGuard::scope) carries, in a Tokio task-local, the list
//! of holds around it. Acquiring one of those again from inside re-enters it (the same owner id,
//! one more hold) instead of waiting for itself. Two futures joined in one task are two scopes,
//! so they exclude each other like any two tasks.
//!
//! A hold is found by client, Redis key *and kind*: a read hold and a write hold of one resource
//! are different holds, and each primitive says which kinds it may re-enter.
//!
//! # One re-entry at a time per scope
//!
//! Re-entry is for nested, sequential calls. Two futures joined *inside* a held scope that both
//! re-enter it would otherwise both run "under the lock" at once, so each scope level has a
//! local async mutex: a re-entry holds it until its guard is released, and a second re-entry of
//! the same scope waits for it (within its own wait). The re-entry's guard opens a scope level of
//! its own, so a call nested inside it re-enters at once. Holding two re-entry guards of one
//! scope at the same time, in one future, therefore waits on itself: run the inner work in the
//! first guard's [`scope`](crate::LockGuard::scope) instead.

use std::{
    future::Future,
    sync::{
        Arc, Weak,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::core::{backend::Backend, hold::Renewal, ids::Unsettled, keys::Keys, lease::Lease};

tokio::task_local! {
    static HELD: Option<Arc<ScopeHold>>;
}

/// What kind of hold a scope carries, so a primitive re-enters only its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldKind {
    /// The reentrant lock's hold.
    Reentrant,
    /// The fair lock's exclusive hold: re-entered only through the fair lock, whose waiters
    /// take the lock straight from the release.
    Fair,
    /// A read hold of a read-write lock.
    Read,
    /// The write hold of a read-write lock.
    Write,
    /// A semaphore's permits: never re-entered.
    Permit,
}

/// One hold around the current scope; `parent` links to the holds further out.
#[derive(Debug)]
pub(crate) struct ScopeHold {
    pub(crate) holder: Holder,
    /// Taken by a re-entry for as long as its guard lives: one re-entry at a time.
    reentry: Arc<Mutex<()>>,
    parent: Option<Arc<ScopeHold>>,
}

/// What a scope is entered with: a guard's identity and lease.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    /// The client the hold was taken through: lock-checked writes go through it.
    pub(crate) backend: Arc<Backend>,
    pub(crate) client_id: Arc<str>,
    /// The keys of the lock held (shared with its handle and its release).
    pub(crate) keys: Arc<Keys>,
    pub(crate) kind: HoldKind,
    pub(crate) owner: Arc<str>,
    pub(crate) token: u64,
    pub(crate) lease: Arc<Lease>,
    /// The hold's watchdog registration, for its re-entries to share (see [`Renewal`]); weak,
    /// so a guard that started its release does not keep it. `None` with a fixed lease.
    pub(crate) renewal: Option<Weak<Renewal>>,
    /// The numbers of the owner's lock-checked writes still awaiting an outcome, shared by its
    /// re-entries (one owner id).
    pub(crate) execs: Arc<Unsettled>,
    /// Whether the owner re-entered, shared by the release of its acquisition's hold.
    pub(crate) reentries: Arc<Reentries>,
}

/// Whether an owner ever sent a re-entry, and whether the release of its acquisition's hold
/// began. Exactly one of the two comes first, so a release that comes first knows that the
/// owner has its acquisition's hold alone, and always will: the scripts then need not read the
/// owner's re-entry record (see `give_back` in `family/scripts/common.lua`), for this request
/// and every copy of it, however late. A re-entry that comes after it is refused as one that
/// finds the hold gone; a release that comes after a re-entry names its hold by number.
#[derive(Debug, Default)]
pub(crate) struct Reentries(AtomicU8);

/// No re-entry sent, no release begun.
const NONE_YET: u8 = 0;
/// A re-entry (or its undo) was sent or is about to be.
const REENTERED: u8 = 1;
/// The release of the acquisition's hold began before any re-entry.
const RELEASING_ALONE: u8 = 2;

impl Reentries {
    /// Called before a re-entry's first request is sent: false if the release of the
    /// acquisition's hold began first (the re-entry must then not be sent).
    pub(crate) fn reenter(&self) -> bool {
        match self
            .0
            .compare_exchange(NONE_YET, REENTERED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(REENTERED) => true,
            Err(_) => false,
        }
    }

    /// Called as the release of the acquisition's hold is built, each time it is: true if no
    /// re-entry was sent before it, none ever will be.
    pub(crate) fn release_alone(&self) -> bool {
        match self.0.compare_exchange(
            NONE_YET,
            RELEASING_ALONE,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) | Err(RELEASING_ALONE) => true,
            Err(_) => false,
        }
    }
}

impl ScopeHold {
    /// Waits until no other re-entry of this scope level is held, and holds the level until the
    /// returned permit is dropped.
    pub(crate) async fn exclusive_reentry(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.reentry).lock_owned().await
    }
}

/// The hold of the innermost scope around the current code, if any.
pub(crate) fn innermost_holder() -> Option<Holder> {
    innermost().map(|held| held.holder.clone())
}

fn innermost() -> Option<Arc<ScopeHold>> {
    HELD.try_with(Clone::clone).ok().flatten()
}

/// The hold of this key and kind, if the current scope has it through this client.
pub(crate) fn find(client_id: &str, key: &str, kind: HoldKind) -> Option<Arc<ScopeHold>> {
    let mut next = innermost();
    while let Some(held) = next {
        let holder = &held.holder;
        if *holder.client_id == *client_id && holder.keys.main == key && holder.kind == kind {
            return Some(held);
        }
        next = held.parent.clone();
    }
    None
}

/// Runs `future` in a scope that has one more hold.
pub(crate) fn enter<F: Future>(holder: Holder, future: F) -> impl Future<Output = F::Output> {
    enter_all([holder], future)
}

/// Runs `future` in a scope that has these holds more, the last innermost (a multi-lock's).
pub(crate) fn enter_all<F: Future>(
    holders: impl IntoIterator<Item = Holder>,
    future: F,
) -> impl Future<Output = F::Output> {
    let mut scope = innermost();
    for holder in holders {
        scope = Some(Arc::new(ScopeHold {
            holder,
            reentry: Arc::new(Mutex::new(())),
            parent: scope,
        }));
    }
    HELD.scope(scope, future)
}

/// The fencing token of the innermost lock held around the current code, if any.
///
/// Inside a future run with [`LockGuard::scope`](crate::LockGuard::scope) (which is how the
/// `#[distribute_lock]` attribute runs a function's body), this is the token of that guard's
/// lock; pass it to the store you write to, so the store can refuse writes from a holder whose
/// lease has already run out. Outside any such scope it is `None`.
///
/// ```no_run
/// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
/// let guard = client.lock("invoice:7").acquire().await?;
/// let token = guard.fencing_token();
/// guard
///     .scope(async {
///         assert_eq!(lock_runtime::fencing_token(), Some(token));
///     })
///     .await;
/// assert_eq!(lock_runtime::fencing_token(), None);
/// # Ok(()) }
/// ```
pub fn fencing_token() -> Option<u64> {
    innermost().map(|held| held.holder.token)
}

#[cfg(test)]
mod tests {
    use super::Reentries;

    #[test]
    fn a_release_that_comes_first_stays_alone_and_refuses_later_reentries() {
        let reentries = Reentries::default();
        assert!(reentries.release_alone());
        assert!(
            reentries.release_alone(),
            "the same answer when built again"
        );
        assert!(!reentries.reenter());
    }

    #[test]
    fn a_reentry_that_comes_first_makes_the_release_name_its_hold() {
        let reentries = Reentries::default();
        assert!(reentries.reenter());
        assert!(reentries.reenter());
        assert!(!reentries.release_alone());
    }
}
