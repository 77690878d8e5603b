//! Who asks: the client id, the owner id of each fresh acquisition, and request ids.
//!
//! - The **client id** is random (UUID v4) and prefixes everything else, so ids of different
//!   processes never collide.
//! - An **owner id** (`client id:scope`) belongs to one fresh acquisition and the re-entries made
//!   inside its scope. Being unique to that acquisition, it lets a resent acquire recognise its
//!   own hold, and lets an abandoned acquisition be recognised by the scripts (see the lock's
//!   `leave.lua`). It is also the waiter's id in the lock's queue, by which a release wakes it.
//! - A **hold number** names one re-entry, or one lock-checked write (`LockGuard::exec`), of an
//!   owner, above every number the client gave before (one counter for both). The owner's
//!   records in the lock's own hash keep the highest number seen and the numbers of the holds
//!   left, or of the execs that ran (see the lock's `common.lua`), so a copy of a re-entry, of
//!   its release or of its undo counts once however late it lands, and a copy of an exec runs at
//!   most once and never after its caller spent its number, with nothing kept outside the lock.
//!   While an exec's outcome is open (its request on the wire, or its number being spent), its
//!   number stays [`Unsettled`]: the lowest unsettled number of an owner tells the scripts which
//!   numbers they may forget.
//! - A **request id** (`client id:r<n>`) names one logical request however often it is resent,
//!   so a script can remember its reply (a memo key living as long as the client resends, see
//!   `Config::memo_ttl`) and answer a resend with what the first attempt did. A memo is for the
//!   reply only: what makes a copy count once, however late, is kept in the object's own keys.
//!   Releases need none: a resend names the hold's token, and the lock's fencing state (a
//!   semaphore's count of its lone acquisitions) answers it (see `released_before` in the
//!   family's `common.lua`); only `Semaphore::release_by_id`, whose caller has no token, keeps a
//!   memo.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::transport::sync::lock_ignoring_poison;

/// Hands out the ids of one client.
#[derive(Debug)]
pub(crate) struct Ids {
    client: Arc<str>,
    next_scope: AtomicU64,
    next_number: AtomicU64,
    next_request: AtomicU64,
}

impl Ids {
    /// Ids under a new random client id.
    pub(crate) fn new() -> Self {
        Self {
            client: uuid::Uuid::new_v4().to_string().into(),
            next_scope: AtomicU64::new(1),
            next_number: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
        }
    }

    /// The client id.
    pub(crate) fn client(&self) -> &Arc<str> {
        &self.client
    }

    /// A new owner id, unique to one fresh acquisition.
    pub(crate) fn owner(&self) -> Arc<str> {
        let scope = self.next_scope.fetch_add(1, Ordering::Relaxed);
        format!("{}:{scope}", self.client).into()
    }

    /// A new re-entry number: above every one this client gave before, so above every number
    /// an owner of this client used (the scripts take a number at or below the highest they saw
    /// for the owner for a late copy). Never 0, the number of an acquisition's own hold.
    pub(crate) fn reentry(&self) -> u64 {
        self.next_number.fetch_add(1, Ordering::Relaxed)
    }

    /// A new request id, unique to one logical request however often it is resent.
    pub(crate) fn request(&self) -> String {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{}:r{request}", self.client)
    }
}

/// The numbers of one owner's lock-checked writes whose outcome its client may still ask Redis
/// about: each from the moment its request is about to be sent until its reply arrived or its
/// number was spent (see the lock's `spend_exec.lua`). Shared by every guard of the owner.
#[derive(Debug, Default)]
pub(crate) struct Unsettled {
    numbers: Mutex<BTreeSet<u64>>,
}

impl Unsettled {
    /// A new number from `ids`' counter, above every one the client gave before (re-entries'
    /// included), unsettled until the returned guard is dropped.
    pub(crate) fn open(self: &Arc<Self>, ids: &Ids) -> UnsettledNumber {
        let mut numbers = lock_ignoring_poison(&self.numbers);
        let number = ids.next_number.fetch_add(1, Ordering::Relaxed);
        numbers.insert(number);
        UnsettledNumber {
            unsettled: Arc::clone(self),
            number,
        }
    }
}

/// One unsettled number (see [`Unsettled`]); settled when dropped.
#[derive(Debug)]
pub(crate) struct UnsettledNumber {
    unsettled: Arc<Unsettled>,
    number: u64,
}

impl UnsettledNumber {
    /// The number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The owner's lowest unsettled number now (this one's at most): the scripts forget the
    /// numbers below it, whose outcome no caller will ask about again.
    pub(crate) fn floor(&self) -> u64 {
        lock_ignoring_poison(&self.unsettled.numbers)
            .first()
            .copied()
            .unwrap_or(self.number)
            .min(self.number)
    }
}

impl Drop for UnsettledNumber {
    fn drop(&mut self) {
        lock_ignoring_poison(&self.unsettled.numbers).remove(&self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_lowest_number_still_unsettled() {
        let ids = Ids::new();
        let unsettled = Arc::new(Unsettled::default());
        let first = unsettled.open(&ids);
        let reentry = ids.reentry();
        let second = unsettled.open(&ids);
        assert!(first.number() < reentry && reentry < second.number());
        assert_eq!(second.floor(), first.number());
        drop(first);
        assert_eq!(second.floor(), second.number());
        let third = unsettled.open(&ids);
        assert_eq!(third.floor(), second.number());
        drop(second);
        assert_eq!(third.floor(), third.number());
    }
}
