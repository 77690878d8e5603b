//! The lock implementations under test, behind one harness.
//!
//! Every scenario drives a [`Contender`] the same way: [`Contender::acquire`] a name (waiting as
//! long as it takes), then [`Contender::release`] what it returned. The implementations:
//!
//! | name | what it is |
//! | --- | --- |
//! | `ours` | `lock-runtime`: `Lock::acquire` (watchdog lease, pub/sub wake-ups) and `LockGuard::unlock` |
//! | `fair` | `lock-runtime`'s fair lock: `FairLock::acquire` (waiters queue in Redis, a release makes the head the owner and tells it) and `LockGuard::unlock` |
//! | `spin-fixed` | `SET key token NX PX lease`; on failure sleep a fixed delay and retry; release with a compare-and-delete script |
//! | `spin-jitter` | the same, sleeping an exponential backoff with full jitter: uniform in `0..=min(max, initial·2ⁿ)` after the n-th failure |
//! | `rslock` | the published `rslock` crate (Redlock on one server), its `LockManager::acquire` and `LockGuard::release` with default retry settings |
//!
//! The spin lock is the one the seeds describe (Redisson's `RedissonSpinLock` and the many
//! `SET NX` + `sleep` loops modelled on it). Its default delays are Redisson's: a constant
//! 64 ms (`ConstantBackOff`), and 1 ms doubling up to 128 ms (`ExponentialBackOff`); the
//! command-line flags change them, and the report's delay sweep shows what shorter delays cost.

use std::{sync::LazyLock, time::Duration};

use lock_runtime::{LockClient, LockGuard};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};

use crate::{BenchResult, util::saturating_ns};

/// The lease every implementation asks for: long enough never to expire during a run.
pub const LEASE: Duration = Duration::from_secs(30);

/// Key prefix of the spin lock's keys.
const SPIN_PREFIX: &str = "spin";

/// Key prefix of rslock's keys.
const RSLOCK_PREFIX: &str = "rslock";

/// One of the lock implementations the harness can drive.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Implementation {
    /// `lock-runtime`, the lock this workspace builds.
    Ours,
    /// `lock-runtime`'s fair lock: first come first served, one wake-up per release.
    Fair,
    /// A `SET NX PX` spin lock sleeping a fixed delay between attempts.
    SpinFixed,
    /// A `SET NX PX` spin lock sleeping a jittered exponential backoff between attempts.
    SpinJitter,
    /// The published `rslock` crate.
    Rslock,
}

impl Implementation {
    /// Every implementation, in report order.
    pub const ALL: [Implementation; 5] = [
        Implementation::Ours,
        Implementation::Fair,
        Implementation::SpinFixed,
        Implementation::SpinJitter,
        Implementation::Rslock,
    ];

    /// The short name used in tables, plots and flags.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Ours => "ours",
            Implementation::Fair => "fair",
            Implementation::SpinFixed => "spin-fixed",
            Implementation::SpinJitter => "spin-jitter",
            Implementation::Rslock => "rslock",
        }
    }

    /// lock-runtime's locks, the family the benchmark measures against the peers.
    pub const FAMILY: [Implementation; 2] = [Implementation::Ours, Implementation::Fair];

    /// Whether this is one of lock-runtime's locks ([`Self::FAMILY`]) rather than a peer.
    pub fn is_family(self) -> bool {
        Self::FAMILY.contains(&self)
    }

    /// The commands this implementation's Lua scripts call inside Redis, and never sends itself.
    ///
    /// `INFO commandstats` counts a command called from a script like one a client sent; these
    /// are subtracted to count the commands a client sent over the network (see
    /// [`crate::redis_stats::CommandCounts`]).
    pub fn script_internal_commands(self) -> &'static [&'static str] {
        match self {
            // Every script of both locks (`testing::scripts::lock()` and `fair_lock()`: the
            // fair lock has an acquire of its own and runs the reentrant lock's other scripts);
            // `publish` is passed to the scripts as an argument; `info` and `cluster` run on
            // Redis before 7.0 only (exec's version and slot checks). A unit test checks the list.
            Implementation::Ours | Implementation::Fair => &[
                "type",
                "incr",
                "incrby",
                "pexpiretime",
                "time",
                "hget",
                "hset",
                "pexpire",
                "hexists",
                "get",
                "pttl",
                "exists",
                "hincrby",
                "set",
                "del",
                "publish",
                "zadd",
                "zrange",
                "zscore",
                "zrem",
                "zremrangebyrank",
                "hdel",
                "zcard",
                "hmget",
                "hkeys",
                "command",
                "info",
                "cluster",
            ],
            // The compare-and-delete release script.
            Implementation::SpinFixed | Implementation::SpinJitter => &["get", "del"],
            // rslock's unlock script (`GET`, `DEL`); its extend script is never run here.
            Implementation::Rslock => &["get", "del"],
        }
    }
}

impl std::fmt::Display for Implementation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the contenders are set up: how the spin lock waits between attempts, and where
/// lock-runtime's clients run their background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContenderSettings {
    /// The constant delay of `spin-fixed`, in milliseconds.
    pub fixed_delay_ms: u64,
    /// The first backoff ceiling of `spin-jitter`, in milliseconds.
    pub backoff_initial_ms: u64,
    /// The largest backoff ceiling of `spin-jitter`, in milliseconds.
    pub backoff_max_ms: u64,
    /// The runtime lock-runtime's clients (`ours`, `fair`) run their background work on.
    #[serde(default)]
    pub client_runtime: ClientRuntime,
}

/// Which runtime a `LockClient` of the benchmark runs its connections and background tasks on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClientRuntime {
    /// The library's own background thread: the default of `LockClientBuilder`.
    #[default]
    Library,
    /// The runtime of the process using the client (`LockClientBuilder::background_runtime`).
    Application,
}

impl ClientRuntime {
    /// The flag's value, as `--client-runtime` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Library => "library",
            Self::Application => "application",
        }
    }

    /// A client connected to `url` that runs its background work here.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    pub async fn connect(self, url: &str) -> BenchResult<LockClient> {
        let builder = LockClient::builder().url(url);
        let builder = match self {
            Self::Library => builder,
            Self::Application => builder.background_runtime(tokio::runtime::Handle::current()),
        };
        Ok(builder.build().await?)
    }
}

impl Default for ContenderSettings {
    /// Redisson's defaults: `ConstantBackOff` 64 ms, `ExponentialBackOff` 1 ms to 128 ms.
    fn default() -> Self {
        Self {
            fixed_delay_ms: 64,
            backoff_initial_ms: 1,
            backoff_max_ms: 128,
            client_runtime: ClientRuntime::Library,
        }
    }
}

/// How a spin lock sleeps after its n-th failed attempt.
#[derive(Debug, Clone, Copy)]
enum Backoff {
    Fixed(Duration),
    Jitter { initial: Duration, max: Duration },
}

impl Backoff {
    fn delay(self, failures: u32) -> Duration {
        match self {
            Backoff::Fixed(delay) => delay,
            Backoff::Jitter { initial, max } => {
                let ceiling = initial
                    .checked_mul(1u32 << failures.min(20))
                    .map_or(max, |ceiling| ceiling.min(max));
                Duration::from_nanos(fastrand::u64(..=saturating_ns(ceiling)))
            }
        }
    }
}

/// The spin lock's release: delete the key only if it still holds our token.
static SPIN_RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    )
});

/// One connected instance of an [`Implementation`]: what one process uses for all its tasks.
///
/// `ours` and `fair` share one `LockClient`, the spin lock one multiplexed connection, and rslock
/// one `LockManager`: each the way its documentation says to use it.
pub struct Contender {
    implementation: Implementation,
    kind: ContenderKind,
}

enum ContenderKind {
    Ours(LockClient),
    Fair(LockClient),
    Spin {
        connection: MultiplexedConnection,
        backoff: Backoff,
    },
    Rslock(rslock::LockManager),
}

impl std::fmt::Debug for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("implementation", &self.implementation)
            .finish_non_exhaustive()
    }
}

/// A held lock, returned by [`Contender::acquire`]; give it back to [`Contender::release`].
#[derive(Debug)]
pub struct Held(HeldKind);

#[derive(Debug)]
enum HeldKind {
    /// A guard of one of lock-runtime's locks (`ours` and `fair` hand out the same guard).
    Guard(LockGuard),
    Spin {
        key: String,
        token: String,
    },
    Rslock(rslock::LockGuard),
}

/// A multiplexed connection whose requests never time out on the client side (the default of
/// 500 ms would turn a slow moment of a loaded 2-core machine into an error).
pub async fn multiplexed_connection(url: &str) -> BenchResult<MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

impl Contender {
    /// Connects `implementation` to the Redis at `url`, and warms it up with one acquisition so
    /// that connections are open and scripts are loaded before anything is measured.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    pub async fn connect(
        implementation: Implementation,
        url: &str,
        spin: &ContenderSettings,
    ) -> BenchResult<Self> {
        let kind = match implementation {
            Implementation::Ours => ContenderKind::Ours(spin.client_runtime.connect(url).await?),
            Implementation::Fair => ContenderKind::Fair(spin.client_runtime.connect(url).await?),
            Implementation::SpinFixed | Implementation::SpinJitter => {
                let backoff = if implementation == Implementation::SpinFixed {
                    Backoff::Fixed(Duration::from_millis(spin.fixed_delay_ms))
                } else {
                    Backoff::Jitter {
                        initial: Duration::from_millis(spin.backoff_initial_ms.max(1)),
                        max: Duration::from_millis(spin.backoff_max_ms.max(1)),
                    }
                };
                ContenderKind::Spin {
                    connection: multiplexed_connection(url).await?,
                    backoff,
                }
            }
            Implementation::Rslock => {
                ContenderKind::Rslock(rslock::LockManager::new(vec![url.to_owned()]))
            }
        };
        let contender = Self {
            implementation,
            kind,
        };
        contender.warm_up().await?;
        Ok(contender)
    }

    /// `ours` on a client already built (a Redis Cluster's, say), warmed up as
    /// [`connect`](Self::connect) does.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn ours_on(client: LockClient) -> BenchResult<Self> {
        let contender = Self {
            implementation: Implementation::Ours,
            kind: ContenderKind::Ours(client),
        };
        contender.warm_up().await?;
        Ok(contender)
    }

    /// One acquisition and release, so that connections are open and scripts are loaded.
    async fn warm_up(&self) -> BenchResult<()> {
        let warm_up = lock_tests::unique_name("warm-up");
        let held = self.acquire(&warm_up).await?;
        self.release(held).await
    }

    /// Which implementation this is.
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// Waits as long as it takes for the lock `name`, and holds it with a [`LEASE`] lease.
    ///
    /// # Errors
    ///
    /// When Redis fails. Cancel safe in the sense the benchmark needs: a dropped attempt at
    /// worst leaves a key that expires with its lease, under a name no later run uses.
    pub async fn acquire(&self, name: &str) -> BenchResult<Held> {
        match &self.kind {
            ContenderKind::Ours(client) => {
                let guard = client.lock(name).acquire().await?;
                Ok(Held(HeldKind::Guard(guard)))
            }
            ContenderKind::Fair(client) => {
                let guard = client.fair_lock(name).acquire().await?;
                Ok(Held(HeldKind::Guard(guard)))
            }
            ContenderKind::Spin {
                connection,
                backoff,
            } => {
                let key = format!("{SPIN_PREFIX}:{name}");
                let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
                let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
                let mut failures = 0u32;
                loop {
                    let mut connection = connection.clone();
                    let reply: Option<String> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms)
                        .query_async(&mut connection)
                        .await?;
                    if reply.is_some() {
                        return Ok(Held(HeldKind::Spin { key, token }));
                    }
                    tokio::time::sleep(backoff.delay(failures)).await;
                    failures = failures.saturating_add(1);
                }
            }
            ContenderKind::Rslock(manager) => {
                let key = format!("{RSLOCK_PREFIX}:{name}");
                let guard = manager
                    .acquire(key.as_bytes(), LEASE)
                    .await
                    .map_err(|err| format!("rslock acquire of `{name}`: {err}"))?;
                Ok(Held(HeldKind::Rslock(guard)))
            }
        }
    }

    /// Releases a lock this contender acquired.
    ///
    /// # Errors
    ///
    /// When Redis fails, or the lock was no longer held (which no scenario should cause).
    pub async fn release(&self, held: Held) -> BenchResult<()> {
        match (&self.kind, held.0) {
            (ContenderKind::Ours(_) | ContenderKind::Fair(_), HeldKind::Guard(guard)) => {
                Ok(guard.unlock().await?)
            }
            (ContenderKind::Spin { connection, .. }, HeldKind::Spin { key, token }) => {
                let mut connection = connection.clone();
                let deleted: i64 = SPIN_RELEASE
                    .key(&key)
                    .arg(&token)
                    .invoke_async(&mut connection)
                    .await?;
                if deleted == 1 {
                    Ok(())
                } else {
                    Err(format!("spin lock `{key}` was no longer held at release").into())
                }
            }
            (ContenderKind::Rslock(_), HeldKind::Rslock(guard)) => {
                // rslock's release is best effort and reports nothing.
                guard.release().await;
                Ok(())
            }
            _ => Err("a lock was released through another implementation".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands `script` calls by name (`redis_call('…')` or `redis_pcall('…')`, as
    /// lock-runtime's scripts call Redis), lower case. A command passed as an argument (the
    /// publish command) is not named in the source.
    fn called_commands(script: &str) -> Vec<String> {
        script
            .split("redis_call(")
            .skip(1)
            .chain(script.split("redis_pcall(").skip(1))
            .filter_map(|call| {
                let rest = call.trim_start().strip_prefix('\'')?;
                Some(rest.split('\'').next().unwrap_or_default().to_lowercase())
            })
            .collect()
    }

    /// Every command the scripts of lock-runtime's locks call must be in the list subtracted from
    /// the client count: the reentrant lock's scripts for `ours`; for `fair`, its own scripts and
    /// the reentrant lock's, whose re-entry, renewal and force-unlock it runs too.
    #[test]
    fn our_script_commands_are_all_listed() {
        let lock = lock_runtime::testing::scripts::lock();
        let fair = lock_runtime::testing::scripts::fair_lock();
        for (implementation, scripts) in [
            (Implementation::Ours, lock.to_vec()),
            (Implementation::Fair, [&lock[..], &fair[..]].concat()),
        ] {
            let listed = implementation.script_internal_commands();
            let mut checked = 0;
            for (file, script) in scripts {
                for command in called_commands(script) {
                    assert!(
                        listed.contains(&command.as_str()),
                        "`{command}` is called by {file} but not listed for {implementation}"
                    );
                    checked += 1;
                }
            }
            assert!(
                checked > 0,
                "no command found in the scripts of {implementation}"
            );
        }
    }

    #[test]
    fn a_pcall_is_seen_and_an_argument_command_is_not() {
        let script = "redis_pcall('ZADD', k) redis_call(ARGV[3], k) redis_call( 'get', k)";
        assert_eq!(called_commands(script), ["get", "zadd"]);
    }

    #[test]
    fn jitter_stays_under_its_ceiling() {
        let backoff = Backoff::Jitter {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(128),
        };
        for failures in 0..40 {
            let ceiling = Duration::from_millis((1u64 << failures.min(7)).min(128));
            assert!(backoff.delay(failures) <= ceiling);
        }
    }
}
