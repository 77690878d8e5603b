//! Annotated functions inside, and called from, an annotated function.

use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "outer:{id}")]
async fn outer(id: u64) -> Result<u64, LockError> {
    #[distribute_lock(key = "inner:{id}:{step}", wait = "100ms")]
    async fn inner(id: u64, step: u32) -> Result<u64, LockError> {
        Ok(id + u64::from(step))
    }

    let first = inner(id, 1).await?;
    // Re-enters `outer`'s own lock.
    let again = reentrant(id).await?;
    Ok(first + again)
}

#[distribute_lock(key = "outer:{id}")]
async fn reentrant(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    drop(outer(1));
}
