//! Locks composed of other locks: [`MultiLock`] (several locks of one client, all or nothing).
//! They have no Lua of their own: they are made of the reentrant lock's guards.

mod multi_lock;

pub use multi_lock::{MultiLock, MultiLockGuard};
