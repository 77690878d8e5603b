//! The reentrant lock's own Lua script: its acquire, which lets newcomers barge (a free lock
//! goes to whoever asks first) while waiters queue only so that a release wakes one of them by
//! name. Its reply is the family's `Acquired`; every other script it runs is the family's
//! one-owner layout's (`family/scripts/`), shared with the fair lock.

use crate::{core::lua::lua_scripts, family::scripts::common_lua};

lua_scripts! {
    front: [common_lua!()];

    /// Take a free lock for a new owner, or queue; see `scripts/acquire.lua`. Its reply is
    /// `Acquired`.
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
