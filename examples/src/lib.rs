//! A stock-decrement service protected by `#[distribute_lock]`, a fenced document store, and an
//! auction whose bids Redis accepts only from the lock's holder.
//!
//! [`StockService::decrease`] is the Rust form of a Spring service method annotated with a
//! Redisson lock and `@Transactional(REQUIRES_NEW)`:
//!
//! ```text
//! #[distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
//! pub async fn decrease(&self, product_id: u64, qty: u32) -> Result<Sale, StockError> {
//!     // read the stock, refuse to oversell, write the new stock and an audit row in one
//!     // transaction, commit — all before the lock is released
//! }
//! ```
//!
//! The database is SQLite, one file shared by every process, so the demo (`stock-demo`) and the
//! tests run real worker processes against real storage: the lock is what keeps them from
//! overselling. [`FencedStore`] is the second example: a store that refuses writes carrying a
//! fencing token older than one it has seen (`fencing-demo`). [`Auction`] is the third: bids
//! kept in Redis, each a read-check-write under `#[distribute_lock(key = "item:{item_id}")]`
//! whose write Redis runs only while the lock is still held ([`lock_runtime::exec`]), so a bidder
//! frozen past its lease cannot put a stale bid over a newer one (`auction-demo`).

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod auction;
mod database;
pub mod demo;
mod fencing;
mod stock;

pub use auction::{AcceptedBid, Auction, AuctionError, BidOutcome, Item, LostBid};
pub use database::open_database;
pub use fencing::{FencedStore, WriteOutcome};
pub use stock::{Sale, SaleRecord, StockError, StockService};
