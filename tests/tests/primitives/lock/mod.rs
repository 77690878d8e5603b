//! The reentrant lock (`LockClient::lock`), the family's base: how a holder lets go, leases and
//! the watchdog, re-entry, fencing tokens, waiting without polling, mutual exclusion across
//! processes, and lock-checked writes (`exec`, which the fair lock and the write lock share).

mod exclusion;
mod exec;
mod fencing;
mod lease;
mod reentry;
mod release;
mod waiting;
