//! `fair = true`: the fair lock, with every other argument, on a free function and a method; the
//! future is still `Send + 'static`.

use std::sync::Arc;

use lock_runtime::{LockClient, LockError, distribute_lock};

#[distribute_lock(key = "jobs:{queue}", fair = true)]
async fn run_next(queue: String) -> Result<String, LockError> {
    Ok(queue)
}

struct Worker {
    locks: LockClient,
}

impl Worker {
    #[distribute_lock(
        fair = true,
        key = "jobs:{queue}",
        client = self.locks,
        wait = "30s",
        lease = "10s",
        on_lease_lost = "continue"
    )]
    async fn take(&self, queue: &str) -> Result<usize, LockError> {
        // Re-enters the fair lock it holds.
        self.again(queue).await
    }

    #[distribute_lock(key = "jobs:{queue}", client = self.locks, fair = true)]
    async fn again(&self, queue: &str) -> Result<usize, LockError> {
        Ok(queue.len())
    }
}

fn spawn_next() -> tokio::task::JoinHandle<Result<String, LockError>> {
    tokio::spawn(run_next("emails".to_owned()))
}

fn spawn_take(worker: Arc<Worker>) -> tokio::task::JoinHandle<Result<usize, LockError>> {
    tokio::spawn(async move { worker.take("emails").await })
}

fn main() {
    let _ = spawn_next;
    let _ = spawn_take;
}
