use lock_runtime::distribute_lock;

#[distribute_lock(key = "stock")]
struct Stock {
    quantity: u64,
}

fn main() {
    let _ = Stock { quantity: 1 }.quantity;
}
