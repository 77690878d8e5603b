use lock_runtime::distribute_lock;

// Every mistake is reported at once: the conflicts on each of their tokens, the element that is
// not a string literal, the placeholder naming no parameter, the fn that is not async.
#[distribute_lock(keys = ["acct:{from}", "acct:{dest}", 7], fair = true)]
fn transfer(from: u64, to: u64) -> Result<u64, lock_runtime::LockError> {
    Ok(from + to)
}

fn main() {
    let _ = transfer(1, 2);
}
