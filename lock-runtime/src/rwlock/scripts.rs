//! The read-write lock's Lua scripts. Each is sent with `lock/scripts/common.lua` (the queue,
//! tokens, the holds' re-entry records) and `scripts/rw.lua` (per-hold leases, the mode, whom a release
//! wakes) in front. The replies are the reentrant lock's types (`lock::scripts`): the scripts
//! keep the same KEYS, ARGV and replies, so the family's acquisition machinery drives them.

use once_cell::sync::Lazy;
use redis::Script;

/// The source of a read-write lock script, with the shared functions in front (Lua scripts in
/// Redis cannot include one another).
macro_rules! with_rw {
    ($file:literal) => {
        concat!(
            include_str!("../lock/scripts/common.lua"),
            include_str!("scripts/rw.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// Take a read hold, or queue; see `scripts/acquire_read.lua`. Reply: `Acquired`.
pub(crate) static ACQUIRE_READ: Lazy<Script> =
    Lazy::new(|| Script::new(with_rw!("acquire_read.lua")));

/// Take the write hold, or queue; see `scripts/acquire_write.lua`. Reply: `Acquired`.
pub(crate) static ACQUIRE_WRITE: Lazy<Script> =
    Lazy::new(|| Script::new(with_rw!("acquire_write.lua")));

/// Re-enter a hold of the scope; see `scripts/reenter.lua`. Reply: `Reentered`.
pub(crate) static REENTER: Lazy<Script> = Lazy::new(|| Script::new(with_rw!("reenter.lua")));

/// Release one count of a hold, passing the lock on at its last; see `scripts/release.lua`.
/// Reply: `Released`.
pub(crate) static RELEASE: Lazy<Script> = Lazy::new(|| Script::new(with_rw!("release.lua")));

/// Undo a fresh acquisition; see `scripts/leave.lua`. Reply: `Undone`.
pub(crate) static LEAVE: Lazy<Script> = Lazy::new(|| Script::new(with_rw!("leave.lua")));

/// Undo a re-entry; see `scripts/undo_reenter.lua`. Reply: `Undone`.
pub(crate) static UNDO_REENTER: Lazy<Script> =
    Lazy::new(|| Script::new(with_rw!("undo_reenter.lua")));

/// Extend one hold's lease; see `scripts/renew.lua`. Reply: the watchdog's `Renewal`.
pub(crate) static RENEW: Lazy<Script> = Lazy::new(|| Script::new(with_rw!("renew.lua")));

/// Delete the lock whoever holds it; see `scripts/force_unlock.lua`. Reply: `ForceUnlocked`.
pub(crate) static FORCE_UNLOCK: Lazy<Script> =
    Lazy::new(|| Script::new(with_rw!("force_unlock.lua")));

/// Every script of the read-write lock, by file name: for tests (`__private::scripts`).
pub(crate) fn sources() -> [(&'static str, &'static str); 8] {
    [
        ("acquire_read.lua", with_rw!("acquire_read.lua")),
        ("acquire_write.lua", with_rw!("acquire_write.lua")),
        ("reenter.lua", with_rw!("reenter.lua")),
        ("release.lua", with_rw!("release.lua")),
        ("leave.lua", with_rw!("leave.lua")),
        ("undo_reenter.lua", with_rw!("undo_reenter.lua")),
        ("renew.lua", with_rw!("renew.lua")),
        ("force_unlock.lua", with_rw!("force_unlock.lua")),
    ]
}
