//! A Sentinel-managed primary ([`LockClientBuilder::sentinel`](crate::LockClientBuilder::sentinel)):
//! found through the Sentinels, and followed through failovers by the command connections and
//! the subscription hub.
//!
//! # Finding the primary
//!
//! redis-rs's `SentinelClient` does the asking ([`settings`] builds it from the builder's URLs):
//! `SENTINEL MASTERS` on the Sentinels (a few at once, answers taken in the order given), then
//! `ROLE` on the node a Sentinel names, so a primary the Sentinels have not yet noticed was
//! demoted is not taken. [`Primary`] holds the answer, with an *epoch* that counts the times it
//! moved to a new address, and tells everyone who follows it when it moves.
//!
//! # Following a failover
//!
//! The client learns of a failover in three ways, whichever comes first, and each one leads to
//! the same lookup ([`Primary::resolve`], one at a time: a request that waited for another's
//! lookup takes its outcome):
//!
//! - **The Sentinels say so.** One pub/sub connection to a Sentinel listens to
//!   `+switch-master` ([`switches`]); an announcement for our master triggers a lookup. This is
//!   what moves the client when the old primary still runs and still takes writes (a manual
//!   `SENTINEL FAILOVER`, or a primary cut off from the Sentinels but not from us): Sentinel
//!   demotes it only some seconds later, and a client that kept writing to it meanwhile would
//!   hand out locks that the new primary does not know. After its connection drops, the
//!   listener resubscribes (to whichever Sentinel answers) and looks up once, since it may have
//!   missed an announcement.
//! - **A request fails in a way that says the connection no longer reaches the primary**: no
//!   answer within the response timeout, the connection refused, reset or closed, or a write
//!   answered `READONLY` (the old primary, demoted to a replica, still accepts connections and
//!   reads). `Commands::report` then marks the command connection stale; the next attempt of any
//!   request looks the primary up and opens a fresh connection to it, inside that attempt's
//!   response timeout. Every one of these errors is transient for the script path
//!   (`core/script_path.rs`), so acquire, release and renew resend, with backoff, until the new
//!   primary answers or their own deadline passes: a failover is not an error, only a delay.
//!   While the Sentinels still name the dead primary (until `down-after-milliseconds` and the
//!   election pass), the lookup fails and the request resends.
//! - **The subscription hub's connection fails**: the hub looks the primary up before it
//!   reconnects, instead of reconnecting to the old address.
//!
//! Whoever finds the primary at a new address moves everyone: the command connections compare
//! the primary's epoch with their own before each request (a read under a lock, no I/O: the
//! uncontended path sends nothing more) and reconnect when it changed, and the hub, which
//! watches the epoch, drops its connection, reconnects to the new primary, resubscribes every
//! channel and wakes every waiter (a release published on the new primary before the hub
//! moved was lost to it). Waiters also wake at the holder's TTL, as always.
//!
//! # What a failover costs, and what it loses
//!
//! Requests stall for the failover itself (Sentinel's `down-after-milliseconds` plus the
//! election and promotion, about a second with small settings, more with the defaults) plus
//! one lookup and one connection. Redis replication is asynchronous: a lock acquired on the old
//! primary and not yet replicated is gone on the new one, and another client may take it.
//! [`LockClientBuilder::wait_for_replicas`](crate::LockClientBuilder::wait_for_replicas)
//! narrows that window, fencing tokens make it harmless to a store that checks them.
//!
//! # Connections
//!
//! The command connection (and the `WAIT` connection), the hub's and the listener's carry the
//! client's name (see `naming.rs`). redis-rs's connections for the lookup (one kept to each
//! Sentinel it asked, and a short one for the `ROLE` check of a data node) are not named.

mod primary;
mod settings;
mod switches;

pub(crate) use primary::Primary;
pub(crate) use settings::sentinel_client;
pub(crate) use switches::Limits;
