//! The fault suite (DESIGN 3.2): network blips, cancellation at every `.await`, Redis restarted
//! or out of memory, a holder frozen past its lease, a failover before the replica had the lock,
//! any `Duration` and any bad input, and the Lua scripts' resend contract driven directly.
//!
//! Late copies of requests have a binary of their own for now (`late_copies.rs`), and so does
//! the model-based test (`model.rs`).

mod blips;
mod cancellation;
mod durations;
mod eviction;
mod failover_window;
mod family_scripts;
mod fenced_store;
mod restarts_and_input;
mod scripts;
