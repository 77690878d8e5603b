//! Placeholders reaching into fields of a parameter, named and positional.

use lock_runtime::{LockError, distribute_lock};

struct OrderId(u64);

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

struct Customer {
    region: &'static str,
}

struct Order {
    id: OrderId,
    customer: Customer,
    total_cents: u64,
}

#[distribute_lock(key = "order:{order.customer.region}:{order.id}", lease = "5s")]
async fn pay(order: Order) -> Result<u64, LockError> {
    Ok(order.total_cents)
}

#[distribute_lock(key = "pair:{pair.0}-{ pair.1 }")]
async fn swap(pair: (u32, &str)) -> Result<(&str, u32), LockError> {
    Ok((pair.1, pair.0))
}

async fn run() -> Result<(), LockError> {
    let order = Order {
        id: OrderId(1),
        customer: Customer { region: "eu" },
        total_cents: 999,
    };
    pay(order).await?;
    swap((1, "one")).await?;
    Ok(())
}

fn main() {
    drop(run());
}
