use lock_runtime::{LockError, distribute_lock};

struct ProductId(u64);

#[distribute_lock(key = "stock:{product_id}")]
async fn decrease_stock(product_id: ProductId) -> Result<u64, LockError> {
    Ok(product_id.0)
}

fn main() {
    let _ = decrease_stock(ProductId(42));
}
