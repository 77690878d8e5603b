//! [`LockGuard`]: proof of a hold, and its release on every exit path.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    core::{
        hold::{Hold, ReleaseOnDrop},
        scope::{self, Holder},
    },
    error::LockError,
    family::exec::{self, LockedConnection},
    transport::background::{Background, in_context},
};

/// A held lock. Dropping it releases the lock; [`LockGuard::unlock`] releases it and reports how
/// that went.
///
/// The drop path sends the release from the library's background runtime, so it never blocks
/// and works in any `Drop`: a panic unwinding, a cancelled future, a runtime shutting down. A
/// process about to exit must wait for it, with [`LockClient::flush`](crate::LockClient::flush)
/// (or release with `unlock().await` instead): the process may otherwise end before the release
/// reaches Redis, and the lock stays held until its lease runs out.
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct LockGuard {
    /// Released on drop, or by [`unlock`](Self::unlock).
    hold: ReleaseOnDrop,
    name: Arc<str>,
    holder: Holder,
    runtime: &'static Background,
}

impl LockGuard {
    pub(crate) fn new(
        hold: Hold,
        name: Arc<str>,
        holder: Holder,
        runtime: &'static Background,
    ) -> Self {
        Self {
            hold: ReleaseOnDrop::new(hold),
            name,
            holder,
            runtime,
        }
    }

    /// See [`GiveBack::fence_raised`](crate::core::hold::GiveBack::fence_raised): a Redlock
    /// raised this hold's fencing state to its quorum's token.
    pub(crate) fn fence_raised(&self, token: u64) {
        self.hold.fence_raised(token);
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token of this hold: strictly greater than every token handed out before for
    /// this lock name (a re-entry carries its outer hold's token).
    ///
    /// Pass it with every write the lock protects, and have the store refuse a token lower than
    /// the highest it has seen: a holder that stalled past its lease then cannot overwrite the
    /// work of the next holder. Tokens are large numbers (about the server's clock in
    /// microseconds, see the crate docs); only their order means anything.
    pub fn fencing_token(&self) -> u64 {
        self.holder.token
    }

    /// Resolves when the lease is known lost: the watchdog found the lock gone or owned by
    /// another, Redis stayed unreachable past the lease's deadline, or a fixed lease's deadline
    /// passed. It never resolves while the lease is intact.
    ///
    /// With a fixed lease, a lock deleted early behind the holder's back is noticed only at the
    /// deadline: nothing renews, so nothing asks Redis.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes the lease.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client
    ///     .lock("batch")
    ///     .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(200)))
    ///     .await?;
    /// tokio::select! {
    ///     () = guard.lease_lost() => { /* stop: another owner may hold the lock now */ }
    ///     () = tokio::time::sleep(Duration::from_secs(5)) => unreachable!("a 200 ms lease"),
    /// }
    /// assert!(guard.is_lease_lost());
    /// # Ok(()) });
    /// ```
    pub async fn lease_lost(&self) {
        in_context(self.runtime.timers(), self.holder.lease.lost()).await;
    }

    /// Whether the lease is known lost right now.
    pub fn is_lease_lost(&self) -> bool {
        self.holder.lease.is_lost()
    }

    /// How much of the lease is left, by the local clock and with the drift margin taken off.
    /// It is never more than the lock's remaining TTL in Redis.
    pub fn remaining_lease(&self) -> Duration {
        self.holder
            .lease
            .deadline()
            .saturating_duration_since(Instant::now())
    }

    /// Runs `future` inside this guard's scope: acquiring the same lock (through the same client)
    /// from within re-enters it instead of waiting, and [`crate::fencing_token`] returns this
    /// guard's token.
    ///
    /// Re-entry is for nested calls: two futures joined inside the scope that both re-enter the
    /// lock take turns, one re-entry at a time, so a body's `join!(withdraw(), deposit())` does
    /// not race under its own lock.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the returned future drops `future` where it stands and leaves this
    /// guard, and its lock, held; the guards of re-entries taken inside are released as any
    /// guard is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: lock_runtime::LockClient) -> Result<(), lock_runtime::LockError> {
    /// let lock = client.lock("account:1");
    /// let outer = lock.acquire().await?;
    /// outer
    ///     .scope(async {
    ///         // Would wait forever outside the scope; here it re-enters.
    ///         let inner = lock.acquire().await?;
    ///         inner.unlock().await
    ///     })
    ///     .await?;
    /// outer.unlock().await?;
    /// # Ok(()) }
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        scope::enter(self.holder.clone(), future)
    }

    /// Runs `pipeline`'s commands in Redis only if this guard still holds the lock, checked on
    /// the server in the same script as the commands: a holder whose lease ran out, or whose lock
    /// was force-unlocked or taken over, writes nothing, even before it learns of the loss.
    /// Returns the replies as [`redis::Pipeline::query_async`] would (ignored commands left out,
    /// an atomic pipeline's one array unwrapped, integer replies exact).
    ///
    /// The pipeline runs whole or not at all, atomic ([`redis::Pipeline::atomic`]) or not: its
    /// commands run in one script, in order, with no other client's command between them, and
    /// only once every one of them has been checked for what would make Redis refuse it without
    /// running it (what makes `EXEC` discard a whole transaction): an unknown command or
    /// subcommand, a wrong number of arguments, a command Redis does not run in scripts
    /// (`SCRIPT`, `CLIENT`, `SUBSCRIBE`, `MULTI`, nested scripts, ...), one the connection's ACL
    /// user may not run, and on Redis Cluster a key outside the lock's hash slot. Also refused
    /// whole: blocking commands (`BLPOP`, `XREAD ... BLOCK`: a script would not wait), commands
    /// that change the connection (`SELECT`, `READONLY`, `READWRITE`, `ASKING`: a script would
    /// change its own alone while the later commands followed) and commands of more than
    /// [`EXEC_MAX_ARGUMENTS`](Self::EXEC_MAX_ARGUMENTS) arguments. As in `MULTI`/`EXEC`, a
    /// command that fails as it runs (`WRONGTYPE`, an `INCR` of a string) does not stop or undo
    /// the others, and its error is reported as the pipeline would report it. The only
    /// difference between an atomic pipeline and a plain one is then the shape of the replies,
    /// as when sent directly; a plain pipeline sent directly would also run the commands around
    /// a malformed one, which `exec` refuses instead.
    ///
    /// A Lua script holds integers exactly up to 2^53 only: a counter's reply beyond that
    /// (`INCR`, `INCRBY`, `DECR`, `DECRBY`, `HINCRBY`) is read again, in the same script, as
    /// Redis keeps it, and comes back exact; any other reply holding such an integer (a
    /// `BITFIELD` of 64-bit fields) comes back as an error reply, which says its command ran.
    ///
    /// What Redis says of its commands (`COMMAND INFO`) is read once per command name and
    /// client, from the node that serves the lock, and kept; the script checks that the server
    /// is still of the version it was read from, and a client that finds another reads again.
    ///
    /// For an exclusive hold: the reentrant, fair or write lock. On Redis Cluster the commands'
    /// keys must live in the lock's hash slot: name them with [`hash_tag`](Self::hash_tag).
    ///
    /// On Redis before 7.0 (6.2) two of those checks cannot be made before the commands run: a
    /// command the ACL user may not run, and an unknown subcommand, fail as they run (the
    /// others still run, as in a `MULTI` on 6.2).
    ///
    /// The request is sent once, never resent, and runs at most once however late a copy of it
    /// reaches Redis: each exec carries a number, above every earlier one of its hold, and Redis
    /// records it in the lock's own hash before the commands run. Without a reply (a timeout, a
    /// dropped connection), the client spends the number before returning the error: Redis
    /// raises the hold's record to it, so a copy of the request still on its way (queued on a
    /// connection the client retired, delivered minutes later) runs nothing, and says whether
    /// the commands had run. This costs the exec one `HSET` in its script, and an exec without
    /// a reply one more request, resent like any request that is safe to resend (so while Redis
    /// stays unreachable, the error comes after the retry timeout, not the response timeout).
    ///
    /// # Errors
    ///
    /// Each says whether anything ran. [`LockError::LeaseLost`] if the lock is no longer this
    /// owner's: nothing ran. [`LockError::Config`] ([`Mistake::Misuse`](crate::Mistake::Misuse)) for a read hold, and
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a pipeline refused whole, as above (the message names
    /// the command and why): nothing ran.
    /// [`LockError::Redis`] for a command's error reply as it ran (every command ran; the
    /// message says so), or if no reply came: the message then says what Redis answered once
    /// asked, either that the commands ran (all of them; their replies are lost) or that they
    /// did not run and never will. It says "unknown" only when the lock was lost meanwhile (no
    /// command runs any more) or when Redis could not be asked within the retry timeout either
    /// (then a late copy could still run while this guard holds the lock: releasing it rules
    /// that out).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped after the request was sent, the commands may or may not have
    /// run; the number is spent in the background, so a copy still on its way runs nothing
    /// once that lands.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client.lock("item:a1").acquire().await?;
    /// let bids = format!("{}:bids", guard.hash_tag());
    /// let mut pipe = lock_runtime::redis::pipe();
    /// pipe.hset(&bids, "alice", 15).ignore().hget(&bids, "alice");
    /// let (bid,): (u32,) = guard.exec(&pipe).await?;
    /// assert_eq!(bid, 15);
    /// guard.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn exec<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, LockError> {
        exec::run(&self.holder, &self.name, pipeline).await
    }

    /// A connection for ordinary redis-rs code run under the lock: it sends each command once,
    /// on the client's shared connection as it is when the command goes out (it follows a
    /// Sentinel failover, and a cluster's redirects, like the client's own requests), and
    /// refuses it, on the client, once the lease is known lost or has less than
    /// [`LockGuard::CONNECTION_MARGIN`] left. A command is sent again only when its failure
    /// proves it did not run (`READONLY` from a demoted primary, `MOVED`, `ASK`); one whose
    /// reply is lost fails, and may have run. See [`LockedConnection`] for what the lease check
    /// can and cannot promise; [`exec`](Self::exec) has Redis check instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_runtime::redis::{AsyncCommands, RedisResult};
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client.lock("report").acquire().await?;
    /// let mut connection = guard.connection();
    /// let written: RedisResult<()> = connection.set("report:status", "writing").await;
    /// written.expect("held, so sent");
    /// guard.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub fn connection(&self) -> LockedConnection {
        self.connection_with_margin(Self::CONNECTION_MARGIN)
    }

    /// [`connection`](Self::connection) with a safety margin of your own: commands are refused
    /// once less than `margin` of the lease is left.
    pub fn connection_with_margin(&self, margin: Duration) -> LockedConnection {
        LockedConnection::new(&self.holder, &self.name, margin)
    }

    /// The most arguments, the command's name included, that one command given to
    /// [`exec`](Self::exec) may have: 7997. The script calls each command with Lua's `unpack`,
    /// which gives at most 8000 values (Lua's stack limit for a C function, `LUAI_MAXCSTACK`)
    /// less its own three. A command with more is refused before anything is sent, with
    /// nothing run; split it (`SADD`, `HSET`, `DEL`, `MSET`, ... of fewer arguments each) into
    /// several commands of the same pipeline, which still run all or none.
    pub const EXEC_MAX_ARGUMENTS: usize = exec::MAX_ARGUMENTS;

    /// The safety margin of [`connection`](Self::connection): 100 ms, far more than a command
    /// takes to reach a healthy Redis, far less than any sensible lease.
    pub const CONNECTION_MARGIN: Duration = Duration::from_millis(100);

    /// The hash tag of the lock's keys, such as `{lock:item:a1}`: keys named with it live in the
    /// lock's hash slot on Redis Cluster, as [`exec`](Self::exec) needs there.
    pub fn hash_tag(&self) -> &str {
        let key = &self.holder.keys.main;
        key.find('}').map_or(key.as_str(), |end| &key[..=end])
    }

    /// Who holds it, for scopes composed of several guards (a multi-lock's).
    pub(crate) fn holder(&self) -> Holder {
        self.holder.clone()
    }

    /// The local deadline of the lease (see [`remaining_lease`](Self::remaining_lease)).
    pub(crate) fn deadline(&self) -> Instant {
        self.holder.lease.deadline()
    }

    /// Releases the lock now and waits for Redis to confirm.
    ///
    /// # Errors
    ///
    /// [`LockError::NotHeld`] if the lock was no longer this owner's (its lease ran out, or it
    /// was force-unlocked), [`LockError::Redis`] if Redis could not be reached within the retry
    /// timeout (the lock then frees itself when its lease runs out).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the release goes on in the background and
    /// finishes, as if the guard had been dropped: a release once started always completes
    /// (wait for it with [`LockClient::flush`](crate::LockClient::flush)).
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let guard = client.lock("ledger").acquire().await?;
    /// guard.unlock().await?; // released, and Redis confirmed it
    /// # Ok(()) });
    /// ```
    pub fn unlock(self) -> impl Future<Output = Result<(), LockError>> + Send + 'static {
        // Not an `async fn`, which would keep the whole guard twice in the future: only its
        // hold goes on, and the rest of the guard is dropped here.
        self.hold.release()
    }
}
