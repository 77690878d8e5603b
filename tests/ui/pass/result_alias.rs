//! Return types spelled through aliases: `Result<T>` with a fixed error, `io::Result`-like paths,
//! a `...Result` name, and a boxed error.

use lock_runtime::{LockError, distribute_lock};

#[derive(Debug)]
struct MyError(#[allow(dead_code)] String);

impl From<LockError> for MyError {
    fn from(err: LockError) -> Self {
        Self(err.to_string())
    }
}

type Result<T> = std::result::Result<T, MyError>;

mod errors {
    pub type StockResult<T> = std::result::Result<T, super::MyError>;
}

#[distribute_lock(key = "stock:{product_id}")]
async fn decrease_stock(product_id: u64) -> Result<u64> {
    if product_id == 0 {
        return Err(MyError("no product 0".to_owned()));
    }
    Ok(product_id)
}

#[distribute_lock(key = "stock:{product_id}")]
async fn restock(product_id: u64) -> errors::StockResult<()> {
    decrease_stock(product_id).await?;
    Ok(())
}

#[distribute_lock(key = "stock:{product_id}")]
async fn boxed(
    product_id: u64,
) -> std::result::Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(decrease_stock(product_id)
        .await
        .map_err(|err| format!("{err:?}"))?)
}

fn main() {
    drop(restock(1));
    drop(boxed(1));
}
