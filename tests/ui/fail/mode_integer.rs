use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "stock:{product_id}", mode = 1)]
async fn read_stock(product_id: u64) -> Result<u64, LockError> {
    Ok(product_id)
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = read_stock(42);
}
