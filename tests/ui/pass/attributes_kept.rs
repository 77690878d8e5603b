//! Doc comments and other attributes on the function are kept.
#![deny(missing_docs)]

/// A documented public module, so that `missing_docs` checks the function below.
pub mod stock {
    use lock_runtime::{LockError, distribute_lock};

    /// Takes `qty` items of `product_id` out of stock.
    ///
    /// Returns the stock left.
    #[must_use = "the stock left tells whether to reorder"]
    #[distribute_lock(key = "stock:{product_id}")]
    #[allow(clippy::needless_pass_by_value)]
    #[inline]
    pub async fn decrease(product_id: u64, qty: u32) -> Result<u32, LockError> {
        Ok(product_id as u32 - qty)
    }

    #[doc = "Puts `qty` items of `product_id` back."]
    #[distribute_lock(key = "stock:{product_id}")]
    #[cfg(not(any()))]
    pub async fn increase(product_id: u64, qty: u32) -> Result<u32, LockError> {
        Ok(product_id as u32 + qty)
    }
}

fn main() {}
