use std::{future::Future, pin::Pin};

use lock_runtime::{LockClient, LockError, distribute_lock};

struct Inventory {
    locks: LockClient,
}

// What `#[async_trait]` makes of an `async fn` of its impl, before this attribute sees it.
impl Inventory {
    #[distribute_lock(key = "reserve:{sku}", client = self.locks)]
    fn reserve<'a>(
        &'a self,
        sku: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u32, LockError>> + Send + 'a>> {
        Box::pin(async move { Ok(sku.len() as u32) })
    }
}

fn main() {}
