//! What makes one lock of the family itself, named as data: a [`Flavor`] per lock (its acquire
//! script, its hold kind, whether it takes a direct hand-over, the check before a fresh hold)
//! and a [`Layout`] per way of keeping holds (the key, and the scripts that renew, give back
//! and undo them). The engine (`acquisition.rs`, `release.rs`) reads them and knows no
//! primitive.

use std::sync::Arc;

use crate::core::lua::{Invocation, LuaScript};
use once_cell::sync::Lazy;

use crate::{
    core::{backend::Backend, keys::Keys, scope::HoldKind},
    error::LockError,
    family::{
        replies::Refusal,
        scripts::{FORCE_UNLOCK, LEAVE, REENTER, RELEASE, RENEW, UNDO_REENTER},
    },
};

/// What makes one lock of the family itself: its acquire script (the reentrant lock's lets
/// newcomers barge, the fair lock's gives a free lock to the head of the queue only, the read
/// and write locks' share it or wait for it; all take the same KEYS and ARGV), whether its
/// waiters take a direct hand-over, the hold kind its scopes carry, how it keeps its holds, its
/// names, and what the refusals of its own that its script may answer mean. The engine knows a
/// lock by its flavor alone.
pub(crate) struct Flavor {
    /// The hold kind its scopes carry: a lock re-enters only its own kind.
    pub(crate) kind: HoldKind,
    /// The primitive, as its measurements' `kind` label names it (see `core/meter.rs`).
    pub(crate) primitive: &'static str,
    /// What a hold of it is a hold of, as a [`LockError::Timeout`] names it ("fair lock").
    pub(crate) noun: &'static str,
    /// Its acquire script; the reply is [`Acquired`](super::replies::Acquired).
    pub(crate) acquire: &'static Lazy<LuaScript>,
    /// Whether a release makes its head waiter the owner at once (the fair lock), rather than
    /// waking it to try (the others); see
    /// [`Acquire::granted`](super::acquisition::Acquire).
    pub(crate) hand_over: bool,
    /// Where its holds live and the scripts that renew, give back and undo them.
    pub(crate) layout: &'static Layout,
    /// Asked before a fresh acquisition (one the current scope does not re-enter), with the
    /// client's id and the lock's keys: the owner id of a hold of the current scope the new hold
    /// may be granted alongside (a read lock under the scope's own write lock), or the error
    /// that refuses it at once (a write lock asked under the scope's read lock).
    pub(crate) fresh: fn(&str, &Keys) -> Result<Alongside, LockError>,
    /// What a refusal of its acquire script that is the primitive's own means
    /// ([`Acquired::Refused`](super::replies::Acquired::Refused): the semaphore's "more permits
    /// than its total"), given the lock's name and the flavor's own last argument to the script:
    /// the error the acquisition returns at once. [`no_refusal`] for the scripts that answer
    /// the family's replies only.
    pub(crate) refused: fn(Refusal, &str, Option<&str>) -> LockError,
}

/// The owner id of a hold of the current scope that a fresh hold may be granted alongside, if
/// any (see [`Flavor::fresh`]).
pub(crate) type Alongside = Option<Arc<str>>;

/// How a kind of hold is kept in Redis: the key, and the scripts that renew, give back and undo
/// holds. The reentrant and the fair lock share one layout (one hash, its TTL the lease); the
/// read-write lock and the semaphore have their own (a lease per hold).
pub(crate) struct Layout {
    /// The lock's key after the name's hash tag (`{prefix:name}:rw`), or `None` for the tag
    /// itself (`{prefix:name}`). Every other key of the lock is named after it.
    pub(crate) part: Option<&'static str>,
    /// Re-enter a hold (`family/scripts/reenter.lua`'s KEYS and ARGV); reply `Reentered`.
    /// `None` for holds that are never re-entered (semaphore permits).
    pub(crate) reenter: Option<&'static Lazy<LuaScript>>,
    /// Release one hold (`family/scripts/release.lua`'s); reply `Released`.
    pub(crate) release: &'static Lazy<LuaScript>,
    /// Undo a fresh acquisition (`family/scripts/leave.lua`'s); reply `Undone`.
    pub(crate) leave: &'static Lazy<LuaScript>,
    /// Undo a re-entry (`family/scripts/undo_reenter.lua`'s); reply `Undone`. `None` where
    /// `reenter` is.
    pub(crate) undo_reenter: Option<&'static Lazy<LuaScript>>,
    /// Renew a hold (`family/scripts/renew.lua`'s); reply the watchdog's `Renewal`.
    pub(crate) renew: &'static Lazy<LuaScript>,
    /// Delete the holds of the owners `holders.lua` found (`family/scripts/force_unlock.lua`'s);
    /// reply `ForceUnlocked`. `None` for holds that are never forced (semaphore permits, which
    /// are released by id instead).
    pub(crate) force_unlock: Option<&'static Lazy<LuaScript>>,
    /// Whether each hold has a lease of its own, kept in `{…}:leases` (the read-write lock's):
    /// that key is then passed to every script after its other keys.
    pub(crate) leases: bool,
    /// Whether a lone hold is kept in a key of its own, `{…}:lone`, its TTL the lease (the
    /// semaphore's, whose hash has no TTL to keep it in): that key is then passed after the
    /// leases.
    pub(crate) lone: bool,
}

impl Layout {
    /// The keys of the lock `name` of the client whose state is `backend`.
    pub(crate) fn keys(&self, backend: &Backend, name: &Arc<str>) -> Result<Keys, LockError> {
        self.keys_under(&backend.config.key_prefix, name)
    }

    /// The keys of the lock `name` under the key prefix `prefix`.
    pub(crate) fn keys_under(&self, prefix: &str, name: &Arc<str>) -> Result<Keys, LockError> {
        let keys = Keys::new(prefix, name)?;
        Ok(match self.part {
            Some(part) => keys.part(part),
            None => keys,
        })
    }

    /// Adds the per-hold leases key to `call` if this layout has one, and the lone hold's key
    /// after it if it has that.
    pub(crate) fn with_leases<'a>(
        &self,
        call: &'a mut Invocation,
        keys: &Keys,
    ) -> &'a mut Invocation {
        if self.leases {
            call.key(keys.leases());
        }
        if self.lone {
            call.key(keys.lone());
        }
        call
    }

    /// Adds the keys a script that drops holds whose lease ended writes to `call`: the leases
    /// (see [`with_leases`](Self::with_leases)), the fencing state, which a script that frees
    /// the read-write lock counts past its holds (the semaphore's scripts take it too, unused,
    /// as they keep the family's KEYS), and the notes of lost holds, where each dropped hold is
    /// noted. The layouts without leases drop nothing: nothing is added.
    pub(crate) fn with_ended_holds<'a>(
        &self,
        call: &'a mut Invocation,
        keys: &Keys,
    ) -> &'a mut Invocation {
        self.with_leases(call, keys);
        if self.leases {
            call.key(keys.fence()).key(keys.lost());
        }
        call
    }
}

/// No hold of the scope matters to a fresh acquisition: the exclusive locks' [`Flavor::fresh`].
pub(crate) fn nothing_alongside(_: &str, _: &Keys) -> Result<Alongside, LockError> {
    Ok(None)
}

/// The acquire script refuses nothing of its own: the locks' [`Flavor::refused`].
pub(crate) fn no_refusal(refusal: Refusal, name: &str, _: Option<&str>) -> LockError {
    refusal.unexpected(name)
}

/// The one-owner layout: one hash at `{prefix:name}` holding one owner's holds, whose TTL is the
/// lease. The reentrant and the fair lock keep their holds so (they exclude each other, sharing
/// the hash and its queue).
pub(crate) static ONE_OWNER: Layout = Layout {
    part: None,
    reenter: Some(&REENTER),
    release: &RELEASE,
    leave: &LEAVE,
    undo_reenter: Some(&UNDO_REENTER),
    renew: &RENEW,
    force_unlock: Some(&FORCE_UNLOCK),
    leases: false,
    lone: false,
};
