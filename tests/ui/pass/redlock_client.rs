//! `client = …` naming a `Redlock`: a field, a reference, an `Arc`.

use std::sync::Arc;

use lock_runtime::{LockError, Redlock, distribute_lock};

struct Reports {
    redlock: Redlock,
    shared: Arc<Redlock>,
}

impl Reports {
    #[distribute_lock(key = "report:{day}", client = self.redlock, lease = "30s")]
    async fn build(&self, day: u32) -> Result<Option<u64>, LockError> {
        let _ = day;
        Ok(lock_runtime::fencing_token())
    }

    #[distribute_lock(key = "report:{day}:mail", client = self.shared, wait = "1s")]
    async fn mail(&self, day: u32) -> Result<(), LockError> {
        let _ = day;
        Ok(())
    }
}

#[distribute_lock(key = "audit:{id}", client = redlock)]
async fn audit(redlock: &Redlock, id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    let _ = (Reports::build, Reports::mail, audit);
}
