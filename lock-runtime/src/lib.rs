//! Redis distributed locks for async Rust.
//!
//! `lock-runtime` gives async services what Redisson gives Java ones: a reentrant lock held in
//! Redis, taken with an atomic Lua script, waited for through pub/sub instead of polling, kept
//! alive by a lease watchdog, released on every exit path, and handing out fencing tokens.
//!
//! ```
//! # lock_tests::locks::run_with_redis(|url| async move {
//! use std::time::Duration;
//! use lock_runtime::LockClient;
//!
//! let client = LockClient::connect(&url).await?;
//! let lock = client.lock("stock:42");
//!
//! // Wait up to 5 s for the lock; hold it at most 3 s.
//! let guard = lock.try_acquire(Duration::from_secs(5), Some(Duration::from_secs(3))).await?;
//! let token = guard.fencing_token(); // pass it along with every write the lock protects
//! assert!(lock.is_locked().await?);
//! guard.unlock().await?;
//! assert!(!lock.is_locked().await?);
//!
//! // Without a lease, the watchdog renews the lock for as long as the guard lives,
//! // and dropping the guard releases it, in the background.
//! let guard = lock.acquire().await?;
//! assert!(guard.fencing_token() > token);
//! drop(guard);
//! client.flush().await; // the background release is done: do this before the process exits
//! assert!(!lock.is_locked().await?);
//! # Ok::<(), lock_runtime::LockError>(())
//! # });
//! ```
//!
//! # Start here
//!
//! - [`LockClient::connect`] (or [`LockClient::builder`]) connects to Redis; one client per
//!   process serves every lock, and clones are cheap.
//! - [`LockClient::lock`] gives a [`Lock`], whose [`acquire`](Lock::acquire) and
//!   [`try_acquire`](Lock::try_acquire) return a [`LockGuard`]: release it with
//!   [`unlock`](LockGuard::unlock), or by dropping it (then [`LockClient::flush`] before the
//!   process exits).
//! - [`#[distribute_lock]`](distribute_lock) takes a lock around an `async fn`'s body; the
//!   function returns `Result<T, E>` with `E: From<LockError>`, and uses the client given to
//!   [`set_default_client`] unless its `client = ...` names one.
//! - Every error is a [`LockError`].
//! - The other primitives ([`FairLock`], [`ReadWriteLock`], [`Semaphore`], [`CountDownLatch`],
//!   [`MultiLock`], [`Redlock`]) are made the same way, from the client.
//!
//! # How it works
//!
//! - **One client, two connections.** A [`LockClient`] holds one multiplexed command connection
//!   and one pub/sub connection, whatever the number of locks and waiting tasks; clones share them.
//! - **Atomic scripts.** Acquire, re-entry, release, renewal, force-unlock and the undos of an
//!   abandoned request are each one Lua script, run as a Redis Function (`FCALL`; each script is
//!   a library named by its source's SHA-1, loaded the first time a server lacks it), or with
//!   `EVALSHA` on Redis before 7.0 and for a Redis user denied Functions. Every key of one lock
//!   shares a hash tag (`{prefix:name}`), so each script touches one slot.
//! - **Waiting without polling, one wake-up per release.** A task that finds the lock taken
//!   queues in Redis under its owner id, joins the lock's channel in the client's subscription
//!   hub, and sleeps until the release names it, never longer than the holder's remaining TTL. A
//!   release wakes exactly one waiter across every process (the longest-queued live one), with a
//!   message on its client's own channel of the lock, which no other process receives; a free
//!   lock still goes to whoever asks first. One subscription serves every local waiter of a lock;
//!   a woken waiter that leaves without trying passes the wake-up on.
//! - **Leases.** A fixed lease (`try_acquire(wait, Some(lease))`) is never renewed. Without one,
//!   the lock is set with the client's `watchdog_timeout` (30 s by default) and renewed every
//!   third of it while the guard lives. Either way the guard knows its deadline, measured on the
//!   monotonic clock with a drift margin and never later than the key's expiry in Redis, and
//!   [`LockGuard::lease_lost`] resolves when the lease is known lost.
//! - **A fair lock too.** [`LockClient::fair_lock`] gives a [`FairLock`]: waiters queue in Redis
//!   by their first try, and the release hands the lock straight to the head of the queue, in
//!   whichever process it waits: first come first served, one message per release, and the
//!   woken task returns its guard without another request.
//! - **A read-write lock.** [`LockClient::read_write_lock`] gives a [`ReadWriteLock`]: many
//!   readers or one writer across every process, each hold with its own lease; a waiting writer
//!   blocks new readers (no writer starves), a write scope may take the read lock (downgrade),
//!   and an upgrade is refused at once instead of deadlocking.
//! - **A multi-lock.** [`LockClient::multi_lock`] gives a [`MultiLock`]: several reentrant
//!   locks, all or nothing, taken in name order so that callers never deadlock.
//! - **Redlock.** [`Redlock::new`] over one client per independent master gives one lock held
//!   by a quorum of them ([`RedlockLock`], [`RedlockGuard`]), surviving the loss of any minority,
//!   with fencing tokens that stay strictly increasing across the masters.
//! - **A semaphore.** [`LockClient::semaphore`] gives a [`Semaphore`]: permits shared by every
//!   process, each acquisition leased like a lock ([`SemaphorePermit`]), so a crashed holder's
//!   permits come back when its lease ends; a release wakes the waiters its permits fit.
//! - **A count-down latch.** [`LockClient::count_down_latch`] gives a [`CountDownLatch`]: a count
//!   set once and counted down from any process; the count-down that reaches zero wakes every
//!   waiter in every process with one message. A waiter still looks at the count at least every
//!   third of the watchdog timeout, and the latch's key lives 24 hours after its last change.
//! - **Reentrancy by scope.** Inside [`LockGuard::scope`], acquiring the same lock again
//!   re-enters it instead of deadlocking; one re-entry at a time per scope. Ownership follows that
//!   scope, not a thread or a task.
//! - **Fencing tokens.** Each fresh acquisition gets a token strictly greater than every earlier
//!   one for that name; [`fencing_token`] returns the innermost one inside a scope. Tokens are a
//!   hybrid logical clock: a counter started from the server's time in µs that counts up by one,
//!   is brought up to the clock when it has fallen 100 ms behind it, and expires ten minutes
//!   after it started, then restarts from the clock. No key outlives a lock without a TTL, and
//!   tokens stay increasing as long as the Redis server's clock does not step back by more than
//!   those ten minutes; through a failover that lost the last acquisitions, as long as it took
//!   longer than 100 ms plus how far the two servers' clocks disagree.
//! - **Who holds it.** Each hold records its client's name
//!   ([`LockClientBuilder::client_name`]) and when it was taken: a [`LockError::Timeout`] names
//!   the holder, [`Lock::info`] returns a [`LockInfo`] snapshot (holder, how long, hold count,
//!   lease left, waiters in queue order, last token), and [`LockClient::held_locks`] lists the
//!   held locks; the `lock-cli` binary shows the same from a shell.
//! - **Metrics.** With the `metrics` cargo feature: wait and hold times, acquisitions, timeouts,
//!   hand-offs, renewals, lease losses, and the holds and waiters of the moment, through the
//!   `metrics` facade, labeled by the primitive and the attribute's key template (or a handle's
//!   [`metrics_label`](Lock::metrics_label)); see [`metrics`].
//! - **Deployments.** One Redis ([`LockClientBuilder::url`]), optionally waiting after each
//!   acquisition for replicas to have the lock ([`LockClientBuilder::wait_for_replicas`]), a
//!   Redis Cluster ([`LockClientBuilder::cluster`]), or a Sentinel-managed primary followed
//!   through failovers ([`LockClientBuilder::sentinel`]). A client's connections and background
//!   tasks run on the library's own thread, so a client can be shared by any number of
//!   runtimes; a service whose one runtime outlives its client can give it that runtime
//!   instead ([`LockClientBuilder::background_runtime`]).
//! - **Safe to resend, and to give up.** A fresh acquisition's owner id is unique to it, and
//!   every hold of an owner has a number (its acquisition's, each re-entry's own) that the lock
//!   keeps in its own hash, so a command resent after a timeout or a reconnect never counts
//!   twice, nor does a copy that lands minutes late on a connection the client retired; a
//!   resent release answers what its first attempt did. A request whose caller gave up in flight
//!   is undone in the background (an acquisition marked abandoned, a re-entry's number spent),
//!   so a late copy takes nothing; a release cut short finishes in the background.
//! - **Any runtime.** The client's background work (hub, watchdog, releases, the connections'
//!   I/O) runs on one small runtime the library keeps, so a client outlives the Tokio runtime that
//!   built it: a default client serves every `#[tokio::test]` in turn.
//! - **Any `Duration`.** A wait of `Duration::MAX` means forever; timeouts that large mean no
//!   limit; a lease outside 1 ms ..= 1 year is a [`LockError::Config`] ([`Mistake::InvalidArgument`]). Nothing panics.
//!
//! # How it is built
//!
//! The crate stands in floors, each importing only the floors below it, the way tokio's
//! `Mutex`, `RwLock` and `Semaphore` stand on its `batch_semaphore`: the engine of the family
//! knows no primitive, and no primitive imports another.
//!
//! ```text
//! lib.rs              the public face: crate docs and re-exports, one line per primitive in
//! │                   `primitives!`; the attribute's calls (`__private`, macro_support.rs)
//! │                   and sealed.rs beside it
//! ├── client/         LockClient, its builder, the default client
//! ├── multi/          MultiLock and Redlock (with its contender), composed of reentrant locks
//! ├── lock/  fair_lock/  rwlock/  semaphore/  latch/
//! │                   one folder per primitive: its handle, its guard if it has its own,
//! │                   its Lua scripts and their reply types
//! ├── family/         the engine of the lock family: Handle and the methods every handle
//! │                   shares, Flavor and Layout, acquisition and re-entry, release and undos,
//! │                   LockGuard, the shared replies, common.lua
//! ├── core/           script path, wait engine, holds, hub, watchdog, lease, scope, meter
//! └── transport/      connections, config, naming, Sentinel, TLS, deadlines
//! ```
//!
//! | floor | its modules and their one job |
//! | --- | --- |
//! | `transport` | `connect` opens a deployment, `connection` replaces a command connection that stops answering, `sentinel` follows a failover, `naming`, `tls`, `config`; `background` is the runtime that outlives the caller's; `deadline` and `failure` bound every wait and say whether a failure may be resent |
//! | `core` | `script_path`: the one path of every script call (`FCALL`, or `EVALSHA` before Redis 7.0, the script loaded when the server lacks it; resends while the failure is transient, every attempt bounded by the response timeout, a reply decoded into a type); `wait`: try, subscribe only once the resource is found taken, retry once the subscription is confirmed, sleep at most the holder's TTL and the deadline, pass an unused wake-up on; `hold`: undo of a request in flight when its caller gives up, release on drop, releases that finish whoever stops waiting; `hub`: one subscription per channel (and, off a cluster, the client's own channel of it, where a release names its waiters), wake messages naming how many to wake (`one`, `all`, `n:<k>`) or which waiter (`to:<id>`); `watchdog`: one task renewing every renewable hold; `lua` and `reply`: how scripts and their replies are declared, and how a script goes out (a Redis Function, or `EVALSHA`); `lease`, `scope`, `keys`, `ids`, `meter` |
//! | `family` | what every lock of the family shares: a primitive names its differences in a `Flavor` (its acquire script, its hold kind, the check before a fresh hold, whether its waiters take a direct hand-over, what its script's refusals of its own mean) and a `Layout` (where its holds live, and the scripts that release, undo and renew them); the engine does the rest. `handle_methods!` writes the methods the public handles share (`name`, `metrics_label`, `acquire`, `try_acquire`, `is_locked`, `force_unlock`, `force_unlock_held_by`), each one call on the family's `Handle`, under the docs each handle gives them |
//!
//! ## Adding a primitive: the latch as the worked example
//!
//! A primitive is its folder, one line in `lib.rs` (in the `primitives!` list: its module and
//! the public types it gives, which makes the `mod` and the re-export) and one constructor on
//! [`LockClient`]. The count-down latch, which holds nothing, is:
//!
//! 1. **its scripts**: one `.lua` file per operation under `latch/scripts/`, each with a
//!    header giving KEYS, ARGV and replies, and in `latch/scripts.rs` one line per file
//!    (the `static` the code calls, and its place in the list the tests read) and one reply
//!    enum per script, its variants numbered as the script answers:
//!
//!    ```text
//!    lua_scripts! {
//!        front: [requests_lua!(), include_str!("scripts/latch.lua")];
//!        /// Count down by one, deleting the latch and waking every waiter at zero.
//!        pub(crate) static COUNT_DOWN: LuaScript = "count_down.lua";
//!    }
//!    status_reply! {
//!        pub(crate) enum CountedDown from "count_down" {
//!            Down = 2,
//!            Opened = 1,
//!            Missing = 0,
//!            WrongType = -1,
//!        }
//!    }
//!    ```
//!
//! 2. **its handle** ([`CountDownLatch`], in `latch/mod.rs`): a struct around the family's
//!    `Handle` (the client, the name), whose methods every handle has (its constructor, its
//!    name) the family's `handle_methods!` writes under the docs the latch gives them, and one
//!    method per operation of its own, each building its script's call and matching on the
//!    reply's names:
//!
//!    ```text
//!    impl CountDownLatch {
//!        handle_methods! {
//!            new;
//!            /// The latch's name.
//!            name;
//!        }
//!
//!        /// Counts the latch down by one. ...
//!        pub async fn count_down(&self) -> Result<(), LockError> { ... }
//!    }
//!    ```
//!
//! 3. **one `Attempt`** (a look at the count: done at zero, else busy for the key's TTL) handed
//!    to the wait engine, which subscribes, sleeps, wakes and resends;
//! 4. in `lib.rs`, the line `latch: CountDownLatch, LatchInfo;` of `primitives!`, and on the
//!    client, `LockClient::count_down_latch`, which makes the handle.
//!
//! Nothing else: waiting, wake-ups, resends and finishing a count-down whose caller stopped
//! waiting come from the core. A primitive that holds something names a `Flavor` and a
//! `Layout` instead of an `Attempt` of its own, and gets acquisition, re-entry, release on drop,
//! renewal and a guard from the family, and its handle's `acquire`, `try_acquire`,
//! `is_locked` and `force_unlock` from `handle_methods!`: the fair lock (`fair_lock/`) is one
//! acquire script and a `Flavor`; the read-write lock (`rwlock/`) a `Layout`, two `Flavor`s and
//! its scripts; the semaphore (`semaphore/`) the same with its own permit type, and its own
//! reply type for the refusals its acquire script adds to the family's (more permits than its
//! total, none set), which its `Flavor` turns into errors. Optional: to be found by
//! [`LockClient::primitives`] and `lock-cli`, a primitive also names its key's kind in
//! [`PrimitiveKind`]; for the tests, the `testing` feature lists its scripts.
//!
//! # What a lock does and does not guarantee
//!
//! Redis replication is asynchronous: if the primary fails before a lock reaches a replica, a
//! promoted replica does not know the lock. A lease can also run out while its holder is stalled
//! (a pause, a long GC in another language, a frozen VM). Fencing tokens are the defence: have the
//! protected store refuse writes that carry a token older than the newest it has seen.
//!
//! Configure Redis with `maxmemory-policy noeviction`: every other policy may evict a held lock.
//! The client warns (through `tracing`) at connect when the policy is anything else.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;
mod client;
mod core;
mod error;
mod family;
pub mod metrics;
mod multi;
mod sealed;
mod source;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod transport;

/// Declares each primitive, one line each: its folder (`mod`), then the public types it gives,
/// re-exported at the crate's root (`pub use`).
macro_rules! primitives {
    ($($module:ident: $($public:ident),+;)*) => {
        $(
            mod $module;
            pub use $module::{$($public),+};
        )*
    };
}

primitives! {
    fair_lock: FairLock;
    latch: CountDownLatch, LatchInfo;
    lock: Lock;
    rwlock: ReadLock, ReadWriteLock, ReadWriteLockInfo, ReadWriteWaiter, WriteLock;
    semaphore: PermitHolder, PermitWaiter, PermitsTotal, Semaphore, SemaphoreInfo, SemaphorePermit;
}

/// Runs the body of an `async fn` while holding a Redis lock, and releases it on every exit.
///
/// ```
/// use lock_runtime::{distribute_lock, LockError};
///
/// #[derive(Debug)]
/// enum StockError {
///     OutOfStock,
///     Lock(LockError),
/// }
///
/// impl From<LockError> for StockError {
///     fn from(err: LockError) -> Self {
///         StockError::Lock(err)
///     }
/// }
///
/// #[distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
/// async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, StockError> {
///     // Only one caller across every process runs this for a given product at a time.
///     let _token = lock_runtime::fencing_token(); // Some(token) of this call's lock
///     if qty > 10 {
///         return Err(StockError::OutOfStock);
///     }
///     Ok(10 - qty)
/// }
///
/// # lock_tests::locks::run_with_redis(|url| async move {
/// lock_runtime::set_default_client(lock_runtime::LockClient::connect(&url).await?);
/// assert_eq!(decrease_stock(42, 3).await.ok(), Some(7));
/// assert!(matches!(decrease_stock(42, 11).await, Err(StockError::OutOfStock)));
/// # Ok(())
/// # });
/// ```
///
/// The attribute goes on an `async fn`: a free function, an inherent method, or a method of a
/// trait impl (native `async fn` in traits, not an `#[async_trait]` impl, whose methods that
/// macro has already turned into functions returning a boxed future), with any visibility,
/// generics, `where` clauses and `self` receiver. The signature, the other attributes and the doc
/// comments stay as written. The function must return a `Result` (a path whose last segment ends
/// in `Result`: `Result<T, E>`, `io::Result<T>`, an alias named `AppResult<T>`), `T` may be an
/// `impl Trait`, and `E: From<LockError>`, so that a lock that cannot be taken comes back as an
/// error.
///
/// A key's placeholders name what the parameters bind, patterns included: with
/// `Path(id): Path<u64>` (a web framework's extractor), `{id}` is the bound `u64`.
///
/// Attributes expand from the top, each wrapping what the ones above it made: with
/// `#[tracing::instrument]` written below `#[distribute_lock]`, its span covers the wait for the
/// lock (and its `err` logs a timeout); written above, the span covers only the body, under the
/// lock, and its fields can read [`fencing_token()`](fencing_token).
///
/// # Arguments
///
/// | argument | meaning | default |
/// | --- | --- | --- |
/// | `key = "stock:{product_id}"` | the lock's name; `{param}` or `{param.field}` is replaced by that parameter (or name a pattern binds) formatted with `Display` | required, unless `keys` is given |
/// | `wait = "5s"` | how long to wait for the lock: `"500ms"`, `"5s"`, `"1m"`, `"1m30s"`; any duration above zero | `"5s"` |
/// | `lease = "3s"` | a fixed lease, never renewed: from `"1ms"` to `"365d"`, the leases the runtime takes (`"1y"` is 365.25 days, over) | none: the watchdog renews the lock while the body runs |
/// | `client = self.locks` | an expression, evaluated in the function, giving a [`LockClient`] or a [`Redlock`] (or a reference, `Arc` or `Box` of one: any [`LockSource`]); a Redlock takes the exclusive lock only, so `fair`, `mode` and `keys` need a `LockClient` | the [default client](set_default_client) |
/// | `on_lease_lost = "abort"` | when the lease is lost while the body runs: `"abort"` drops the body and returns [`LockError::LeaseLost`]; `"continue"` lets it finish and logs a warning | `"abort"` |
/// | `fair = true` | take the [fair lock](LockClient::fair_lock): callers get it in the order they started waiting, across every process | `false`: the [reentrant lock](LockClient::lock) |
/// | `mode = "read"` or `mode = "write"` | take the [read](ReadWriteLock::read) or the [write](ReadWriteLock::write) lock of [`client.read_write_lock(key)`](LockClient::read_write_lock): many readers at once, or one writer; a waiting writer keeps new readers out | none: the [reentrant lock](LockClient::lock) |
/// | `keys = ["acct:{from}", "acct:{to}"]` | instead of `key`: take the [multi-lock](LockClient::multi_lock) of every key, each a template like `key`'s: the reentrant lock of each, all of them or none, taken in the order of their names whatever order they are listed in, so calls over the same keys never deadlock | none: the one lock of `key` |
/// | `crate = "::locks"` | the path the generated code reaches this crate by, as it resolves where the function is: for a dependency renamed in `Cargo.toml` (`crate = "::locks"`), or reached through a crate of your own that re-exports it (`crate = "platform::lock"`) | `::lock_runtime` |
///
/// `fair` and `mode` cannot go together: the read-write lock has no fair variant. `keys` goes
/// with neither, nor with `key`: the multi-lock is made of reentrant locks.
///
/// Every mistake is a compile error pointing at the offending token and saying how to fix it: an
/// unknown or repeated argument, neither `key` nor `keys`, a placeholder naming no parameter, a
/// duration that does not parse or is zero, a `lease` under 1 ms or over 365 days, an unknown `on_lease_lost` policy, a `fair` that is
/// not `true` or `false`, a `mode` that is not `"read"` or `"write"`, a `crate` that is not a path, a `keys` that is empty or
/// holds something other than string literals, arguments that cannot go together (`fair` with
/// `mode`, `key` with `keys`, `keys` with `fair` or `mode`: reported on both), a function that is
/// not `async` or does not return a `Result`. The function is still emitted, so IDEs keep working.
///
/// # What a call does
///
/// 1. Formats the key, or every key of `keys`, from the arguments (before the body takes them).
/// 2. Waits up to `wait` for the lock (in turn, with `fair = true` or `mode`; with `keys`, for all
///    of its locks together). If it cannot be had, returns
///    `Err(E::from(LockError::Timeout { .. }))` (or the Redis error) without running the body;
///    with `keys`, the timeout names the key that stayed held, and the keys already taken are
///    given back, so none is left held.
/// 3. Runs the body inside the guard's [scope](LockGuard::scope): [`fencing_token()`] returns this
///    call's token (with `mode = "read"`, the token of the last write: readers take no new one),
///    and an annotated function with the same key and the same `fair` or `mode` called from
///    within re-enters the lock instead of deadlocking. Under `mode = "write"`, a
///    `mode = "read"` call of the same key is granted at once (a downgrade); under
///    `mode = "read"`, a `mode = "write"` call of the same key returns [`LockError::Config`] ([`Mistake::Misuse`]) at
///    once, without running its body (an upgrade would wait for its own read hold forever). The
///    fair lock and the reentrant lock of one name exclude each other, so a call taking the other
///    one waits until its `wait` runs out; the read-write lock's keys are its own, so a `mode`
///    call does not exclude a call of the same key without `mode`. With `keys`, the scope holds
///    every key: [`fencing_token()`] returns the token of the last key in name order (each key
///    has its own tokens, not comparable with another's), and a call with `key` (or `keys`)
///    naming keys it holds re-enters them; `keys` and `key` calls of the same name exclude each
///    other, as they take the same reentrant lock.
/// 4. Releases the lock (with `keys`, every one of them), and then returns, whatever the body did: `Ok`, `Err`, `?`, an early
///    `return`. A panic in the body, or the caller dropping the future (a `tokio::time::timeout`,
///    a `select!`, a server cancelling its requests at shutdown), releases it from the guard's
///    drop, in the background: a process about to exit waits for such releases with
///    [`LockClient::flush`]. A release that fails after the body ran
///    (typically `NotHeld`, or `MultiRelease` with `keys`: the lease ran out while the body ran,
///    with `on_lease_lost = "continue"`) does not change the function's result; it is logged as a
///    `tracing` event at `warn` level naming the lock (with `keys`, every key), never silently.
///    With `keys`, the lease is lost when any key's is, and `LockError::LeaseLost` names that key.
///
/// Two calls joined in one task (`tokio::join!`) are two scopes: they exclude each other. Two
/// calls joined *inside* a locked body that re-enter its lock take turns: one re-entry at a time
/// per scope.
///
/// ```
/// use std::time::Duration;
/// use lock_runtime::{distribute_lock, LockClient, LockError};
///
/// struct Accounts {
///     locks: LockClient,
/// }
///
/// impl Accounts {
///     /// Re-enters its own lock through `deposit`, and gives up if the lease is lost.
///     #[distribute_lock(key = "account:{id}", client = self.locks, wait = "1s", on_lease_lost = "abort")]
///     async fn transfer_in(&self, id: u64, cents: u64) -> Result<u64, LockError> {
///         self.deposit(id, cents).await
///     }
///
///     #[distribute_lock(key = "account:{id}", client = self.locks)]
///     async fn deposit(&self, id: u64, cents: u64) -> Result<u64, LockError> {
///         Ok(cents)
///     }
/// }
///
/// # lock_tests::locks::run_with_redis(|url| async move {
/// let accounts = Accounts { locks: LockClient::connect(&url).await? };
/// assert_eq!(accounts.transfer_in(7, 250).await?, 250);
/// # Ok(())
/// # });
/// ```
///
/// With `mode`, readers of one key run together and a writer runs alone:
///
/// ```
/// use lock_runtime::{distribute_lock, LockClient, LockError};
///
/// struct Docs {
///     locks: LockClient,
/// }
///
/// impl Docs {
///     /// Any number of calls at once, across every process, while no writer holds the key.
///     #[distribute_lock(key = "doc:{id}", client = self.locks, mode = "read")]
///     async fn show(&self, id: u64) -> Result<String, LockError> {
///         Ok(format!("doc {id}"))
///     }
///
///     /// Alone; reading back under its own write lock is a downgrade, granted at once.
///     #[distribute_lock(key = "doc:{id}", client = self.locks, mode = "write")]
///     async fn edit(&self, id: u64) -> Result<String, LockError> {
///         self.show(id).await
///     }
///
///     /// Writing under its own read lock is an upgrade: refused at once.
///     #[distribute_lock(key = "doc:{id}", client = self.locks, mode = "read")]
///     async fn show_then_edit(&self, id: u64) -> Result<String, LockError> {
///         self.edit(id).await
///     }
/// }
///
/// # lock_tests::locks::run_with_redis(|url| async move {
/// let docs = Docs { locks: LockClient::connect(&url).await? };
/// let (a, b) = tokio::join!(docs.show(7), docs.show(7)); // two readers, side by side
/// assert_eq!(a?, b?);
/// assert_eq!(docs.edit(7).await?, "doc 7");
/// assert!(matches!(docs.show_then_edit(7).await, Err(LockError::Config { mistake: lock_runtime::Mistake::Misuse, .. })));
/// # Ok(())
/// # });
/// ```
///
/// With `keys`, a call holds several keys at once, and calls naming the same keys in any order
/// neither deadlock nor overlap:
///
/// ```
/// use lock_runtime::{distribute_lock, LockClient, LockError};
///
/// struct Bank {
///     locks: LockClient,
/// }
///
/// impl Bank {
///     /// Both accounts, or neither: `transfer(1, 2, ..)` and `transfer(2, 1, ..)` take them in
///     /// the same order, so they never hold one each and wait for the other.
///     #[distribute_lock(keys = ["acct:{from}", "acct:{to}"], client = self.locks, wait = "2s")]
///     async fn transfer(&self, from: u64, to: u64, cents: u64) -> Result<u64, LockError> {
///         self.deposit(to, cents).await // re-enters `acct:{to}`, held by this call
///     }
///
///     #[distribute_lock(key = "acct:{id}", client = self.locks)]
///     async fn deposit(&self, id: u64, cents: u64) -> Result<u64, LockError> {
///         Ok(cents)
///     }
/// }
///
/// # lock_tests::locks::run_with_redis(|url| async move {
/// let bank = Bank { locks: LockClient::connect(&url).await? };
/// let (there, back) = tokio::join!(bank.transfer(1, 2, 250), bank.transfer(2, 1, 100));
/// assert_eq!((there?, back?), (250, 100));
/// # Ok(())
/// # });
/// ```
///
/// The expansion of the first example reads (as `cargo expand` shows it):
///
/// ```text
/// async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, StockError> {
///     let __lock_call = ::lock_runtime::__private::LockedCall {
///         client: ::core::option::Option::None,
///         lock: ::lock_runtime::__private::LockKind::Exclusive(
///             ::std::format!("stock:{}", product_id),
///         ),
///         label: "stock:{product_id}",
///         wait: ::core::time::Duration::new(5u64, 0u32),
///         lease: ::core::option::Option::Some(::core::time::Duration::new(3u64, 0u32)),
///         on_lease_lost: ::lock_runtime::__private::OnLeaseLost::Abort,
///     };
///     __lock_call
///         .run(async move {
///             if let ::core::option::Option::Some(__lock_ret) = ::core::option::Option::None::<
///                 Result<u32, StockError>,
///             > {
///                 #[allow(unreachable_code)] return __lock_ret;
///             }
///             { /* the body */ }
///         })
///         .await
/// }
/// ```
///
/// With `keys`, the lock is `LockKind::Multi(::std::vec![::std::format!(..), ..])`, one
/// `format!` per key.
#[doc(inline)]
pub use lock_macros::distribute_lock;

pub use crate::core::scope::fencing_token;
pub use client::{
    LockClient,
    builder::LockClientBuilder,
    default::{default_client, set_default_client},
};
pub use error::{LockError, Mistake};
pub use family::{
    exec::{LockedConnection, exec},
    guard::LockGuard,
    info::{LockHolder, LockInfo},
    listing::PrimitiveKind,
};
pub use multi::{
    MultiLock, MultiLockGuard, Redlock, RedlockBuilder, RedlockGuard, RedlockInfo, RedlockLock,
};
pub use source::LockSource;

/// The `redis` crate this crate is built with, for [`LockGuard::exec`], [`exec`] and
/// [`LockGuard::connection`]: build pipelines with `lock_runtime::redis::pipe()` and name
/// `lock_runtime::redis::Value` without a `redis` dependency of your own (and without having
/// to match this crate's version). A `redis::RedisError` converts into [`LockError`] (a
/// [`LockError::Redis`]), so `?` works on it in a function returning `LockError`, such as a
/// `#[distribute_lock]` body.
#[doc(no_inline)]
pub use redis;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<LockClient>();
        assert_send_sync::<LockClientBuilder>();
        assert_send_sync::<Lock>();
        assert_send_sync::<FairLock>();
        assert_send_sync::<LockInfo>();
        assert_send_sync::<ReadWriteLockInfo>();
        assert_send_sync::<SemaphoreInfo>();
        assert_send_sync::<LatchInfo>();
        assert_send_sync::<RedlockInfo>();
        assert_send_sync::<ReadWriteLock>();
        assert_send_sync::<ReadLock>();
        assert_send_sync::<WriteLock>();
        assert_send_sync::<Semaphore>();
        assert_send_sync::<MultiLock>();
        assert_send_sync::<MultiLockGuard>();
        assert_send_sync::<Redlock>();
        assert_send_sync::<RedlockLock>();
        assert_send_sync::<RedlockGuard>();
        assert_send_sync::<SemaphorePermit>();
        assert_send_sync::<CountDownLatch>();
        assert_send_sync::<LockGuard>();
        assert_send_sync::<LockError>();
    }

    #[test]
    fn futures_can_move_between_threads() {
        async fn used(lock: Lock) -> Result<(), LockError> {
            let guard = lock.acquire().await?;
            guard.scope(async { fencing_token() }).await;
            guard.lease_lost().await;
            guard.unlock().await
        }
        let future = async {
            let client = LockClient::connect("redis://127.0.0.1:6390").await?;
            used(client.lock("x")).await
        };
        assert_send(&future);
    }
}
