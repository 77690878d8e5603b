//! The primitives, one module each (as tokio's `sync_*` tests): the reentrant lock, the fair
//! lock, the read-write lock, the semaphore, the count-down latch, the multi-lock and Redlock,
//! each against real Redis (DESIGN 4.1).
//!
//! What a test needs from Redis comes from the kit (`lock_tests`); what several modules here
//! share and the kit cannot hold (the worker binary's path, known to integration tests only)
//! sits in this file.

mod count_down_latch;
mod fair_lock;
mod lock;
mod multi_lock;
mod read_write_lock;
mod redlock;
mod semaphore;
mod spawned;

/// The `lock-worker` binary: the tests' stand-in for another process of the application.
const WORKER: &str = env!("CARGO_BIN_EXE_lock-worker");
