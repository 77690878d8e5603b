//! `crate = ".."`: a crate that renamed the dependency, or reaches `lock-runtime` through a
//! crate of its own that re-exports it, tells the attribute where it is.

extern crate lock_runtime as locks;

/// A company's platform crate, re-exporting the lock runtime.
mod platform {
    pub use lock_runtime as lock;
}

use locks::{LockClient, LockError, distribute_lock};

#[distribute_lock(key = "renamed:{id}", crate = "::locks")]
async fn renamed(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

struct Service {
    locks: LockClient,
}

impl Service {
    #[distribute_lock(key = "platform:{id}", client = self.locks, fair = true, crate = "crate::platform::lock")]
    async fn through_platform(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }
}

fn main() {
    let _ = renamed;
    let _ = Service::through_platform;
}
