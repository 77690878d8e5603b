//! `{self.field}` placeholders, mixed with parameters.

use lock_runtime::{LockError, distribute_lock};

struct Tenant {
    tenant: String,
    shard: u16,
}

impl Tenant {
    #[distribute_lock(key = "tenant:{self.tenant}:{self.shard}:user:{user_id}")]
    async fn rename(&self, user_id: u64, name: &str) -> Result<String, LockError> {
        Ok(format!("{}/{user_id}: {name}", self.tenant))
    }

    #[distribute_lock(key = "tenant:{self}")]
    async fn wipe(self) -> Result<(), LockError> {
        drop(self);
        Ok(())
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tenant)
    }
}

async fn run(tenant: Tenant) -> Result<(), LockError> {
    tenant.rename(1, "alice").await?;
    tenant.wipe().await
}

fn main() {
    let _ = run;
}
