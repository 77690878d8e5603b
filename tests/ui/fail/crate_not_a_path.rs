use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "stock:{id}", crate = "lock-runtime")]
async fn decrease_stock(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    let _ = decrease_stock(42);
}
