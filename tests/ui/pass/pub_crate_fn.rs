//! Visibility is kept: `pub(crate)` and `pub` functions in a module are callable from outside it.

mod inventory {
    use lock_runtime::{LockError, distribute_lock};

    #[distribute_lock(key = "restock:{sku}", wait = "500ms")]
    pub(crate) async fn restock(sku: &str, qty: u32) -> Result<u32, LockError> {
        Ok(qty + sku.len() as u32)
    }

    #[distribute_lock(key = "audit:{sku}", wait = "1m30s", lease = "10s")]
    pub async fn audit(sku: String) -> Result<(), LockError> {
        drop(sku);
        Ok(())
    }
}

async fn run() -> Result<(), lock_runtime::LockError> {
    inventory::restock("apple", 3).await?;
    inventory::audit("apple".to_owned()).await
}

fn main() {
    drop(run());
}
