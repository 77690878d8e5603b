//! `fair = false` is accepted and takes the default (reentrant) lock.

use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "stock:{product_id}", fair = false, wait = "1s")]
async fn decrease_stock(product_id: u64) -> Result<u64, LockError> {
    Ok(product_id)
}

fn main() {
    drop(decrease_stock(42));
}
