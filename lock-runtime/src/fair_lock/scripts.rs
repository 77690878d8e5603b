//! The fair lock's Lua scripts. Their replies are the reentrant lock's reply types (the fair
//! acquire answers like `acquire.lua`, the release like `release.lua`, leaving like
//! `abandon.lua`), decoded by the same enums; re-entry, its undo, renewal and force-unlock are
//! the reentrant lock's own scripts, since both locks hold the same hash.

use once_cell::sync::Lazy;
use redis::Script;

/// Take the lock if it is free and this owner heads the queue, else queue; see
/// `scripts/acquire.lua`. Reply: `lock::scripts::Acquired`.
pub(crate) static ACQUIRE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/acquire.lua")));

/// Release one hold and wake the head of the queue by name; see `scripts/release.lua`. Reply:
/// `lock::scripts::Released`.
pub(crate) static RELEASE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/release.lua")));

/// Leave the queue, give back what was taken, mark the owner abandoned; see `scripts/leave.lua`.
/// Reply: `lock::scripts::Undone`.
pub(crate) static LEAVE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/leave.lua")));

/// Every script of the fair lock, by file name: for tests (`__private::scripts`).
pub(crate) fn sources() -> [(&'static str, &'static str); 3] {
    [
        ("acquire.lua", include_str!("scripts/acquire.lua")),
        ("release.lua", include_str!("scripts/release.lua")),
        ("leave.lua", include_str!("scripts/leave.lua")),
    ]
}
