//! The Redlock's own Lua script, and its typed reply: raising a member lock's fencing state to
//! the token its quorum agreed on. Everything else a Redlock runs is the reentrant lock's, on
//! each of its clients.

use crate::core::{lua::lua_scripts, reply::status_reply};

lua_scripts! {
    front: [];

    /// Raise the fencing state to a quorum's token; see `scripts/raise_fence.lua`. Its reply
    /// is [`FenceRaised`].
    pub(crate) static RAISE_FENCE: LuaScript = "raise_fence.lua";
}

status_reply! {
    /// The reply of `raise_fence.lua`.
    pub(crate) enum FenceRaised from "raise_fence" {
        /// The fencing state is at the token or above.
        Raised = 1,
        /// The owner no longer holds the lock: nothing changed.
        NotHeld = 0,
    }
}
