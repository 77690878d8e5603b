//! What the library gives an operator (issue "Operations"): each lock's `info` and the client's
//! held locks, who holds a lock a caller timed out on, the client's name on its connections,
//! `force_unlock`, and the errors a caller meets.
//!
//! Metrics have a binary of their own (`metrics.rs`): its tests check that nothing in their
//! process recorded an unlabeled series, which the tests here do.

mod background_runtime;
mod connection_names;
mod errors;
mod executors;
mod force_unlock;
mod holder;
mod info;
