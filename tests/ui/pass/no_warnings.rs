//! The expansion adds no warning of its own: a crate that denies warnings compiles, whatever
//! the shape of the body (one expression, statements, an inner attribute).
#![deny(warnings)]

use lock_runtime::{LockError, distribute_lock};

#[distribute_lock(key = "stock:{product_id}")]
async fn one_expression(product_id: u64) -> Result<u64, LockError> { Ok(product_id) }

#[distribute_lock(key = "stock:{product_id}")]
async fn statements(product_id: u64, qty: u64) -> Result<u64, LockError> {
    let left = product_id.saturating_sub(qty);
    Ok(left)
}

#[distribute_lock(key = "stock:{product_id}")]
async fn inner_attribute(product_id: u64) -> Result<u64, LockError> {
    #![allow(clippy::let_and_return)]
    let id = product_id;
    Ok(id)
}

#[distribute_lock(key = "stock:{product_id}")]
async fn early_return(product_id: u64) -> Result<u64, LockError> {
    if product_id == 0 {
        return Ok(0);
    }
    Ok(product_id)
}

fn main() {
    let _ = (one_expression, statements, inner_attribute, early_return);
}
