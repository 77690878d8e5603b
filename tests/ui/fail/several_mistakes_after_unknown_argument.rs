use lock_runtime::distribute_lock;

#[distribute_lock(key = "stock:{product}", timeout = "5s", wait = "0s")]
fn decrease_stock(product_id: u64) -> u64 {
    product_id
}

fn main() {
    let _ = decrease_stock(42);
}
