//! `client = …` given by a static, a reference to one, and a function call.

use std::sync::{Arc, OnceLock};

use lock_runtime::{LockClient, LockError, distribute_lock};

static CLIENT: OnceLock<LockClient> = OnceLock::new();

fn locks() -> LockClient {
    CLIENT.get().expect("CLIENT is set at startup").clone()
}

fn shared() -> Arc<LockClient> {
    Arc::new(locks())
}

#[distribute_lock(key = "a:{id}", client = CLIENT.get().expect("CLIENT is set at startup"))]
async fn from_static(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[distribute_lock(key = "b:{id}", client = &locks())]
async fn from_reference(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[distribute_lock(key = "c:{id}", client = locks())]
async fn from_call(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[distribute_lock(key = "d:{id}", client = shared())]
async fn from_arc(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[distribute_lock(key = "e:{id}", client = client)]
async fn from_parameter(client: &LockClient, id: u64) -> Result<u64, LockError> {
    let _ = client;
    Ok(id)
}

async fn run() -> Result<(), LockError> {
    let client = LockClient::connect("redis://127.0.0.1:6379").await?;
    CLIENT.get_or_init(|| client);
    from_static(1).await?;
    from_reference(2).await?;
    from_call(3).await?;
    from_arc(4).await?;
    from_parameter(&locks(), 5).await?;
    Ok(())
}

fn main() {
    drop(run());
}
