//! The bounds of the durations the runtime takes: a lease from 1 ms to 365 days, any wait above
//! zero (a sub-millisecond one, or one too long to reach, which means "forever").

use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "short:{id}", lease = "1ms", wait = "500us")]
async fn shortest(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[distribute_lock(key = "long:{id}", lease = "365d", wait = "1000y")]
async fn longest(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    let _ = (shortest, longest);
}
