//! Redis code in a body with the `redis` crate lock-runtime re-exports (no `redis` dependency of
//! the user's own), its errors returned with `?` as `LockError`.

use lock_runtime::{LockError, distribute_lock, redis};

#[distribute_lock(key = "item:{item}")]
async fn bid(item: u64, amount: u64) -> Result<u64, LockError> {
    let auditor = redis::Client::open("redis://audit.internal:6379")?;
    let mut connection = auditor.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    pipe.hset(format!("{{lock:item:{item}}}:bids"), "me", amount)
        .ignore();
    lock_runtime::exec::<()>(&pipe).await?;
    let seen: u64 = redis::cmd("INCR")
        .arg("audit:bids")
        .query_async(&mut connection)
        .await?;
    Ok(seen)
}

fn main() {
    let _ = bid;
}
