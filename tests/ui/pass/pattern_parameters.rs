//! The shapes of a web handler: parameters bound by patterns (axum's extractors), named in the
//! key and the client, and a return type of `Result<impl Trait, E>`.

use std::fmt::Display;

use lock_runtime::{LockClient, LockError, distribute_lock};

/// Stand-ins for axum's extractors, which are tuple structs.
struct State<T>(T);
struct Path<T>(T);

#[derive(Clone)]
struct AppState {
    locks: LockClient,
}

struct Order {
    id: u64,
    sku: String,
}

#[distribute_lock(key = "order:{id}", client = state.locks)]
async fn handler(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<impl Display, LockError> {
    Ok(id)
}

#[distribute_lock(key = "pair:{a}:{b}")]
async fn pair((a, b): (u64, u64), _unused: (u8, u8)) -> Result<u64, LockError> {
    Ok(a + b)
}

#[distribute_lock(key = "sku:{sku}:{id}")]
async fn destructured(Order { id, sku }: Order) -> Result<(u64, String), LockError> {
    Ok((id, sku))
}

#[distribute_lock(key = "item:{copied}")]
async fn by_reference(&copied: &u64) -> Result<Vec<impl Display>, LockError> {
    Ok(vec![copied])
}

/// `impl Trait` deeper in the return type: an associated type, a pointer.
#[distribute_lock(key = "rows:{count}")]
async fn rows(count: u64) -> Result<Box<dyn Iterator<Item = impl Display> + Send>, LockError> {
    Ok(Box::new(0..count))
}

#[distribute_lock(key = "pointer:{count}")]
async fn pointer(count: u64) -> Result<(*const u8, Option<impl Display>), LockError> {
    Ok((std::ptr::null(), Some(count)))
}

/// Spawned, as a handler's future is.
fn spawn_all(state: AppState) -> tokio::task::JoinHandle<Result<String, LockError>> {
    tokio::spawn(async move {
        let shown = handler(State(state), Path(7)).await?.to_string();
        let _ = pair((1, 2), (0, 0)).await?;
        let _ = destructured(Order {
            id: 1,
            sku: "a".to_owned(),
        })
        .await?;
        let _ = by_reference(&4).await?.len();
        Ok(shown)
    })
}

fn main() {
    let _ = spawn_all;
    let _ = rows(1);
    let _ = pointer(1);
}
