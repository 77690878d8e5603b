use lock_runtime::{LockError, distribute_lock};

struct Path<T>(T);

// A pattern that binds nothing gives the key nothing to name.
#[distribute_lock(key = "order:{id}")]
async fn handler(Path(_): Path<u64>) -> Result<u64, LockError> {
    Ok(0)
}

fn main() {
    let _ = handler(Path(1));
}
