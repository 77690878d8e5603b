//! `mode = "read"` and `mode = "write"`: the two sides of the read-write lock, with every other
//! argument, on free functions and methods; a write calling a read of the same key (a downgrade)
//! compiles like any nested call, and the futures are still `Send + 'static`.

use std::sync::Arc;

use lock_runtime::{LockClient, LockError, distribute_lock};

#[distribute_lock(key = "doc:{id}", mode = "read")]
async fn show(id: u64) -> Result<String, LockError> {
    Ok(id.to_string())
}

#[distribute_lock(key = "doc:{id}", mode = "write", wait = "1s", lease = "3s")]
async fn edit(id: u64, text: String) -> Result<usize, LockError> {
    Ok(text.len() + show(id).await?.len())
}

struct Docs {
    locks: LockClient,
}

impl Docs {
    #[distribute_lock(
        mode = "read",
        key = "doc:{id}",
        client = self.locks,
        wait = "30s",
        lease = "10s",
        on_lease_lost = "continue"
    )]
    async fn read(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }

    #[distribute_lock(key = "doc:{id}", client = self.locks, mode = "write")]
    async fn write(&self, id: u64) -> Result<u64, LockError> {
        // Downgrades: the read lock is granted under this call's write lock.
        self.read(id).await
    }
}

fn spawn_edit() -> tokio::task::JoinHandle<Result<usize, LockError>> {
    tokio::spawn(edit(7, "text".to_owned()))
}

fn spawn_write(docs: Arc<Docs>) -> tokio::task::JoinHandle<Result<u64, LockError>> {
    tokio::spawn(async move { docs.write(7).await })
}

fn main() {
    let _ = spawn_edit;
    let _ = spawn_write;
}
