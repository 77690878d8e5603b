//! The engine every lock of the family shares, the way tokio's `Mutex`, `RwLock` and
//! `Semaphore` share its `batch_semaphore`: it knows no primitive.
//!
//! The reentrant [`Lock`](crate::Lock), the [`FairLock`](crate::FairLock), the read and write
//! locks of a [`ReadWriteLock`](crate::ReadWriteLock) and the permits of a
//! [`Semaphore`](crate::Semaphore) all keep their holds in a Redis hash (owner id -> hold
//! count), queue their waiters in Redis, and pass what they free on to the head of the queue.
//! They differ in their scripts, which a [`Flavor`](flavor::Flavor) (one per lock) and a
//! [`Layout`](flavor::Layout) (one per way of keeping holds) name. Everything else is written
//! once here, on top of the core:
//!
//! | module | its one job |
//! | --- | --- |
//! | `handle` | what every handle holds (client, name, metrics label) and does alike |
//! | `flavor` | a lock's [`Flavor`](flavor::Flavor) and [`Layout`](flavor::Layout); the one-owner layout the reentrant and fair lock share |
//! | `acquisition` | a fresh acquisition (the `Attempt` handed to the wait engine, a direct hand-over), or a re-entry of a lock the scope holds |
//! | `release` | the release of a hold, and the undos of requests whose callers gave up |
//! | `guard` | [`LockGuard`](crate::LockGuard), the proof of a hold of any lock of the family |
//! | `exec` | a guard's lock-checked writes |
//! | `info` | what a lock looks like to an operator ([`LockInfo`](crate::LockInfo)) |
//! | `listing` | which locks are held (`LockClient::held_locks`) |
//! | `scripts`, `replies` | the family's Lua files (`common.lua` among them) and the typed replies every primitive's scripts share |

pub(crate) mod acquisition;
pub(crate) mod exec;
pub(crate) mod flavor;
pub(crate) mod guard;
pub(crate) mod handle;
pub(crate) mod info;
pub(crate) mod listing;
pub(crate) mod release;
pub(crate) mod replies;
pub(crate) mod scripts;
