//! The stock service: decrease a product's stock without ever overselling.

use std::time::Duration;

use lock_runtime::{LockError, distribute_lock};
use sqlx::{Row, SqlitePool};
use tokio::time::Instant;

/// Why a purchase did not go through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StockError {
    /// Fewer units are left than asked for.
    #[error("out of stock: {available} left of product {product_id}, {requested} asked")]
    OutOfStock {
        /// The product.
        product_id: u64,
        /// Units left.
        available: u32,
        /// Units asked for.
        requested: u32,
    },
    /// The product does not exist.
    #[error("no product {0}")]
    UnknownProduct(u64),
    /// The database saw a newer fencing token for this product: this caller's lock had expired
    /// and another holder has written since. Nothing was written.
    #[error("stale lock on product {product_id}: token {token}, the database has seen newer")]
    StaleToken {
        /// The product.
        product_id: u64,
        /// This caller's token.
        token: u64,
    },
    /// The lock could not be taken, or was lost.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StockError {
    /// True if the lock could not be taken within the wait.
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, Self::Lock(err) if err.is_timeout())
    }
}

/// A purchase that went through.
#[derive(Debug, Clone, Copy)]
pub struct Sale {
    /// Units left after this sale.
    pub remaining: u32,
    /// The fencing token of the lock this sale was made under (`None` without a lock).
    pub fencing_token: Option<u64>,
    /// When the sale's critical section started, i.e. when the lock was acquired.
    pub started_at: Instant,
}

/// One row of the audit table: every committed sale, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    /// Units sold.
    pub qty: u32,
    /// Stock read before the sale.
    pub stock_before: u32,
    /// Stock written by the sale.
    pub stock_after: u32,
    /// The fencing token the sale was made under, if any.
    pub fencing_token: Option<u64>,
    /// The OS process that made the sale.
    pub process_id: u32,
}

/// Products and their stock in a SQLite database shared by many processes.
#[derive(Debug, Clone)]
pub struct StockService {
    pool: SqlitePool,
    think_time: Duration,
    hold_in_transaction: Duration,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id         INTEGER PRIMARY KEY,
    stock      INTEGER NOT NULL CHECK (stock >= 0),
    last_token INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sales (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id    INTEGER NOT NULL REFERENCES products (id),
    qty           INTEGER NOT NULL CHECK (qty > 0),
    stock_before  INTEGER NOT NULL CHECK (stock_before >= 0),
    stock_after   INTEGER NOT NULL CHECK (stock_after >= 0),
    fencing_token INTEGER,
    process_id    INTEGER NOT NULL
);
";

impl StockService {
    /// A service over `pool`, creating its tables if they are missing.
    ///
    /// # Errors
    ///
    /// [`StockError::Database`] if the schema cannot be created.
    pub async fn new(pool: SqlitePool) -> Result<Self, StockError> {
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self {
            pool,
            think_time: Duration::ZERO,
            hold_in_transaction: Duration::ZERO,
        })
    }

    /// Pauses this long between reading the stock and writing it, as a slower service would.
    /// Without the lock, this makes lost updates certain instead of merely likely.
    #[must_use]
    pub fn with_think_time(mut self, think_time: Duration) -> Self {
        self.think_time = think_time;
        self
    }

    /// Pauses this long inside the write transaction before committing, to show what a crash or
    /// a lost lease in the middle of a transaction does. Defaults to no pause.
    #[must_use]
    pub fn with_hold_in_transaction(mut self, hold: Duration) -> Self {
        self.hold_in_transaction = hold;
        self
    }

    /// The database this service writes to.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates `product_id` with `stock` units, or resets it and forgets its sales.
    ///
    /// # Errors
    ///
    /// [`StockError::Database`].
    pub async fn seed(&self, product_id: u64, stock: u32) -> Result<(), StockError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM sales WHERE product_id = ?")
            .bind(id(product_id))
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO products (id, stock, last_token) VALUES (?, ?, 0)
             ON CONFLICT (id) DO UPDATE SET stock = excluded.stock, last_token = 0",
        )
        .bind(id(product_id))
        .bind(stock)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The units of `product_id` left.
    ///
    /// # Errors
    ///
    /// [`StockError::UnknownProduct`], [`StockError::Database`].
    pub async fn stock(&self, product_id: u64) -> Result<u32, StockError> {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = ?")
            .bind(id(product_id))
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StockError::UnknownProduct(product_id))
    }

    /// Every committed sale of `product_id`, in commit order.
    ///
    /// # Errors
    ///
    /// [`StockError::Database`].
    pub async fn sales(&self, product_id: u64) -> Result<Vec<SaleRecord>, StockError> {
        let rows = sqlx::query(
            "SELECT qty, stock_before, stock_after, fencing_token, process_id
             FROM sales WHERE product_id = ? ORDER BY id",
        )
        .bind(id(product_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let token: Option<i64> = row.try_get("fencing_token")?;
                Ok(SaleRecord {
                    qty: row.try_get("qty")?,
                    stock_before: row.try_get("stock_before")?,
                    stock_after: row.try_get("stock_after")?,
                    fencing_token: token.and_then(|token| u64::try_from(token).ok()),
                    process_id: row.try_get("process_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StockError::from)
    }

    /// Sells `qty` units of `product_id`, holding the lock `stock:{product_id}` across every
    /// process: waits at most 5 s for it, holds it at most 3 s, and commits before releasing it.
    /// A body that outlives the lease is stopped and its transaction rolled back.
    ///
    /// # Errors
    ///
    /// [`StockError::OutOfStock`] when fewer than `qty` units are left (nothing is written),
    /// [`StockError::Lock`] when the lock cannot be taken in 5 s or its lease is lost, and the
    /// errors of [`StockService::decrease_unprotected`].
    #[distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
    pub async fn decrease(&self, product_id: u64, qty: u32) -> Result<Sale, StockError> {
        self.decrease_unprotected(product_id, qty).await
    }

    /// The read-check-write of [`StockService::decrease`] without the lock: correct only if
    /// nothing else sells the same product at the same time. The demo's `--no-lock` runs it to
    /// show the lost updates and the overselling the lock prevents.
    ///
    /// Under a lock, the write carries the lock's fencing token and the database refuses it if it
    /// has seen a newer one, so even a holder whose lease ran out unnoticed cannot overwrite a
    /// newer sale.
    ///
    /// # Errors
    ///
    /// [`StockError::OutOfStock`], [`StockError::UnknownProduct`], [`StockError::StaleToken`],
    /// [`StockError::Database`].
    pub async fn decrease_unprotected(
        &self,
        product_id: u64,
        qty: u32,
    ) -> Result<Sale, StockError> {
        let started_at = Instant::now();
        let token = lock_runtime::fencing_token();
        let available = self.stock(product_id).await?;
        if available < qty {
            return Err(StockError::OutOfStock {
                product_id,
                available,
                requested: qty,
            });
        }
        tokio::time::sleep(self.think_time).await;
        let remaining = available - qty;

        let mut transaction = self.pool.begin().await?;
        let token_value = token.and_then(|token| i64::try_from(token).ok());
        let updated = sqlx::query(
            "UPDATE products SET stock = ?, last_token = coalesce(?, last_token)
             WHERE id = ? AND (? IS NULL OR last_token < ?)",
        )
        .bind(remaining)
        .bind(token_value)
        .bind(id(product_id))
        .bind(token_value)
        .bind(token_value)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(match token {
                Some(token) => StockError::StaleToken { product_id, token },
                None => StockError::UnknownProduct(product_id),
            });
        }
        sqlx::query(
            "INSERT INTO sales (product_id, qty, stock_before, stock_after, fencing_token, process_id)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id(product_id))
        .bind(qty)
        .bind(available)
        .bind(remaining)
        .bind(token_value)
        .bind(std::process::id())
        .execute(&mut *transaction)
        .await?;
        tokio::time::sleep(self.hold_in_transaction).await;
        transaction.commit().await?;
        Ok(Sale {
            remaining,
            fencing_token: token,
            started_at,
        })
    }
}

/// SQLite integers are signed; product ids beyond `i64::MAX` wrap, which no test or demo uses.
fn id(product_id: u64) -> i64 {
    i64::try_from(product_id).unwrap_or(i64::MAX)
}
