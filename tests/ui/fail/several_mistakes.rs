use lock_runtime::distribute_lock;

#[distribute_lock(
    key = "stock:{product}",
    wait = "5x",
    lease = "0s",
    wait = "1s",
    on_lease_lost = "retry"
)]
fn decrease_stock(product_id: u64) -> u64 {
    product_id
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = decrease_stock(42);
}
