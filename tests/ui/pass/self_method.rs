//! `&self` methods naming their client: a field, a field behind an `Arc`, a method call.

use std::sync::Arc;

use lock_runtime::{LockClient, LockError, distribute_lock};

struct Accounts {
    locks: LockClient,
    shared: Arc<LockClient>,
}

impl Accounts {
    fn client(&self) -> &LockClient {
        &self.locks
    }

    #[distribute_lock(key = "account:{id}", client = self.locks, wait = "1s", on_lease_lost = "continue")]
    async fn deposit(&self, id: u64, cents: u64) -> Result<u64, LockError> {
        let _ = id;
        Ok(cents)
    }

    #[distribute_lock(key = "account:{id}", client = self.shared, on_lease_lost = "abort")]
    async fn withdraw(&self, id: u64, cents: u64) -> Result<u64, LockError> {
        // Re-enters the same lock through `deposit`.
        self.deposit(id, cents).await
    }

    #[distribute_lock(key = "account:{id}:audit", client = self.client())]
    async fn audit(&self, id: u64) -> Result<(), LockError> {
        let _ = id;
        Ok(())
    }
}

async fn run(accounts: Accounts) -> Result<(), LockError> {
    accounts.withdraw(7, 250).await?;
    accounts.audit(7).await
}

/// Methods on a shared service can be spawned.
fn spawn_withdraw(accounts: Arc<Accounts>) -> tokio::task::JoinHandle<Result<u64, LockError>> {
    tokio::spawn(async move { accounts.withdraw(7, 100).await })
}

fn main() {
    let _ = spawn_withdraw;
    let _ = run;
}
