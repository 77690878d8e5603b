//! `keys = [...]`: a multi-lock of every formatted key, with every other argument that goes with
//! it, on a free function and a method; a trailing comma, one key, field placeholders; a call of
//! a `key` function on one of the keys from within (it re-enters); the futures are still
//! `Send + 'static`.

use std::sync::Arc;

use lock_runtime::{LockClient, LockError, distribute_lock};

#[distribute_lock(keys = ["acct:{from}", "acct:{to}"])]
async fn transfer(from: u64, to: u64, cents: u64) -> Result<u64, LockError> {
    Ok(deposit(to, cents).await? + from)
}

#[distribute_lock(key = "acct:{id}")]
async fn deposit(id: u64, cents: u64) -> Result<u64, LockError> {
    Ok(id + cents)
}

#[distribute_lock(keys = ["nightly-report"])]
async fn nightly_report() -> Result<(), LockError> {
    Ok(())
}

struct Account {
    id: u64,
}

struct Bank {
    locks: LockClient,
}

impl Bank {
    #[distribute_lock(
        keys = [
            "acct:{from.id}",
            "acct:{to.id}",
        ],
        client = self.locks,
        wait = "30s",
        lease = "10s",
        on_lease_lost = "continue"
    )]
    async fn transfer(&self, from: &Account, to: &Account, cents: u64) -> Result<u64, LockError> {
        self.audit(from.id).await?;
        Ok(cents)
    }

    #[distribute_lock(key = "acct:{id}", client = self.locks, fair = false)]
    async fn audit(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }
}

fn spawn_transfer() -> tokio::task::JoinHandle<Result<u64, LockError>> {
    tokio::spawn(transfer(1, 2, 250))
}

fn spawn_bank_transfer(bank: Arc<Bank>) -> tokio::task::JoinHandle<Result<u64, LockError>> {
    tokio::spawn(async move {
        let (from, to) = (Account { id: 1 }, Account { id: 2 });
        bank.transfer(&from, &to, 250).await
    })
}

fn main() {
    let _ = spawn_transfer;
    let _ = spawn_bank_transfer;
    let _ = nightly_report;
}
