//! The count-down latch's Lua scripts, and the typed reply of each.
//!
//! Each script is a `.lua` file under `latch/scripts/` whose header gives its KEYS, ARGV and
//! replies, sent with `core/scripts/requests.lua` (the ids of the requests that ran lately) and
//! `scripts/latch.lua` (reading a count, telling a count from another program's key) in front.
//! Every call goes through the core's script path (`core/script_path.rs`).

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, Value};

use crate::core::{
    lua::{lua_scripts, requests_lua},
    reply::{Items, status_reply, unexpected},
};

lua_scripts! {
    front: [requests_lua!(), include_str!("scripts/latch.lua")];

    /// Read the count and the key's TTL; see `scripts/count.lua`. Reply: [`Counted`].
    pub(crate) static COUNT: LuaScript = "count.lua";

    /// Set the count of a latch that does not exist; see `scripts/try_set_count.lua`. Reply:
    /// [`CountSet`].
    pub(crate) static TRY_SET_COUNT: LuaScript = "try_set_count.lua";

    /// Count down by one, deleting the latch and waking every waiter at zero; see
    /// `scripts/count_down.lua`. Reply: [`CountedDown`].
    pub(crate) static COUNT_DOWN: LuaScript = "count_down.lua";
}

/// The reply of `count.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Counted {
    /// The latch stands at `count`, its key expiring in `ttl` (`None`: the key has no TTL).
    At { count: u64, ttl: Option<Duration> },
    /// There is no latch: its count is zero.
    Missing,
    /// The latch's key holds something that is not a count, of this Redis type.
    WrongType { found: String },
}

impl FromRedisValue for Counted {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "count")?;
        Ok(match items.next::<i64>()? {
            1 => Self::At {
                count: items.next()?,
                ttl: items.next_millis()?,
            },
            0 => Self::Missing,
            -1 => Self::WrongType {
                found: items.next()?,
            },
            other => return Err(unexpected("count", other)),
        })
    }
}

status_reply! {
    /// The reply of `try_set_count.lua`.
    pub(crate) enum CountSet from "try_set_count" {
        /// There was no latch; it now stands at the count asked for.
        Set = 1,
        /// The latch exists; nothing changed.
        Exists = 0,
        WrongType = -1,
    }
}

status_reply! {
    /// The reply of `count_down.lua`.
    pub(crate) enum CountedDown from "count_down" {
        /// One less; the count is still above zero.
        Down = 2,
        /// Down to zero: the latch is gone and every waiter was woken.
        Opened = 1,
        /// There was no latch (the count was zero already): nothing changed.
        Missing = 0,
        WrongType = -1,
    }
}
