//! A `&mut self` method: the key and the client are read before the body takes `self`.

use lock_runtime::{LockClient, LockError, distribute_lock};

struct Cart {
    locks: LockClient,
    id: u64,
    items: Vec<String>,
}

impl Cart {
    #[distribute_lock(key = "cart:{self.id}", client = self.locks, lease = "2s")]
    async fn add(&mut self, item: String) -> Result<usize, LockError> {
        self.items.push(item);
        Ok(self.items.len())
    }

    #[distribute_lock(key = "cart:{self.id}", client = self.locks)]
    async fn clear(mut self: Box<Self>) -> Result<Box<Self>, LockError> {
        self.items.clear();
        Ok(self)
    }
}

async fn run(mut cart: Cart) -> Result<(), LockError> {
    cart.add("apple".to_owned()).await?;
    Box::new(cart).clear().await?;
    Ok(())
}

fn main() {
    let _ = run;
}
