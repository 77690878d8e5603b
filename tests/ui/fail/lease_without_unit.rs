use lock_runtime::{LockError, distribute_lock};

// Redisson counts leases in milliseconds; a bare number is refused, with the fix.
#[distribute_lock(key = "stock:{id}", lease = "3000")]
async fn decrease_stock(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    let _ = decrease_stock(42);
}
