//! What the library gives an operator (issue "Operations"): each lock's `info` and the client's
//! held locks, who holds a lock a caller timed out on, the client's name on its connections,
//! metrics, and `force_unlock`.

mod connection_names;
mod force_unlock;
mod holder;
mod info;
mod metrics;
