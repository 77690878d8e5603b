//! The fault suite (DESIGN 3.2): network blips, cancellation at every `.await`, Redis restarted
//! or out of memory, a holder frozen past its lease, a failover before the replica had the lock,
//! any `Duration` and any bad input, and the Lua scripts' resend contract driven directly.
//!
//! The model-based test of late and duplicated copies has a binary of its own (`model.rs`).

mod blips;
mod cancellation;
mod durations;
mod eviction;
mod failover_window;
mod family_scripts;
mod fenced_store;
mod late_copies;
mod restarts_and_input;
mod scripts;
