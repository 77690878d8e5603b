//! The README example: a free function with its own error type.

use lock_runtime::{LockError, distribute_lock};

#[derive(Debug)]
enum StockError {
    OutOfStock,
    Lock(LockError),
}

impl std::fmt::Display for StockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfStock => f.write_str("out of stock"),
            Self::Lock(err) => write!(f, "stock is busy: {err}"),
        }
    }
}

impl From<LockError> for StockError {
    fn from(err: LockError) -> Self {
        Self::Lock(err)
    }
}

#[distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, StockError> {
    let token = lock_runtime::fencing_token();
    debug_assert!(token.is_some());
    if qty > 10 {
        return Err(StockError::OutOfStock);
    }
    let stock = load(product_id).await?;
    Ok(stock - qty)
}

async fn load(product_id: u64) -> Result<u32, StockError> {
    Ok(product_id as u32)
}

/// The future is `Send + 'static`: it can be spawned on a multi-threaded runtime.
fn spawn_one() -> tokio::task::JoinHandle<Result<u32, StockError>> {
    tokio::spawn(decrease_stock(42, 3))
}

fn main() {
    let _ = spawn_one;
}
