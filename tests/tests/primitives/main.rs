//! The primitives, one module each (as tokio's `sync_*` tests): the reentrant lock, the fair
//! lock, the read-write lock, the semaphore, the count-down latch, the multi-lock and Redlock,
//! each against real Redis (DESIGN 4.1).

mod count_down_latch;
mod fair_lock;
mod lock;
mod multi_lock;
mod read_write_lock;
mod redlock;
mod semaphore;
