//! The fair lock's own Lua script: its acquire, which gives a free lock to the head of the queue
//! only. Its reply is the family's `Acquired`; every other script (release waking the head by
//! name, leaving the queue, re-entry, renewal, force-unlock) is the family's one-owner layout's,
//! shared with the reentrant lock, since both keep the same hash and the same queue.

use crate::{core::lua::lua_scripts, family::scripts::common_lua};

lua_scripts! {
    front: [common_lua!()];

    /// Take the lock if it is free and this owner heads the queue, else queue; see
    /// `scripts/acquire.lua`. Its reply is `Acquired`.
    pub(crate) static ACQUIRE: LuaScript = "acquire.lua";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acquire_names_its_own_keys() {
        assert!(ACQUIRE.names_its_keys(), "acquire.lua reads a key but KEYS[1]");
    }
}
