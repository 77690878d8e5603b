//! Generics, a `where` clause, and an `impl Trait` argument used in the key.

use std::fmt::Display;

use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "{kind}:{id}", wait = "2s")]
async fn touch<Id, E>(kind: impl Display, id: Id, weight: u32) -> Result<u32, E>
where
    Id: Display + Send + 'static,
    E: From<LockError> + std::fmt::Debug,
{
    let _ = id;
    Ok(weight * 2)
}

#[derive(Debug)]
struct AppError(#[allow(dead_code)] LockError);

impl From<LockError> for AppError {
    fn from(err: LockError) -> Self {
        Self(err)
    }
}

async fn run() {
    let _: Result<u32, AppError> = touch("stock", 42_u64, 1).await;
    let _: Result<u32, LockError> = touch(String::from("user"), "alice", 2).await;
}

fn main() {
    drop(run());
}
