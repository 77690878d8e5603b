//! The auction: bids on items kept in Redis, each a read-check-write under the item's lock, the
//! write checked by Redis itself with [`lock_runtime::exec`].

use std::time::Duration;

use lock_runtime::{LockError, distribute_lock};
use redis::{AsyncCommands, aio::MultiplexedConnection};

/// Why a bid went wrong (a bid that is too low is not an error: see [`BidOutcome::TooLow`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuctionError {
    /// The lock could not be taken, or was lost. When [`lock_runtime::exec`] refused the write
    /// because the lease had run out, this is [`LockError::LeaseLost`] and nothing was written.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Redis failed, or an item's record is not what the auction writes.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

impl AuctionError {
    /// True if the lock could not be taken within the wait.
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, Self::Lock(err) if err.is_timeout())
    }

    /// True if the lock was lost before the bid was written: nothing was written.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Lock(err) if err.is_lease_lost())
    }
}

/// What became of a bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BidOutcome {
    /// The bid was higher than the one standing, and now stands.
    Accepted {
        /// The bid it replaced (the opening price if it was the first).
        previous: u64,
    },
    /// The bid was not higher than the one standing; nothing was written.
    TooLow {
        /// The bid standing.
        highest: u64,
    },
}

/// One line of an item's log of accepted bids, in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBid {
    /// The amount.
    pub amount: u64,
    /// Who bid it.
    pub bidder: String,
}

/// An item as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The bid standing (the opening price before the first accepted bid).
    pub highest: u64,
    /// Who placed it (empty before the first accepted bid).
    pub bidder: String,
    /// Every accepted bid, in the order they were written.
    pub accepted: Vec<AcceptedBid>,
}

/// A bid that was accepted and then overwritten by one that was not higher: its bidder was told
/// "accepted" and lost the item to a lower bid. The lock makes sure this never happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostBid {
    /// The bid that stood and was lost.
    pub lost: AcceptedBid,
    /// The bid written over it, not higher.
    pub overwritten_by: AcceptedBid,
}

impl Item {
    /// The accepted bids overwritten by one that was not higher, in the order of the log: empty
    /// when every accepted bid was higher than the one before.
    pub fn lost_bids(&self) -> Vec<LostBid> {
        self.accepted
            .windows(2)
            .filter(|pair| pair[1].amount <= pair[0].amount)
            .map(|pair| LostBid {
                lost: pair[0].clone(),
                overwritten_by: pair[1].clone(),
            })
            .collect()
    }

    /// The highest bid ever accepted, which may no longer stand (see [`Item::lost_bids`]).
    pub fn highest_accepted(&self) -> Option<u64> {
        self.accepted.iter().map(|bid| bid.amount).max()
    }
}

/// Items and their bids in Redis, shared by every bidder of every process.
///
/// An item's keys share the hash tag of its lock `item:{id}`, `{lock:item:7}` (the lock
/// client's default key prefix `lock`): `{lock:item:7}:auction`, a hash of the bid standing
/// (`highest`, `bidder`), and `{lock:item:7}:accepted`, the list of accepted bids
/// (`"AMOUNT BIDDER"`). So on Redis Cluster they live in the lock's slot, as
/// [`lock_runtime::exec`] needs there.
#[derive(Clone)]
pub struct Auction {
    connection: MultiplexedConnection,
    think_time: Duration,
}

impl std::fmt::Debug for Auction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auction")
            .field("think_time", &self.think_time)
            .finish_non_exhaustive()
    }
}

impl Auction {
    /// An auction over the Redis at `url`. Bids under the lock go through the lock client
    /// (`lock_runtime::set_default_client`), reads through a connection of the auction's own.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Redis`] if Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, AuctionError> {
        let connection = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        Ok(Self {
            connection,
            think_time: Duration::ZERO,
        })
    }

    /// Pauses this long between reading the bid standing and writing a higher one, as a slower
    /// service would. Without the lock, this makes lost bids certain instead of merely likely.
    /// Defaults to no pause.
    #[must_use]
    pub fn with_think_time(mut self, think_time: Duration) -> Self {
        self.think_time = think_time;
        self
    }

    /// The hash tag of item `item_id`'s lock, shared by the item's keys: `{lock:item:7}`.
    pub fn hash_tag(item_id: u64) -> String {
        format!("{{lock:item:{item_id}}}")
    }

    fn record_key(item_id: u64) -> String {
        format!("{}:auction", Self::hash_tag(item_id))
    }

    fn log_key(item_id: u64) -> String {
        format!("{}:accepted", Self::hash_tag(item_id))
    }

    /// Opens item `item_id` at `opening` (bids must be higher), or reopens it, forgetting its
    /// bids.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Redis`].
    pub async fn open(&self, item_id: u64, opening: u64) -> Result<(), AuctionError> {
        let record = Self::record_key(item_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&record)
            .ignore()
            .del(Self::log_key(item_id))
            .ignore()
            .hset(&record, "highest", opening)
            .ignore()
            .hset(&record, "bidder", "")
            .ignore();
        pipe.query_async::<()>(&mut self.connection.clone()).await?;
        Ok(())
    }

    /// The bid standing on item `item_id` (a plain read: under the item's lock no other bidder
    /// writes meanwhile).
    ///
    /// # Errors
    ///
    /// [`AuctionError::Redis`], also when the item was never opened.
    pub async fn highest(&self, item_id: u64) -> Result<u64, AuctionError> {
        let highest: Option<u64> = self
            .connection
            .clone()
            .hget(Self::record_key(item_id), "highest")
            .await?;
        highest.ok_or_else(|| not_open(item_id))
    }

    /// Item `item_id` as Redis holds it: the bid standing and the log of accepted bids.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Redis`], also when the item was never opened.
    pub async fn item(&self, item_id: u64) -> Result<Item, AuctionError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hget(Self::record_key(item_id), "highest")
            .hget(Self::record_key(item_id), "bidder")
            .lrange(Self::log_key(item_id), 0, -1);
        let (highest, bidder, log): (Option<u64>, Option<String>, Vec<String>) =
            pipe.query_async(&mut self.connection.clone()).await?;
        let accepted = log
            .iter()
            .map(|line| {
                let (amount, bidder) = line.split_once(' ').unwrap_or((line, ""));
                let amount = amount.parse().map_err(|_| {
                    redis::RedisError::from((
                        redis::ErrorKind::Parse,
                        "not a line of the accepted bids",
                        line.clone(),
                    ))
                })?;
                Ok(AcceptedBid {
                    amount,
                    bidder: bidder.to_owned(),
                })
            })
            .collect::<Result<_, AuctionError>>()?;
        Ok(Item {
            highest: highest.ok_or_else(|| not_open(item_id))?,
            bidder: bidder.unwrap_or_default(),
            accepted,
        })
    }

    /// Bids `amount` on item `item_id` for `bidder`, holding the lock `item:{item_id}` across
    /// every process: waits at most 5 s for it, holds it at most 3 s. Reads the bid standing,
    /// and if `amount` is higher writes it with [`Auction::accept`], which Redis runs only while
    /// this call still holds the lock.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Lock`] when the lock cannot be taken in 5 s or its lease is lost (by the
    /// client's clock, or by Redis's when it refuses the write: nothing is written either way),
    /// and [`AuctionError::Redis`].
    #[distribute_lock(key = "item:{item_id}", wait = "5s", lease = "3s")]
    pub async fn place_bid(
        &self,
        item_id: u64,
        bidder: &str,
        amount: u64,
    ) -> Result<BidOutcome, AuctionError> {
        let highest = self.highest(item_id).await?;
        if amount <= highest {
            return Ok(BidOutcome::TooLow { highest });
        }
        tokio::time::sleep(self.think_time).await;
        self.accept(item_id, bidder, amount).await?;
        Ok(BidOutcome::Accepted { previous: highest })
    }

    /// Writes `amount` by `bidder` as item `item_id`'s bid standing and appends it to the
    /// accepted bids, in one step, with [`lock_runtime::exec`]: only if the lock held around the
    /// call (the body of [`Auction::place_bid`], or any `#[distribute_lock]` body or
    /// `LockGuard::scope` holding `item:{item_id}`) is still held, checked by Redis in the same
    /// script as the write. A holder whose lease ran out while it was paused writes nothing,
    /// even if it has not noticed.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Lock`] with [`LockError::LeaseLost`] if the lock is no longer held
    /// (nothing was written), with [`LockError::Config`] ([`Mistake::Misuse`](lock_runtime::Mistake::Misuse)) if no lock is held around the call;
    /// [`AuctionError::Redis`] if Redis cannot be reached.
    pub async fn accept(
        &self,
        item_id: u64,
        bidder: &str,
        amount: u64,
    ) -> Result<(), AuctionError> {
        Ok(lock_runtime::exec::<()>(&write_bid(item_id, bidder, amount)).await?)
    }

    /// The read-check-write of [`Auction::place_bid`] without the lock, its write unchecked:
    /// correct only if nothing else bids on the same item at the same time. The demo's
    /// `--no-lock` runs it to show the lost bids the lock prevents: two bidders read the same
    /// standing bid, both find theirs higher, and the later write wins even when it is lower.
    ///
    /// # Errors
    ///
    /// [`AuctionError::Redis`].
    pub async fn place_bid_unprotected(
        &self,
        item_id: u64,
        bidder: &str,
        amount: u64,
    ) -> Result<BidOutcome, AuctionError> {
        let highest = self.highest(item_id).await?;
        if amount <= highest {
            return Ok(BidOutcome::TooLow { highest });
        }
        tokio::time::sleep(self.think_time).await;
        write_bid(item_id, bidder, amount)
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(BidOutcome::Accepted { previous: highest })
    }
}

/// The write of an accepted bid: the bid standing and its line in the log, atomically (a
/// transaction when sent plainly; the lock-checked script runs it with nothing between anyway),
/// so the log's order is the order of the writes.
fn write_bid(item_id: u64, bidder: &str, amount: u64) -> redis::Pipeline {
    let record = Auction::record_key(item_id);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hset(&record, "highest", amount)
        .ignore()
        .hset(&record, "bidder", bidder)
        .ignore()
        .rpush(Auction::log_key(item_id), format!("{amount} {bidder}"))
        .ignore();
    pipe
}

fn not_open(item_id: u64) -> AuctionError {
    AuctionError::Redis(redis::RedisError::from((
        redis::ErrorKind::Client,
        "no such item",
        format!("item {item_id} was never opened"),
    )))
}
