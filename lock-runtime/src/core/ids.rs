//! Who asks: the client id, the owner id of each fresh acquisition, and request ids.
//!
//! - The **client id** is random (UUID v4) and prefixes everything else, so ids of different
//!   processes never collide.
//! - An **owner id** (`client id:scope`) belongs to one fresh acquisition and the re-entries made
//!   inside its scope. Being unique to that acquisition, it lets a resent acquire recognise its
//!   own hold, and lets an abandoned acquisition be recognised by the scripts (see the lock's
//!   `leave.lua`). It is also the waiter's id in the lock's queue, by which a release wakes it.
//! - A **re-entry number** names one re-entry of an owner, above every number the client gave
//!   before. The owner's record in the lock's own hash keeps the highest number seen and the
//!   numbers of the holds left (see the lock's `common.lua`), so a copy of a re-entry, of its
//!   release or of its undo counts once however late it lands, with nothing kept outside the
//!   lock.
//! - A **request id** (`client id:r<n>`) names one logical request however often it is resent,
//!   so a script can remember its reply (a memo key living as long as the client resends, see
//!   `Config::memo_ttl`) and answer a resend with what the first attempt did. A memo is for the
//!   reply only: what makes a copy count once, however late, is kept in the object's own keys.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// Hands out the ids of one client.
#[derive(Debug)]
pub(crate) struct Ids {
    client: Arc<str>,
    next_scope: AtomicU64,
    next_reentry: AtomicU64,
    next_request: AtomicU64,
}

impl Ids {
    /// Ids under a new random client id.
    pub(crate) fn new() -> Self {
        Self {
            client: uuid::Uuid::new_v4().to_string().into(),
            next_scope: AtomicU64::new(1),
            next_reentry: AtomicU64::new(1),
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
        self.next_reentry.fetch_add(1, Ordering::Relaxed)
    }

    /// A new request id, unique to one logical request however often it is resent.
    pub(crate) fn request(&self) -> String {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{}:r{request}", self.client)
    }
}
