//! The semaphore's Lua scripts, and the typed reply of those that are its own. Each is sent with
//! `lock/scripts/common.lua` (the queue), `core/scripts/requests.lua` (the ids of the requests
//! that ran lately) and `scripts/sem.lua` (the permits and their leases) in front. Acquire, release, leave and renew keep the locks' KEYS, ARGV and replies
//! (`lock::scripts`), so the family's acquisition machinery drives them.

use once_cell::sync::Lazy;
use redis::{FromRedisValue, ParsingError, Script, Value};

use crate::core::script::unexpected;

/// The source of a semaphore script, with the shared functions in front (Lua scripts in Redis
/// cannot include one another).
macro_rules! with_sem {
    ($file:literal) => {
        concat!(
            include_str!("../lock/scripts/common.lua"),
            include_str!("../core/scripts/requests.lua"),
            include_str!("scripts/sem.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// Take permits, or queue; see `scripts/acquire.lua`. Reply: `Acquired`.
pub(crate) static ACQUIRE: Lazy<Script> = Lazy::new(|| Script::new(with_sem!("acquire.lua")));

/// Give back an acquisition's permits, waking whom they fit; see `scripts/release.lua`. Reply:
/// `Released`.
pub(crate) static RELEASE: Lazy<Script> = Lazy::new(|| Script::new(with_sem!("release.lua")));

/// Undo an acquisition; see `scripts/leave.lua`. Reply: `Undone`.
pub(crate) static LEAVE: Lazy<Script> = Lazy::new(|| Script::new(with_sem!("leave.lua")));

/// Extend an acquisition's lease; see `scripts/renew.lua`. Reply: the watchdog's `Renewal`.
pub(crate) static RENEW: Lazy<Script> = Lazy::new(|| Script::new(with_sem!("renew.lua")));

/// Set the total once; see `scripts/set_permits.lua`. Reply: [`PermitsSet`].
pub(crate) static SET_PERMITS: Lazy<Script> =
    Lazy::new(|| Script::new(with_sem!("set_permits.lua")));

/// Grow the total; see `scripts/add_permits.lua`. Reply: [`PermitsAdded`].
pub(crate) static ADD_PERMITS: Lazy<Script> =
    Lazy::new(|| Script::new(with_sem!("add_permits.lua")));

/// Count the free permits; see `scripts/available.lua`. Reply: [`Counted`].
pub(crate) static AVAILABLE: Lazy<Script> = Lazy::new(|| Script::new(with_sem!("available.lua")));

/// Every script of the semaphore, by file name: for tests (`__private::scripts`).
pub(crate) fn sources() -> [(&'static str, &'static str); 7] {
    [
        ("acquire.lua", with_sem!("acquire.lua")),
        ("release.lua", with_sem!("release.lua")),
        ("leave.lua", with_sem!("leave.lua")),
        ("renew.lua", with_sem!("renew.lua")),
        ("set_permits.lua", with_sem!("set_permits.lua")),
        ("add_permits.lua", with_sem!("add_permits.lua")),
        ("available.lua", with_sem!("available.lua")),
    ]
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

/// The reply of `add_permits.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitsAdded {
    /// The permits are added: by this request, or by an earlier copy of it.
    Added,
    /// The semaphore's key holds another type.
    WrongType,
}

impl FromRedisValue for PermitsAdded {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::Added,
            -1 => Self::WrongType,
            other => return Err(unexpected("add_permits", other)),
        })
    }
}

/// The reply of `available.lua`: the free permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// The count.
    Permits(u64),
    /// The semaphore's key holds another type.
    WrongType,
}

impl FromRedisValue for Counted {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            -1 => Self::WrongType,
            count => Self::Permits(
                u64::try_from(count).map_err(|_| unexpected("semaphore count", count))?,
            ),
        })
    }
}
