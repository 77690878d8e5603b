//! Reentrancy by dynamic scope, and the fencing token of the innermost held lock.
//!
//! Redisson ties a lock's owner to a thread, which means nothing in async Rust: a task moves
//! between threads, and one thread runs many tasks. Here the owner is a *scope*: a future run
//! through [`LockGuard::scope`](crate::LockGuard::scope) carries, in a Tokio task-local, the list
//! of locks held around it. Acquiring one of those locks again from inside re-enters it (the same
//! owner id, one more hold) instead of waiting for itself. Two futures joined in one task are two
//! scopes, so they exclude each other like any two tasks.

use std::{future::Future, sync::Arc};

use crate::lease::Lease;

tokio::task_local! {
    static HELD: Option<Arc<HeldLock>>;
}

/// One lock held around the current scope; `parent` links to the locks held further out.
#[derive(Debug)]
pub(crate) struct HeldLock {
    pub(crate) client_id: Arc<str>,
    pub(crate) lock_key: String,
    pub(crate) owner: Arc<str>,
    pub(crate) token: u64,
    pub(crate) lease: Arc<Lease>,
    parent: Option<Arc<HeldLock>>,
}

fn innermost() -> Option<Arc<HeldLock>> {
    HELD.try_with(Clone::clone).ok().flatten()
}

/// The lock with this key, if the current scope holds it through this client.
pub(crate) fn find(client_id: &str, lock_key: &str) -> Option<Arc<HeldLock>> {
    let mut next = innermost();
    while let Some(held) = next {
        if *held.client_id == *client_id && held.lock_key == lock_key {
            return Some(held);
        }
        next = held.parent.clone();
    }
    None
}

/// Runs `future` in a scope that holds one more lock.
pub(crate) fn enter<F: Future>(
    client_id: Arc<str>,
    lock_key: String,
    owner: Arc<str>,
    token: u64,
    lease: Arc<Lease>,
    future: F,
) -> impl Future<Output = F::Output> {
    let held = HeldLock {
        client_id,
        lock_key,
        owner,
        token,
        lease,
        parent: innermost(),
    };
    HELD.scope(Some(Arc::new(held)), future)
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
    innermost().map(|held| held.token)
}
