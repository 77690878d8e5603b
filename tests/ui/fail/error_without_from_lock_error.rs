use lock_runtime::distribute_lock;

#[derive(Debug)]
enum StockError {
    OutOfStock,
}

#[distribute_lock(key = "stock:{product_id}")]
async fn decrease_stock(product_id: u64, qty: u64) -> Result<u64, StockError> {
    if qty > 10 {
        return Err(StockError::OutOfStock);
    }
    Ok(product_id)
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = decrease_stock(42, 3);
}
