//! The reentrant lock's Lua scripts, and the typed reply of each.
//!
//! Each script is a `.lua` file under `lock/scripts/` whose header gives its KEYS, ARGV and
//! replies; the enum next to it here decodes those replies, so the code that calls a script
//! matches on names. Every call goes through the core's script path (`core/script.rs`).

use std::time::Duration;

use once_cell::sync::Lazy;
use redis::{FromRedisValue, ParsingError, Script, Value};

use crate::core::script::unexpected;

/// The source of a lock script that uses the functions of `scripts/common.lua`, with that file
/// in front (Lua scripts in Redis cannot include one another).
macro_rules! with_common {
    ($file:literal) => {
        concat!(
            include_str!("scripts/common.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// Take a free lock for a new owner, or queue; see `scripts/acquire.lua`.
pub(crate) static ACQUIRE: Lazy<Script> = Lazy::new(|| Script::new(with_common!("acquire.lua")));

/// Re-enter a lock the scope holds; see `scripts/reenter.lua`.
pub(crate) static REENTER: Lazy<Script> = Lazy::new(|| Script::new(with_common!("reenter.lua")));

/// Release one hold, waking the head of the queue by name at the last; see
/// `scripts/release.lua`. Shared with the fair lock.
pub(crate) static RELEASE: Lazy<Script> = Lazy::new(|| Script::new(with_common!("release.lua")));

/// Extend a held lock's lease; see `scripts/renew.lua`. Its reply is the core's `Renewal`.
pub(crate) static RENEW: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/renew.lua")));

/// Delete a lock whoever holds it; see `scripts/force_unlock.lua`.
pub(crate) static FORCE_UNLOCK: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/force_unlock.lua")));

/// Undo a fresh acquisition that ends without a guard: leave the queue, give back, mark if
/// needed; see `scripts/leave.lua`. Shared with the fair lock.
pub(crate) static LEAVE: Lazy<Script> = Lazy::new(|| Script::new(with_common!("leave.lua")));

/// Undo a re-entry whose caller gave up; see `scripts/undo_reenter.lua`.
pub(crate) static UNDO_REENTER: Lazy<Script> =
    Lazy::new(|| Script::new(with_common!("undo_reenter.lua")));

/// Raise the fencing state to a quorum's token; see `scripts/raise_fence.lua`.
pub(crate) static RAISE_FENCE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/raise_fence.lua")));

/// `scripts/exec.lua` as sent: declared with a shebang, so that on Redis Cluster it may touch
/// keys of its lock's slot only (a script without one may touch any key of its node, and
/// breaks when slots move), then `common.lua`.
const EXEC_SOURCE: &str = concat!("#!lua\n", with_common!("exec.lua"));

/// Run a pipeline's commands if an owner still holds its lock; see `scripts/exec.lua`. Its reply
/// is decoded by `lock/exec.rs`.
pub(crate) static EXEC: Lazy<Script> = Lazy::new(|| Script::new(EXEC_SOURCE));

/// Every script of the lock, by file name: for tests and the benchmark (`__private::scripts`).
pub(crate) fn sources() -> [(&'static str, &'static str); 9] {
    [
        ("exec.lua", EXEC_SOURCE),
        ("acquire.lua", with_common!("acquire.lua")),
        ("reenter.lua", with_common!("reenter.lua")),
        ("release.lua", with_common!("release.lua")),
        ("renew.lua", include_str!("scripts/renew.lua")),
        ("force_unlock.lua", include_str!("scripts/force_unlock.lua")),
        ("leave.lua", with_common!("leave.lua")),
        ("undo_reenter.lua", with_common!("undo_reenter.lua")),
        ("raise_fence.lua", include_str!("scripts/raise_fence.lua")),
    ]
}

/// The reply of `acquire.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Taken, with this fencing token.
    Taken { token: u64 },
    /// Held by another owner for `ttl` more (`None`: the key has no TTL); the owner is queued.
    /// `server_us`: the server's clock, in µs, as the script ran (a direct hand-over to this
    /// owner is timed from it).
    Busy {
        ttl: Option<Duration>,
        server_us: u64,
        /// Who holds it, if the script says (the reentrant and fair locks' do).
        holder: Option<Seen>,
    },
    /// The lock's key holds another type.
    WrongType { found: String },
    /// The owner id was abandoned: this is a late copy of a request whose caller gave up.
    Abandoned,
    /// A semaphore's acquire asked for more permits than its total, `total`: it never could.
    MoreThanTotal { total: u64 },
    /// A semaphore's acquire found no permits set.
    NoPermitsSet,
}

impl FromRedisValue for Acquired {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Vec::<Value>::from_redis_value(value)?.into_iter();
        let mut next = || {
            items
                .next()
                .ok_or_else(|| ParsingError::from("short acquire reply"))
        };
        let status = i64::from_redis_value(next()?)?;
        let value = next()?;
        Ok(match status {
            1 => Self::Taken {
                token: u64::from_redis_value(value)?,
            },
            0 => Self::Busy {
                ttl: u64::try_from(i64::from_redis_value(value)?)
                    .ok()
                    .map(Duration::from_millis),
                server_us: u64::from_redis_value(next()?)?,
                holder: match (items.next(), items.next()) {
                    (Some(who), Some(waiters)) => Seen::decode(
                        &String::from_redis_value(who)?,
                        u64::from_redis_value(waiters)?,
                    ),
                    _ => None,
                },
            },
            -1 => Self::WrongType {
                found: String::from_redis_value(value)?,
            },
            -3 => Self::Abandoned,
            -4 => Self::MoreThanTotal {
                total: u64::from_redis_value(value)?,
            },
            -5 => Self::NoPermitsSet,
            other => return Err(unexpected("acquire", other)),
        })
    }
}

/// What a busy acquire saw of the holder: its client's name, when it took the lock (server
/// time, ms), and how many waited in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    name: String,
    since_ms: u64,
    waiters: u64,
}

impl Seen {
    /// Decodes the lock's `~who` field ("<client name> <server time in ms>"); `None` when the
    /// hold recorded none.
    fn decode(who: &str, waiters: u64) -> Option<Self> {
        let (Some(name), Some(since_ms)) = split_record(who) else {
            return None;
        };
        Some(Self {
            name: name.to_owned(),
            since_ms,
            waiters,
        })
    }

    /// The holder, in words, as seen at server time `server_us`.
    pub(crate) fn describe(&self, server_us: u64) -> String {
        let held = Duration::from_millis((server_us / 1000).saturating_sub(self.since_ms));
        format!(
            "held by {} for {:.1} s, {} in the queue",
            self.name,
            held.as_secs_f64(),
            self.waiters
        )
    }
}

/// A hold's record of who took it, "<client name> <server ms>" (see `take` and `who_field` in
/// `scripts/common.lua`): the name and the time. A record that does not end in a time is all
/// name; an empty one is neither.
pub(crate) fn split_record(record: &str) -> (Option<&str>, Option<u64>) {
    match record.rsplit_once(' ') {
        Some((name, since)) => match since.parse() {
            Ok(since_ms) => (Some(name), Some(since_ms)),
            Err(_) => (Some(record), None),
        },
        None => ((!record.is_empty()).then_some(record), None),
    }
}

/// The reply of `reenter.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reentered {
    Entered,
    /// The scope's owner no longer holds the lock.
    Lost,
    WrongType,
    /// The request was undone before it arrived.
    Cancelled,
}

impl FromRedisValue for Reentered {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::Entered,
            0 => Self::Lost,
            -1 => Self::WrongType,
            -2 => Self::Cancelled,
            other => return Err(unexpected("reenter", other)),
        })
    }
}

/// The reply of `release.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The last hold: the lock is free and a waiter was woken.
    Freed,
    /// One hold given back; the owner still holds the lock.
    StillHeld,
    /// The owner did not hold the lock.
    NotHeld,
    WrongType,
}

impl FromRedisValue for Released {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::Freed,
            2 => Self::StillHeld,
            0 => Self::NotHeld,
            -1 => Self::WrongType,
            other => return Err(unexpected("release", other)),
        })
    }
}

/// The reply of `force_unlock.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForceUnlocked {
    Deleted,
    NotLocked,
    WrongType,
}

impl FromRedisValue for ForceUnlocked {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::Deleted,
            0 => Self::NotLocked,
            -1 => Self::WrongType,
            other => return Err(unexpected("force_unlock", other)),
        })
    }
}

/// The reply of `leave.lua` and `undo_reenter.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undone {
    /// The request had taken something: given back.
    GivenBack,
    /// It had taken nothing, and now never will.
    NothingTaken,
}

impl FromRedisValue for Undone {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(value)? {
            1 => Self::GivenBack,
            0 => Self::NothingTaken,
            other => return Err(unexpected("undo", other)),
        })
    }
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
