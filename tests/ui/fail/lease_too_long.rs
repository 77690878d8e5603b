use lock_runtime::{LockError, distribute_lock};

// The runtime refuses leases over 365 days.
#[distribute_lock(key = "stock:{product_id}", lease = "2y")]
async fn decrease_stock(product_id: u64) -> Result<u64, LockError> {
    Ok(product_id)
}

// "1y" is 365.25 days: over too.
#[distribute_lock(key = "stock:{product_id}", lease = "1y")]
async fn restock(product_id: u64) -> Result<u64, LockError> {
    Ok(product_id)
}

fn main() {
    // The functions are still emitted, so using them adds no error.
    let _ = decrease_stock(42);
    let _ = restock(42);
}
