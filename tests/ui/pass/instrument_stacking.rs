//! `#[tracing::instrument]` stacked above and below `#[distribute_lock]`.

use lock_runtime::{LockClient, LockError, distribute_lock};

// Instrument outside: the span also covers waiting for the lock.
#[tracing::instrument(level = "debug")]
#[distribute_lock(key = "stock:{product_id}", wait = "5s")]
async fn span_around_lock(product_id: u64, qty: u32) -> Result<u32, LockError> {
    tracing::debug!("holding the lock");
    Ok(qty)
}

// Instrument inside: the span covers only the body, which runs under the lock.
#[distribute_lock(key = "stock:{product_id}", lease = "3s")]
#[tracing::instrument(err(Debug), fields(token = ?lock_runtime::fencing_token()))]
async fn span_inside_lock(product_id: u64, qty: u32) -> Result<u32, LockError> {
    Ok(qty)
}

struct Service {
    locks: LockClient,
}

impl Service {
    #[tracing::instrument(skip(self))]
    #[distribute_lock(key = "svc:{id}", client = self.locks)]
    async fn outer(&self, id: u64) -> Result<u64, LockError> {
        self.inner(id).await
    }

    #[distribute_lock(key = "svc:{id}:inner", client = self.locks)]
    #[tracing::instrument(skip(self), ret)]
    async fn inner(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }
}

async fn run(service: Service) -> Result<(), LockError> {
    span_around_lock(1, 2).await?;
    span_inside_lock(1, 2).await?;
    service.outer(3).await?;
    Ok(())
}

/// Stacked with `instrument` either way, the futures stay `Send`.
fn spawn_all() -> tokio::task::JoinHandle<Result<u32, LockError>> {
    tokio::spawn(async {
        span_around_lock(1, 2).await?;
        span_inside_lock(1, 2).await
    })
}

fn main() {
    let _ = spawn_all;
    let _ = run;
}
