//! The Redlock's own Lua script, and its typed reply: raising a member lock's fencing state to
//! the token its quorum agreed on. Everything else a Redlock runs is the reentrant lock's, on
//! each of its clients.

use redis::{FromRedisValue, ParsingError, Script, Value};

use crate::core::{lua::lua_scripts, reply::unexpected};

lua_scripts! {
    front: [];

    /// Raise the fencing state to a quorum's token; see `scripts/raise_fence.lua`. Its reply
    /// is [`FenceRaised`].
    pub(crate) static RAISE_FENCE: Script = "raise_fence.lua";
}

/// The reply of `raise_fence.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceRaised {
    /// The fencing state is at the token or above.
    Raised,
    /// The owner no longer holds the lock: nothing changed.
    NotHeld,
}

impl FromRedisValue for FenceRaised {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::Raised,
            0 => Self::NotHeld,
            other => return Err(unexpected("raise_fence", other)),
        })
    }
}
