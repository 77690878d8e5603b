//! The semaphore's Lua scripts, and the typed reply of those that are its own. Each is sent with
//! the family's `common.lua` (the queue), `core/scripts/requests.lua` (the ids of the requests
//! that ran lately) and `scripts/sem.lua` (the permits and their leases) in front. Acquire,
//! release, leave and renew keep the locks' KEYS, ARGV and replies (`family/replies.rs`), so
//! the family's engine drives them.

use redis::{FromRedisValue, ParsingError, Value};

use crate::{
    core::{
        lua::{allow_oom, lua_scripts, requests_lua},
        reply::{status_reply, unexpected},
    },
    family::{
        replies::Refusal,
        scripts::{common_lua, inspect_lua},
    },
};

lua_scripts! {
    front: [common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")];

    /// Take permits, or queue; see `scripts/acquire.lua`. Reply: `Acquired`, or [`Refused`].
    pub(crate) static ACQUIRE: LuaScript = "acquire.lua";

    /// Give back an acquisition's permits, waking whom they fit; see `scripts/release.lua`.
    /// Reply: `Released`.
    pub(crate) static RELEASE: LuaScript =
        [allow_oom!(), common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")] "release.lua";

    /// Give back an acquisition's permits by permit id, from any process, a memo answering a
    /// resend; see `scripts/release_by_id.lua`. Reply: `Released`.
    pub(crate) static RELEASE_BY_ID: LuaScript =
        [allow_oom!(), common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")] "release_by_id.lua";

    /// Undo an acquisition; see `scripts/leave.lua`. Reply: `Undone`.
    pub(crate) static LEAVE: LuaScript =
        [allow_oom!(), common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")] "leave.lua";

    /// Extend an acquisition's lease; see `scripts/renew.lua`. Reply: the watchdog's `Renewal`.
    pub(crate) static RENEW: LuaScript =
        [allow_oom!(), common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")] "renew.lua";

    /// Set the total once; see `scripts/set_permits.lua`. Reply: [`PermitsSet`].
    pub(crate) static SET_PERMITS: LuaScript = "set_permits.lua";

    /// Grow the total; see `scripts/add_permits.lua`. Reply: [`PermitsAdded`].
    pub(crate) static ADD_PERMITS: LuaScript = "add_permits.lua";

    /// Count the free permits; see `scripts/available.lua`. Reply: [`Available`].
    pub(crate) static AVAILABLE: LuaScript = "available.lua";

    /// Delete a semaphore nobody uses; see `scripts/delete.lua`. Reply: [`Deletion`]. It frees
    /// memory, so Redis runs it when full, as a release.
    pub(crate) static DELETE: LuaScript =
        [allow_oom!(), common_lua!(), requests_lua!(), include_str!("scripts/sem.lua")] "delete.lua";

    /// Describe a semaphore without changing it; see `scripts/info.lua`. Declared read-only,
    /// with the others' front (for the names of its layout) and the family's `inspect.lua`.
    unlisted pub(crate) static INFO: LuaScript = [
        "#!lua flags=no-writes\n",
        common_lua!(),
        requests_lua!(),
        include_str!("scripts/sem.lua"),
        inspect_lua!(),
    ] "info.lua";
}

/// The replies of `acquire.lua` that are the semaphore's own: refusals, returned at once. The
/// others are the family's `Acquired`, which carries these as a `Refusal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// More permits asked than the semaphore has in all, `total`: it never could have them.
    MoreThanTotal { total: u64 },
    /// The semaphore's permits were never set.
    NoPermitsSet,
}

impl Refused {
    /// The semaphore's refusal that `refusal`, as the family's acquire reply carried it, is.
    pub(crate) fn of(refusal: &Refusal) -> Result<Self, ParsingError> {
        Ok(match refusal.status {
            -4 => Self::MoreThanTotal {
                total: u64::from_redis_value(refusal.value.clone())?,
            },
            -5 => Self::NoPermitsSet,
            other => return Err(unexpected("acquire", other)),
        })
    }
}

/// The reply of `set_permits.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitsSet {
    /// The total is set.
    Set,
    /// It was set already; left as it is, at `total`.
    AlreadySet { total: u64 },
    /// The semaphore's key holds another type.
    WrongType,
}

impl FromRedisValue for PermitsSet {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let (status, total): (i64, u64) = FromRedisValue::from_redis_value(value)?;
        Ok(match status {
            1 => Self::Set,
            0 => Self::AlreadySet { total },
            -1 => Self::WrongType,
            other => return Err(unexpected("set_permits", other)),
        })
    }
}

status_reply! {
    /// The reply of `add_permits.lua`.
    pub(crate) enum PermitsAdded from "add_permits" {
        /// The permits are added: by this request, or by an earlier copy of it.
        Added = 1,
        /// The semaphore's key holds another type.
        WrongType = -1,
    }
}

status_reply! {
    /// The reply of `delete.lua`.
    pub(crate) enum Deletion from "delete" {
        /// Deleted: by this request, or by an earlier copy of it.
        Deleted = 1,
        /// There was no semaphore of that name.
        Absent = 2,
        /// Permits are held, or a live waiter is queued: nothing deleted.
        InUse = 0,
        /// The semaphore's key holds another type.
        WrongType = -1,
    }
}

/// The reply of `available.lua`: the free permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Available {
    /// The count.
    Permits(u64),
    /// The semaphore's key holds another type.
    WrongType,
}

impl FromRedisValue for Available {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            -1 => Self::WrongType,
            count => Self::Permits(
                u64::try_from(count).map_err(|_| unexpected("semaphore count", count))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::replies::Acquired;

    #[test]
    fn the_acquire_and_the_release_name_their_own_keys() {
        for (file, script) in [("acquire.lua", &ACQUIRE), ("release.lua", &RELEASE)] {
            assert!(script.names_its_keys(), "{file} reads a key but KEYS[1]");
        }
    }

    /// The acquire reply `{status, value}` decoded as the family does, then its refusal as the
    /// semaphore does.
    fn refused(status: i64, value: i64) -> Option<Refused> {
        let reply = Value::Array(vec![Value::Int(status), Value::Int(value)]);
        match Acquired::from_redis_value(reply).expect("decodes") {
            Acquired::Refused(refusal) => Refused::of(&refusal).ok(),
            other => panic!("a refusal, not {other:?}"),
        }
    }

    #[test]
    fn the_semaphores_refusals_pass_through_the_family_reply() {
        assert_eq!(refused(-4, 3), Some(Refused::MoreThanTotal { total: 3 }));
        assert_eq!(refused(-5, 0), Some(Refused::NoPermitsSet));
        assert_eq!(refused(-6, 0), None);
    }
}
