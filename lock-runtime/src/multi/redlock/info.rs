//! What an operator asks of a Redlock lock ([`RedlockInfo`]): the lock as each master holds
//! it. A master that does not answer within the node timeout is reported as such, with the
//! others' answers, never failing the whole call: an operator looks at a Redlock precisely when
//! some of its masters are in trouble.

use crate::{error::LockError, family::info::LockInfo};

/// A snapshot of one lock of a [`Redlock`](crate::Redlock), master by master: made by
/// [`RedlockLock::info`](crate::RedlockLock::info).
///
/// Each master's [`LockInfo`] is read in one read-only script on that master, all masters at
/// once: each is consistent in itself, not with the others. Each master records its hold under
/// its own owner id (its client's [id](crate::LockClient::id) first), so the holders of one
/// acquisition differ in owner id from master to master, not in
/// [client name](crate::LockHolder::client_name).
#[derive(Debug)]
#[non_exhaustive]
pub struct RedlockInfo {
    name: String,
    quorum: usize,
    masters: Vec<Result<LockInfo, LockError>>,
}

impl RedlockInfo {
    pub(crate) fn new(
        name: String,
        quorum: usize,
        masters: Vec<Result<LockInfo, LockError>>,
    ) -> Self {
        Self {
            name,
            quorum,
            masters,
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each master's snapshot, in the order of [`Redlock::clients`](crate::Redlock::clients),
    /// or the error of a master that did not answer within the node timeout (or failed).
    pub fn masters(&self) -> &[Result<LockInfo, LockError>] {
        &self.masters
    }

    /// How many masters must hold the lock for it to be held: a majority.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// How many masters answered that they held the lock.
    pub fn held_on(&self) -> usize {
        self.masters
            .iter()
            .filter(|master| master.as_ref().is_ok_and(LockInfo::is_held))
            .count()
    }

    /// How many masters answered.
    pub fn answered(&self) -> usize {
        self.masters.iter().filter(|master| master.is_ok()).count()
    }
}
