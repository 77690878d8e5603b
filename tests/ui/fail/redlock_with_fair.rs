use lock_runtime::{LockError, Redlock, distribute_lock};

struct Jobs {
    redlock: Redlock,
}

impl Jobs {
    // A Redlock takes the exclusive lock only: `fair`, `mode` and `keys` need a `LockClient`.
    #[distribute_lock(key = "job:{id}", client = self.redlock, fair = true)]
    async fn run(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }

    #[distribute_lock(keys = ["a:{id}", "b:{id}"], client = self.redlock)]
    async fn both(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }
}

fn main() {}
