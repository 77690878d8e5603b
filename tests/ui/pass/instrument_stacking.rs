//! `#[tracing::instrument]` stacked above and below `#[distribute_lock]`; which span covers what
//! is checked at run time by `tests/tests/attribute/instrument.rs`.

use lock_runtime::{LockClient, LockError, distribute_lock};

// Attributes expand from the top, each wrapping what the ones above it made: the one written
// last is the outermost. The lock written first: the span also covers waiting for the lock,
// and `err` records a lock that could not be taken.
#[distribute_lock(key = "stock:{product_id}", wait = "5s")]
#[tracing::instrument(level = "debug", err(Debug))]
async fn span_around_lock(product_id: u64, qty: u32) -> Result<u32, LockError> {
    tracing::debug!("holding the lock");
    Ok(qty)
}

// `instrument` first: the span covers only the body, which runs under the lock, so its
// fields can record the lock's fencing token.
#[tracing::instrument(err(Debug), fields(token = ?lock_runtime::fencing_token()))]
#[distribute_lock(key = "stock:{product_id}", lease = "3s")]
async fn span_inside_lock(product_id: u64, qty: u32) -> Result<u32, LockError> {
    Ok(qty)
}

struct Service {
    locks: LockClient,
}

impl Service {
    #[distribute_lock(key = "svc:{id}", client = self.locks)]
    #[tracing::instrument(skip(self))]
    async fn outer(&self, id: u64) -> Result<u64, LockError> {
        self.inner(id).await
    }

    #[tracing::instrument(skip(self), ret)]
    #[distribute_lock(key = "svc:{id}:inner", client = self.locks)]
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
