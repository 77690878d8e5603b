//! The read-write lock's Lua scripts. Each is sent with the family's `common.lua` (the queue,
//! tokens, the holds' re-entry records) and `scripts/rw.lua` (per-hold leases, the mode, whom a
//! release wakes) in front. The replies are the family's (`family/replies.rs`): the scripts keep
//! the same KEYS, ARGV and replies, so the family's engine drives them.

use crate::{
    core::lua::{allow_oom, lua_scripts},
    family::scripts::{common_lua, inspect_lua},
};

lua_scripts! {
    front: [common_lua!(), include_str!("scripts/rw.lua")];

    /// Take a read hold, or queue; see `scripts/acquire_read.lua`. Reply: `Acquired`.
    pub(crate) static ACQUIRE_READ: LuaScript = "acquire_read.lua";

    /// Take the write hold, or queue; see `scripts/acquire_write.lua`. Reply: `Acquired`.
    pub(crate) static ACQUIRE_WRITE: LuaScript = "acquire_write.lua";

    /// Re-enter a hold of the scope; see `scripts/reenter.lua`. Reply: `Reentered`.
    pub(crate) static REENTER: LuaScript = "reenter.lua";

    /// Release one count of a hold, passing the lock on at its last; see
    /// `scripts/release.lua`. Reply: `Released`.
    pub(crate) static RELEASE: LuaScript =
        [allow_oom!(), common_lua!(), include_str!("scripts/rw.lua")] "release.lua";

    /// Undo a fresh acquisition; see `scripts/leave.lua`. Reply: `Undone`.
    pub(crate) static LEAVE: LuaScript =
        [allow_oom!(), common_lua!(), include_str!("scripts/rw.lua")] "leave.lua";

    /// Undo a re-entry; see `scripts/undo_reenter.lua`. Reply: `Undone`.
    pub(crate) static UNDO_REENTER: LuaScript =
        [allow_oom!(), common_lua!(), include_str!("scripts/rw.lua")] "undo_reenter.lua";

    /// Extend one hold's lease; see `scripts/renew.lua`. Reply: the watchdog's `Renewal`.
    pub(crate) static RENEW: LuaScript =
        [allow_oom!(), common_lua!(), include_str!("scripts/rw.lua")] "renew.lua";

    /// Delete the lock whoever holds it; see `scripts/force_unlock.lua`. Reply:
    /// `ForceUnlocked`.
    pub(crate) static FORCE_UNLOCK: LuaScript =
        [allow_oom!(), common_lua!(), include_str!("scripts/rw.lua")] "force_unlock.lua";

    /// Describe a read-write lock without changing it; see `scripts/info.lua`. Declared
    /// read-only, with the others' front (for how a lone hold's lease is read) and the family's
    /// `inspect.lua`.
    unlisted pub(crate) static INFO: LuaScript = [
        "#!lua flags=no-writes\n",
        common_lua!(),
        include_str!("scripts/rw.lua"),
        inspect_lua!(),
    ] "info.lua";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acquires_and_the_release_name_their_own_keys() {
        for (file, script) in [
            ("acquire_read.lua", &ACQUIRE_READ),
            ("acquire_write.lua", &ACQUIRE_WRITE),
            ("release.lua", &RELEASE),
        ] {
            assert!(script.names_its_keys(), "{file} reads a key but KEYS[1]");
        }
    }
}
