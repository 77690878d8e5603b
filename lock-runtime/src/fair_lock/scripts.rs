//! The fair lock's own Lua script: its acquire, which gives a free lock to the head of the queue
//! only. Its reply is the reentrant lock's `Acquired`; every other script (release waking the
//! head by name, leaving the queue, re-entry, renewal, force-unlock) is the reentrant lock's,
//! since both locks hold the same hash and the same queue.

use once_cell::sync::Lazy;
use redis::Script;

/// `scripts/acquire.lua` as sent: the reentrant lock's `common.lua` in front (it shares its
/// functions: taking the lock, re-arming a resent hold, the queue).
const ACQUIRE_SOURCE: &str = concat!(
    include_str!("../lock/scripts/common.lua"),
    include_str!("scripts/acquire.lua")
);

/// Take the lock if it is free and this owner heads the queue, else queue; see
/// `scripts/acquire.lua`. Reply: `lock::scripts::Acquired`.
pub(crate) static ACQUIRE: Lazy<Script> = Lazy::new(|| Script::new(ACQUIRE_SOURCE));

/// Every script of the fair lock's own, by file name: for tests (`__private::scripts`).
pub(crate) fn sources() -> [(&'static str, &'static str); 1] {
    [("acquire.lua", ACQUIRE_SOURCE)]
}
