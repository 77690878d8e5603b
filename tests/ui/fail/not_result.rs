use lock_runtime::distribute_lock;

#[distribute_lock(key = "stock:{product_id}")]
async fn decrease_stock(product_id: u64) -> u32 {
    product_id as u32
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = decrease_stock(42);
}
