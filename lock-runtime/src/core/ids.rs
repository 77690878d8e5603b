//! Who asks: the client id, the owner id of each fresh acquisition, and request ids.
//!
//! - The **client id** is random (UUID v4) and prefixes everything else, so ids of different
//!   processes never collide.
//! - An **owner id** (`client id:scope`) belongs to one fresh acquisition and the re-entries made
//!   inside its scope. Being unique to that acquisition, it lets a resent acquire recognise its
//!   own hold, and lets an abandoned acquisition be recognised by the scripts (see the lock's
//!   `leave.lua`). It is also the waiter's id in the lock's queue, by which a release wakes it.
//! - A **request id** (`client id:r<n>`) names one logical request however often it is resent,
//!   so the scripts can remember its outcome (a memo key with a TTL) and answer a resend with it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// Hands out the ids of one client.
#[derive(Debug)]
pub(crate) struct Ids {
    client: Arc<str>,
    next_scope: AtomicU64,
    next_request: AtomicU64,
}

impl Ids {
    /// Ids under a new random client id.
    pub(crate) fn new() -> Self {
        Self {
            client: uuid::Uuid::new_v4().to_string().into(),
            next_scope: AtomicU64::new(1),
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

    /// A new request id, unique to one logical request however often it is resent.
    pub(crate) fn request(&self) -> String {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{}:r{request}", self.client)
    }
}
