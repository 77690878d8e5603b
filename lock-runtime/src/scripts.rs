//! The Lua scripts that make every lock operation atomic in Redis.
//!
//! Each script lives in its own `.lua` file under `src/scripts/`, whose header names its KEYS,
//! ARGV and return values. They are compiled in with `include_str!` and hashed once per process;
//! `redis::Script::invoke_async` sends `EVALSHA` and falls back to `EVAL` when Redis answers
//! `NOSCRIPT` (after a restart or a `SCRIPT FLUSH`), so nothing has to be loaded up front.

use once_cell::sync::Lazy;
use redis::Script;

/// Acquire or re-enter a lock; see `scripts/acquire.lua`.
pub(crate) static ACQUIRE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/acquire.lua")));

/// Release one hold of a lock; see `scripts/release.lua`.
pub(crate) static RELEASE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/release.lua")));

/// Extend a held lock's lease; see `scripts/renew.lua`.
pub(crate) static RENEW: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/renew.lua")));

/// Delete a lock whoever holds it; see `scripts/force_unlock.lua`.
pub(crate) static FORCE_UNLOCK: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/force_unlock.lua")));

/// The command a script uses to announce a release (`PUBLISH` on one node).
pub(crate) const PUBLISH: &str = "publish";
