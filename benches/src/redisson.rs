//! The Redisson-style reference: Redisson's reentrant lock (`RLock`) written in the benchmark as
//! two Lua scripts, [`redisson/lock.lua`](LOCK_LUA) and [`redisson/unlock.lua`](UNLOCK_LUA), and
//! driven through a plain redis-rs multiplexed connection.
//!
//! It is what Redis pays per acquisition for the lock most users compare with: a hash per lock
//! (owner → holds) taken with `EXISTS`/`HEXISTS`, `HINCRBY` and `PEXPIRE`, released with a memo
//! `GET`, `HEXISTS`, `HINCRBY -1`, then `DEL`, `PUBLISH` and a memo `SET`. Only the uncontended
//! path is driven (scenario 8, [`crate::scenarios::redis_cpu`]): each task on a name of its own,
//! so an acquire always finds the lock free and nobody waits on the channel.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use redis::aio::MultiplexedConnection;

use crate::{
    BenchResult,
    contenders::{LEASE, multiplexed_connection},
};

/// The acquire script; its header gives KEYS, ARGV and replies ([`LockReply`]).
pub const LOCK_LUA: &str = include_str!("redisson/lock.lua");

/// The release script; its header gives KEYS, ARGV and replies ([`UnlockReply`]).
pub const UNLOCK_LUA: &str = include_str!("redisson/unlock.lua");

/// The commands the two scripts call inside Redis (never sent by the client itself), subtracted
/// from `INFO commandstats` to count what the client sent.
pub const SCRIPT_COMMANDS: &[&str] = &[
    "exists", "hexists", "hincrby", "pexpire", "pttl", "get", "set", "del", "publish",
];

/// How long a release memo lives: Redisson's default, `(timeout + retryInterval) × retryAttempts`
/// = (3 000 + 1 500) × 3 ms.
pub const MEMO_TTL: Duration = Duration::from_millis(13_500);

/// The keys of the release memos (see [`unlock_call`]), for `SCAN` … `MATCH`.
pub const MEMO_PATTERN: &str = "redisson_unlock_latch:*";

/// The message a release publishes (Redisson's `LockPubSub.UNLOCK_MESSAGE`).
const UNLOCK_MESSAGE: i64 = 0;

/// What [`LOCK_LUA`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReply {
    /// The owner holds the lock now.
    Acquired,
    /// Another owner holds it, for this many more milliseconds.
    Held {
        /// The lock's remaining time to live (`PTTL`).
        ttl_ms: i64,
    },
}

impl LockReply {
    /// Decodes the script's reply: nil, or the remaining time to live.
    pub fn decode(reply: Option<i64>) -> Self {
        match reply {
            None => Self::Acquired,
            Some(ttl_ms) => Self::Held { ttl_ms },
        }
    }
}

/// What [`UNLOCK_LUA`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockReply {
    /// The last hold was released: the lock is gone and its waiters were told.
    Released,
    /// One hold was released; the owner still holds the lock.
    StillHeld,
    /// The owner did not hold the lock.
    NotHeld,
}

impl UnlockReply {
    /// Decodes the script's reply: 1, 0 or nil.
    pub fn decode(reply: Option<i64>) -> Self {
        match reply {
            Some(1) => Self::Released,
            Some(_) => Self::StillHeld,
            None => Self::NotHeld,
        }
    }
}

/// The `EVALSHA` of [`LOCK_LUA`] for `owner` on the lock `name`.
pub fn lock_call(lock_sha: &str, name: &str, owner: &str) -> redis::Cmd {
    let mut call = redis::cmd("EVALSHA");
    call.arg(lock_sha)
        .arg(1)
        .arg(name)
        .arg(millis(LEASE))
        .arg(owner);
    call
}

/// The `EVALSHA` of [`UNLOCK_LUA`] for `owner` on the lock `name`, as release request `request`.
/// The keys are named as Redisson names them, sharing the lock name's hash tag.
pub fn unlock_call(unlock_sha: &str, name: &str, owner: &str, request: &str) -> redis::Cmd {
    let mut call = redis::cmd("EVALSHA");
    call.arg(unlock_sha)
        .arg(3)
        .arg(name)
        .arg(format!("redisson_lock__channel:{{{name}}}"))
        .arg(format!("redisson_unlock_latch:{{{name}}}:{request}"))
        .arg(UNLOCK_MESSAGE)
        .arg(millis(LEASE))
        .arg(owner)
        .arg("publish")
        .arg(millis(MEMO_TTL));
    call
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The scripts loaded into a Redis: their hashes, for `EVALSHA`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The hash of [`LOCK_LUA`].
    pub lock_sha: String,
    /// The hash of [`UNLOCK_LUA`].
    pub unlock_sha: String,
}

impl Loaded {
    /// Loads both scripts (`SCRIPT LOAD`) through `connection`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn load(connection: &MultiplexedConnection) -> BenchResult<Self> {
        let load = |code: &'static str| {
            let mut connection = connection.clone();
            async move {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(code)
                    .query_async::<String>(&mut connection)
                    .await
            }
        };
        Ok(Self {
            lock_sha: load(LOCK_LUA).await?,
            unlock_sha: load(UNLOCK_LUA).await?,
        })
    }
}

/// The reference lock on one multiplexed connection, shared by every task of the process (as a
/// Redisson client shares its connections).
pub struct RedissonReference {
    connection: MultiplexedConnection,
    scripts: Loaded,
    /// Numbers the release requests: each has a memo of its own.
    requests: AtomicU64,
    /// Prefixes owners and requests, as Redisson's client id does.
    client: String,
}

impl std::fmt::Debug for RedissonReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedissonReference")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl RedissonReference {
    /// Connects to the Redis at `url` as the client `client` (prefix of its owners and release
    /// requests: give each client a name no other uses) and loads the scripts.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    pub async fn connect(url: &str, client: &str) -> BenchResult<Self> {
        let connection = multiplexed_connection(url).await?;
        let scripts = Loaded::load(&connection).await?;
        Ok(Self {
            connection,
            scripts,
            requests: AtomicU64::new(0),
            client: client.to_owned(),
        })
    }

    /// The owner id of task `task` of this client.
    pub fn owner(&self, task: usize) -> String {
        format!("{}:{task}", self.client)
    }

    /// Takes the lock `name` for `owner`, which must find it free (the benchmark never contends
    /// for the reference).
    ///
    /// # Errors
    ///
    /// When Redis fails, or another owner holds the lock.
    pub async fn acquire(&self, name: &str, owner: &str) -> BenchResult<()> {
        let mut connection = self.connection.clone();
        let reply: Option<i64> = lock_call(&self.scripts.lock_sha, name, owner)
            .query_async(&mut connection)
            .await?;
        match LockReply::decode(reply) {
            LockReply::Acquired => Ok(()),
            LockReply::Held { ttl_ms } => Err(format!(
                "Redisson-style reference: `{name}` is held by another owner for {ttl_ms} ms more"
            )
            .into()),
        }
    }

    /// Releases the one hold of `owner` on the lock `name`.
    ///
    /// # Errors
    ///
    /// When Redis fails, or `owner` did not hold the lock once exactly.
    pub async fn release(&self, name: &str, owner: &str) -> BenchResult<()> {
        let request = self.requests.fetch_add(1, Ordering::Relaxed);
        let request = format!("{}:{request}", self.client);
        let mut connection = self.connection.clone();
        let reply: Option<i64> = unlock_call(&self.scripts.unlock_sha, name, owner, &request)
            .query_async(&mut connection)
            .await?;
        match UnlockReply::decode(reply) {
            UnlockReply::Released => Ok(()),
            other => {
                Err(format!("Redisson-style reference: releasing `{name}` gave {other:?}").into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode() {
        assert_eq!(LockReply::decode(None), LockReply::Acquired);
        assert_eq!(LockReply::decode(Some(12)), LockReply::Held { ttl_ms: 12 });
        assert_eq!(UnlockReply::decode(Some(1)), UnlockReply::Released);
        assert_eq!(UnlockReply::decode(Some(0)), UnlockReply::StillHeld);
        assert_eq!(UnlockReply::decode(None), UnlockReply::NotHeld);
    }

    /// The reference behaves as Redisson's lock: re-entered by its owner, refused to another
    /// with the remaining time to live, released hold by hold, and a resent release answers from
    /// its memo.
    #[tokio::test]
    async fn the_reference_locks_as_redisson_does() -> BenchResult<()> {
        let server = lock_tests::RedisServer::start();
        let mut connection = multiplexed_connection(&server.url()).await?;
        let scripts = Loaded::load(&connection).await?;
        let lock = |owner: &str| lock_call(&scripts.lock_sha, "doc", owner);
        let unlock =
            |owner: &str, request: &str| unlock_call(&scripts.unlock_sha, "doc", owner, request);
        let mut ask =
            async |call: redis::Cmd| call.query_async::<Option<i64>>(&mut connection).await;
        assert_eq!(
            LockReply::decode(ask(lock("a")).await?),
            LockReply::Acquired
        );
        assert_eq!(
            LockReply::decode(ask(lock("a")).await?),
            LockReply::Acquired
        );
        assert!(matches!(
            LockReply::decode(ask(lock("b")).await?),
            LockReply::Held { ttl_ms } if ttl_ms > 0
        ));
        let not_held = UnlockReply::decode(ask(unlock("b", "r0")).await?);
        assert_eq!(not_held, UnlockReply::NotHeld);
        let first = UnlockReply::decode(ask(unlock("a", "r1")).await?);
        assert_eq!(first, UnlockReply::StillHeld);
        let last = UnlockReply::decode(ask(unlock("a", "r2")).await?);
        assert_eq!(last, UnlockReply::Released);
        let resent = UnlockReply::decode(ask(unlock("a", "r2")).await?);
        assert_eq!(resent, UnlockReply::Released, "answered from the memo");
        let again = UnlockReply::decode(ask(unlock("a", "r3")).await?);
        assert_eq!(again, UnlockReply::NotHeld);
        assert_eq!(
            LockReply::decode(ask(lock("b")).await?),
            LockReply::Acquired
        );
        Ok(())
    }

    /// Every command the scripts call is in [`SCRIPT_COMMANDS`], the publish command (passed as
    /// an argument) included.
    #[test]
    fn script_commands_are_all_listed() {
        for script in [LOCK_LUA, UNLOCK_LUA] {
            for call in script.split("redis.call('").skip(1) {
                let command = call.split('\'').next().unwrap_or_default();
                assert!(SCRIPT_COMMANDS.contains(&command), "`{command}` not listed");
            }
        }
        assert!(SCRIPT_COMMANDS.contains(&"publish"));
    }
}
