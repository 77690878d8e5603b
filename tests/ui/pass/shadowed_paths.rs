//! The expansion names only absolute paths (`::core`, `::std`, `::lock_runtime`): local modules
//! with those names do not change what it means.
#![allow(dead_code)]

mod core {}
mod std {}
mod lock_runtime {}
mod __private {}

struct Option;
struct Some;
struct None;
struct Duration;
struct LockedCall;
struct String;

#[derive(Debug)]
struct AppError;

impl From<::lock_runtime::LockError> for AppError {
    fn from(_: ::lock_runtime::LockError) -> Self {
        Self
    }
}

#[::lock_runtime::distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, AppError> {
    Ok(product_id as u32 - qty)
}

struct Service {
    locks: ::lock_runtime::LockClient,
}

impl Service {
    #[::lock_runtime::distribute_lock(key = "svc:{id}", client = self.locks, on_lease_lost = "continue")]
    async fn handle(&self, id: u64) -> Result<(), AppError> {
        let _ = id;
        Ok(())
    }
}

fn main() {}
