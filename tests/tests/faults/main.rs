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

/// An acquire script's reply as a list, for the tests that drive the scripts directly: a taken
/// lock answers its fencing token alone, read as `{1, token}` beside the other answers'
/// `{status, …}`.
fn acquire_reply_items(reply: redis::Value) -> Vec<redis::Value> {
    match reply {
        redis::Value::Int(token) => vec![redis::Value::Int(1), redis::Value::Int(token)],
        reply => redis::from_redis_value(reply).expect("an acquire's reply"),
    }
}
