//! A method of a trait impl (native `async fn` in traits).

use lock_runtime::{LockClient, LockError, distribute_lock};

trait Inventory {
    async fn reserve(&self, sku: &str, qty: u32) -> Result<u32, LockError>;
}

struct Warehouse {
    locks: LockClient,
}

impl Inventory for Warehouse {
    #[distribute_lock(key = "reserve:{sku}", client = self.locks, wait = "250ms")]
    async fn reserve(&self, sku: &str, qty: u32) -> Result<u32, LockError> {
        Ok(qty)
    }
}

async fn run<I: Inventory>(inventory: &I) -> Result<u32, LockError> {
    inventory.reserve("apple", 2).await
}

/// For a concrete type, the trait method's future is `Send`.
fn spawn_reserve(warehouse: Warehouse) -> tokio::task::JoinHandle<Result<u32, LockError>> {
    tokio::spawn(async move { run(&warehouse).await })
}

fn main() {
    let _ = spawn_reserve;
    let _ = run::<Warehouse>;
}
