use lock_runtime::{LockError, distribute_lock};

// The runtime refuses leases under 1 ms (Redis counts them in whole milliseconds).
#[distribute_lock(key = "stock:{product_id}", lease = "500us")]
async fn decrease_stock(product_id: u64) -> Result<u64, LockError> {
    Ok(product_id)
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = decrease_stock(42);
}
