use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(wait = "5s", lease = "3s")]
async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, LockError> {
    Ok(product_id as u32 + qty)
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = decrease_stock(42, 3);
}
