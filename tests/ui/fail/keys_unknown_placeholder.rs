use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(keys = ["acct:{from}", "acct:{destination}"])]
async fn transfer(from: u64, to: u64) -> Result<u64, LockError> {
    Ok(from + to)
}

fn main() {
    // The function is still emitted, so using it adds no error.
    let _ = transfer(1, 2);
}
