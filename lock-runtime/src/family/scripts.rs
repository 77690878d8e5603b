//! The family's own Lua scripts, one `.lua` file under `family/scripts/` per operation, each with
//! a header giving its KEYS, ARGV and replies; their reply types are in `replies.rs`.
//!
//! - `common.lua`, sent in front of every script that takes, passes on or gives back a hold (the
//!   primitives' acquires too): holds and their re-entry records, fencing tokens, the queue of
//!   waiters and whom a release wakes or hands the lock to;
//! - the scripts of the [one-owner layout](super::flavor::ONE_OWNER) the reentrant and the fair
//!   lock share: re-entry, release, renewal, the undos, force-unlock;
//! - `holders.lua`, the first step of every force-unlock of the family;
//! - a guard's lock-checked writes (`exec.lua`, `spend_exec.lua`, `commands.lua`);
//! - `info.lua`, with `common.lua` and `inspect.lua` in front (the read-write lock's and the
//!   semaphore's `info.lua` use the latter too), describing a reentrant or fair lock.

use crate::core::lua::{allow_oom, lua_scripts};

/// `family/scripts/common.lua`, for [`lua_scripts!`] lists of files sent in front.
macro_rules! common_lua {
    () => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/family/scripts/common.lua"
        ))
    };
}
pub(crate) use common_lua;

/// `family/scripts/inspect.lua`, in front of every `info.lua` of the family: reading a hold,
/// the fencing state and the queue without changing them.
macro_rules! inspect_lua {
    () => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/family/scripts/inspect.lua"
        ))
    };
}
pub(crate) use inspect_lua;

lua_scripts! {
    front: [common_lua!()];

    /// Run a pipeline's commands if an owner still holds its lock, all or none; see
    /// `scripts/exec.lua`. Its reply is `Executed`. Declared with a shebang, so that on Redis
    /// Cluster it may touch keys of its lock's slot only (a script without one may touch any key
    /// of its node, and breaks when slots move); sent without it to Redis before 7.0
    /// (see `LuaScript`), where the script compares the keys' slots with the lock's itself.
    pub(crate) static EXEC: LuaScript = ["#!lua\n", common_lua!()] "exec.lua";

    /// Spend the number of a lock-checked write whose caller got no reply, learning whether it
    /// ran; see `scripts/spend_exec.lua`. Its reply is `SpentExec`.
    pub(crate) static SPEND_EXEC: LuaScript = "spend_exec.lua";

    /// Re-enter a lock the scope holds; see `scripts/reenter.lua`. Its reply is `Reentered`.
    pub(crate) static REENTER: LuaScript = "reenter.lua";

    /// Release one hold, waking the head of the queue by name at the last; see
    /// `scripts/release.lua`. Its reply is `Released`.
    pub(crate) static RELEASE: LuaScript = [allow_oom!(), common_lua!()] "release.lua";

    /// Extend a held lock's lease; see `scripts/renew.lua`. Its reply is the watchdog's
    /// `Renewal`. Sent alone.
    pub(crate) static RENEW: LuaScript = [allow_oom!()] "renew.lua";

    /// Delete a lock if an owner [`HOLDERS`] found still holds it; see
    /// `scripts/force_unlock.lua`. Its reply is `ForceUnlocked`. Sent alone.
    pub(crate) static FORCE_UNLOCK: LuaScript =
        [allow_oom!(), common_lua!()] "force_unlock.lua";

    /// Undo a fresh acquisition that ends without a guard: leave the queue, give back, mark if
    /// needed; see `scripts/leave.lua`. Its reply is `Undone`.
    pub(crate) static LEAVE: LuaScript = [allow_oom!(), common_lua!()] "leave.lua";

    /// Undo a re-entry whose caller gave up; see `scripts/undo_reenter.lua`. Its reply is
    /// `Undone`.
    pub(crate) static UNDO_REENTER: LuaScript =
        [allow_oom!(), common_lua!()] "undo_reenter.lua";

    /// Read the owner ids holding a lock of the family, the first step of a force-unlock; see
    /// `scripts/holders.lua`. Its reply is `Holders`. An operator's tool, not a step of
    /// acquiring or releasing.
    unlisted pub(crate) static HOLDERS: LuaScript = "holders.lua";

    /// Read what the server says of some commands, with its version; see
    /// `scripts/commands.lua`. Its reply is `Described`. Declared read-only; it runs once per
    /// command name a client uses, not per operation.
    unlisted pub(crate) static COMMANDS: LuaScript =
        ["#!lua flags=no-writes\n", common_lua!()] "commands.lua";

    /// Describe a reentrant or fair lock without changing it; see `scripts/info.lua`. Its reply
    /// is `Inspected`. Declared read-only; `common.lua` in front for the fencing state's last
    /// token (`last_token`).
    unlisted pub(crate) static INFO: LuaScript =
        ["#!lua flags=no-writes\n", common_lua!(), inspect_lua!()] "info.lua";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{keys::FENCE_TTL, lease::redis_millis},
        transport::config::DEFAULT_WATCHDOG_TIMEOUT,
    };

    #[test]
    fn the_release_and_the_undos_name_their_own_keys() {
        let scripts = [
            ("release.lua", &RELEASE),
            ("leave.lua", &LEAVE),
            ("undo_reenter.lua", &UNDO_REENTER),
        ];
        for (file, script) in scripts {
            assert!(script.names_its_keys(), "{file} reads a key but KEYS[1]");
        }
    }

    #[test]
    fn the_scripts_waiter_times_left_out_are_the_default_watchdogs() {
        for declared in [
            format!(
                "local WATCHDOG_MS = '{}'\n",
                redis_millis(DEFAULT_WATCHDOG_TIMEOUT)
            ),
            format!(
                "tonumber(argv[5] or '{}')",
                redis_millis(DEFAULT_WATCHDOG_TIMEOUT / 3)
            ),
        ] {
            assert!(common_lua!().contains(&declared), "common.lua: {declared}");
        }
    }

    #[test]
    fn the_scripts_fencing_state_lives_as_long_as_the_client_says() {
        let declared = format!("local FENCE_TTL = '{}'\n", redis_millis(FENCE_TTL));
        assert!(common_lua!().contains(&declared), "common.lua: {declared}");
    }
}
