//! Small helpers for the state the modules share behind a mutex.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::{Mutex, MutexGuard, PoisonError},
};

/// Locks a mutex whose data stays consistent even if a holder panicked: every critical section in
/// this crate is a few infallible map or field updates, so a poisoned lock carries no torn state.
pub(crate) fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives back the room of `map` once three quarters of it stand empty: a map of requests in
/// flight grows as large as a burst of them (thousands of tasks arriving at once), then empties
/// a round trip later, and would otherwise keep that room for the life of the process. A shrink
/// moves the entries left, and follows at least as many removals, so it costs each removal O(1).
pub(crate) fn shrink_when_sparse<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    let left = map.len();
    if map.capacity() > MIN_CAPACITY && left * 4 < map.capacity() {
        map.shrink_to(left * 2);
    }
}

/// A map keyed by ids the client counts out itself (never by a key a caller or Redis chooses),
/// hashed with `foldhash` rather than SipHash: every acquisition enters and removes such ids
/// (its watchdog registration, its requests' bounds), and nobody can pick them to collide.
pub(crate) type IdMap<V> = HashMap<u64, V, foldhash::fast::RandomState>;

/// The room below which a map is not shrunk.
const MIN_CAPACITY: usize = 64;
