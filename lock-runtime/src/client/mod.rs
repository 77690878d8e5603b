//! [`LockClient`]: the handle from which every lock is made, and how a client is started.
//!
//! The client's state is the core's `Backend` (`core/backend.rs`); this module connects it and
//! wraps it in the public handle.
//!
//! # Connections
//!
//! A client keeps few connections to Redis, whatever the number of locks and waiters:
//!
//! - one multiplexed command connection (redis-rs `ConnectionManager`): every task's scripts are
//!   pipelined on it, and it reconnects by itself after a failure, or is replaced when it stops
//!   answering (see the `connection` module);
//! - one dedicated RESP2 pub/sub connection owned by the subscription hub (`core/hub`), opened
//!   the first time a task has to wait; on a Redis Cluster (Redis 7 or newer), one RESP3
//!   connection to each primary a waited-on lock lives on, for sharded pub/sub;
//! - with [`LockClientBuilder::wait_for_replicas`] only, a third connection for the acquisitions
//!   that `WAIT` for replicas;
//! - behind Sentinels ([`LockClientBuilder::sentinel`]), a pub/sub connection to one Sentinel
//!   for its failover announcements, and the connections redis-rs keeps to the Sentinels it
//!   asks (see the `sentinel` module).
//!
//! Every connection carries the client's name (`CLIENT SETNAME`; see the `naming` module), so
//! `CLIENT LIST` on the server tells which service each connection belongs to.
//!
//! Pub/sub lives on its own connection rather than as RESP3 pushes on the command connection so
//! that the hub sees the connection drop (its message stream ends) and can resubscribe and wake
//! every waiter, and so that a slow subscriber never holds up lock commands. It also works with
//! Redis servers older than 6.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;

use crate::{
    CountDownLatch, FairLock, Lock, LockClientBuilder, LockError, MultiLock, ReadWriteLock,
    Semaphore,
    core::{
        backend::{Backend, ServerFeatures},
        background,
        commands::CommandTable,
        hub::{Hub, Nodes, Transport},
        ids::Ids,
        lease::MAX_LEASE,
        script::{ScriptPath, within},
        watchdog::Watchdog,
    },
    lock::info::PrimitiveKind,
};

pub(crate) mod builder;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod default;
pub(crate) mod naming;
pub(crate) mod sentinel;
pub(crate) mod tls;

use config::{Config, Deployment};
use connection::{Asked, Commands, Connection};

/// A handle to one Redis deployment, from which locks are made.
///
/// Cheap to clone: clones share the connections, the subscription hub and the lease watchdog.
/// The background tasks stop when the last clone (and the last guard made from it) is dropped.
/// A client may be used from any Tokio runtime, not only the one that built it.
///
/// ```no_run
/// # async fn example() -> Result<(), lock_runtime::LockError> {
/// let client = lock_runtime::LockClient::connect("redis://127.0.0.1:6379").await?;
/// let guard = client.lock("stock:42").acquire().await?;
/// // ... the critical section ...
/// guard.unlock().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockClient {
    pub(crate) backend: Arc<Backend>,
}

impl std::fmt::Debug for LockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockClient")
            .field("id", self.backend.ids.client())
            .field("redis", &self.backend.config.deployment)
            .field("key_prefix", &self.backend.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl LockClient {
    /// Connects to the Redis at `url` with default settings.
    ///
    /// Use [`LockClient::builder`] to change a setting.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] if the URL does not parse, [`LockError::Redis`] if Redis cannot be
    /// reached within the connect timeout (5 seconds by default).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), lock_runtime::LockError> {
    /// let client = lock_runtime::LockClient::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder().url(url).build().await
    }

    /// Starts a [`LockClientBuilder`] to configure every setting.
    pub fn builder() -> LockClientBuilder {
        LockClientBuilder::default()
    }

    /// A handle to the reentrant lock called `name`.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn lock(&self, name: impl Into<String>) -> Lock {
        Lock::new(self.clone(), name.into())
    }

    /// A handle to the fair lock called `name`: like [`lock`](Self::lock), and first come first
    /// served across every process. It shares the Redis key of the reentrant lock of the same
    /// name, so the two exclude each other.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn fair_lock(&self, name: impl Into<String>) -> FairLock {
        FairLock::new(self.clone(), name.into())
    }

    /// A handle to the read-write lock called `name`: many readers or one writer, across every
    /// process, with no writer starved. Its Redis keys are its own: it does not exclude the
    /// reentrant lock of the same name.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the lock is used.
    pub fn read_write_lock(&self, name: impl Into<String>) -> ReadWriteLock {
        ReadWriteLock::new(self.clone(), name.into())
    }

    /// A handle to the semaphore called `name`: permits shared by every process, each
    /// acquisition leased like a lock, so a crashed holder's permits come back when its lease
    /// ends. Set its permits once with [`Semaphore::try_set_permits`].
    ///
    /// Making a handle does not talk to Redis; the name is checked when the semaphore is used.
    pub fn semaphore(&self, name: impl Into<String>) -> Semaphore {
        Semaphore::new(self.clone(), name.into())
    }

    /// A handle to the count-down latch called `name`: a count set once, counted down from any
    /// process, and every waiter released together at zero. Its Redis keys are its own: it does
    /// not touch the locks of the same name.
    ///
    /// Making a handle does not talk to Redis; the name is checked when the latch is used.
    pub fn count_down_latch(&self, name: impl Into<String>) -> CountDownLatch {
        CountDownLatch::new(self.clone(), name.into())
    }

    /// A handle to the multi-lock of the reentrant locks `names`: all of them, or none, taken in
    /// the order of their names whatever order they are given in, so multi-locks over the same
    /// names never deadlock. A name given twice is taken once.
    ///
    /// Making a handle does not talk to Redis; the names are checked when the lock is used.
    pub fn multi_lock<I>(&self, names: I) -> MultiLock
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        MultiLock::new(self.clone(), names.into_iter().map(Into::into).collect())
    }

    /// The random id of this client, the first part of every owner id it hands out.
    pub fn id(&self) -> &str {
        self.backend.ids.client()
    }

    /// The key prefix this client's locks live under ([`LockClientBuilder::key_prefix`]).
    pub fn key_prefix(&self) -> &str {
        &self.backend.config.key_prefix
    }

    /// The names of the reentrant and fair locks held now under this client's key prefix whose
    /// name matches the glob `pattern` (Redis glob syntax: `*` any run of characters, `?` one,
    /// `[abc]` one of them, `\` escapes; `"*"` for every lock), at most `limit` of them, sorted.
    /// Describe each with [`Lock::info`].
    ///
    /// Walks the keyspace with `SCAN` (never `KEYS`): each call looks at a thousand keys and
    /// Redis answers it at once, so listing never stalls the server, however many keys it
    /// holds; it costs one round trip per thousand keys. On a Redis Cluster it walks every
    /// primary in turn (found with `CLUSTER SLOTS`, each reached through a slot it serves),
    /// and stops as soon as it has `limit` names. As with any `SCAN`, a lock taken or released
    /// while the walk runs (or whose slot moves to another node meanwhile) may or may not be
    /// listed. Read-write locks, semaphores and latches are not listed.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] ([`Mistake::InvalidArgument`](crate::Mistake::InvalidArgument)) for a pattern with `{` or `}` (no lock name has them);
    /// [`LockError::Redis`] if Redis (any primary of a cluster) stays unreachable.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let a = client.lock("stock:1").acquire().await?;
    /// let b = client.lock("stock:2").acquire().await?;
    /// let c = client.lock("orders:7").acquire().await?;
    /// assert_eq!(client.held_locks("stock:*", 100).await?, ["stock:1", "stock:2"]);
    /// assert_eq!(client.held_locks("*", 1).await?.len(), 1);
    /// # for guard in [a, b, c] { guard.unlock().await?; }
    /// # Ok(()) });
    /// ```
    pub async fn held_locks(&self, pattern: &str, limit: usize) -> Result<Vec<String>, LockError> {
        crate::lock::info::held_locks(self, pattern, limit).await
    }

    /// The primitives of every kind under this client's key prefix whose name matches the glob
    /// `pattern` (as for [`held_locks`](Self::held_locks)): the reentrant and fair locks held,
    /// the read-write locks held, the semaphores whose permits were set (held or not) and the
    /// latches set, at most `limit` of them, sorted by name (one name may have several kinds).
    /// Describe each with its handle's `info()`.
    ///
    /// Walks the keyspace with `SCAN` as [`held_locks`](Self::held_locks) does, twice (once for
    /// the kinds kept in hashes, once for the latches, kept in strings).
    ///
    /// # Errors
    ///
    /// As [`held_locks`](Self::held_locks).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_runtime::PrimitiveKind;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// # let client = lock_runtime::LockClient::connect(&url).await?;
    /// let read = client.read_write_lock("doc:1").read().acquire().await?;
    /// client.semaphore("pool:cli").try_set_permits(3).await?;
    /// assert_eq!(
    ///     client.primitives("*", 100).await?,
    ///     [
    ///         (PrimitiveKind::ReadWriteLock, "doc:1".to_owned()),
    ///         (PrimitiveKind::Semaphore, "pool:cli".to_owned()),
    ///     ]
    /// );
    /// # read.unlock().await?;
    /// # Ok(()) });
    /// ```
    pub async fn primitives(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<(PrimitiveKind, String)>, LockError> {
        crate::lock::info::primitives(self, pattern, limit).await
    }

    pub(crate) async fn from_config(config: Config) -> Result<Self, LockError> {
        let runtime = background::handle()?;
        let targets = match &config.deployment {
            Deployment::Single(url) => Targets::Nodes(vec![tls::open(url, &config.tls)?]),
            // The seed nodes: of the command connection, and of the hub (sharded pub/sub on each
            // channel's primary, or on Redis before 7 one classic connection to the first that
            // answers).
            Deployment::Cluster(urls) => Targets::Nodes(
                urls.iter()
                    .map(|url| tls::open(url, &config.tls))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Deployment::Sentinel { master, sentinels } => Targets::Sentinels(
                master,
                Box::new(sentinel::sentinel_client(master, sentinels, &config.tls)?),
            ),
        };
        // Connected inside the background runtime's context, so the connections' drivers live
        // there and not on the caller's runtime.
        let connecting = background::in_context(runtime, async {
            let nodes = match targets {
                Targets::Nodes(nodes) => Nodes::Fixed(nodes),
                Targets::Sentinels(master, sentinels) => {
                    let limits = sentinel::Limits {
                        connect: config.connect_timeout,
                        response: config.response_timeout,
                        ping_interval: config.pubsub_ping_interval.min(MAX_LEASE),
                    };
                    // Boxed as a trait object: redis-rs's lookup future is deep, and every
                    // future that may build a client (the default client's) would carry it.
                    let locating: BoxFuture<'_, _> = Box::pin(sentinel::Primary::locate(
                        runtime,
                        master,
                        *sentinels,
                        limits,
                        config.connection_name(),
                    ));
                    Nodes::Sentinel(locating.await?)
                }
            };
            let commands = connect(&config, &nodes).await?;
            let replicated = match config.replicas {
                Some(_) => Some(connect(&config, &nodes).await?),
                None => None,
            };
            let mut connection = commands.lease().connection;
            warn_if_locks_can_be_evicted(&mut connection, &config.deployment).await;
            let server = server_features(&mut connection, &config.deployment).await?;
            let transport = match (&config.deployment, nodes) {
                (Deployment::Cluster(_), Nodes::Fixed(seeds)) => {
                    if cluster_has_sharded_pubsub(server) {
                        Transport::Sharded(seeds)
                    } else {
                        Transport::Classic(Nodes::Fixed(seeds))
                    }
                }
                (_, nodes) => Transport::Classic(nodes),
            };
            Ok::<_, redis::RedisError>((transport, commands, replicated, server))
        });
        let context = || format!("connecting to {}", config.deployment);
        let timed = background::in_context(runtime, within(config.connect_timeout, connecting));
        let (transport, commands, replicated, server) = timed
            .await
            .map_err(|err| LockError::redis(context(), err))?;
        let scripts = Arc::new(ScriptPath::new(runtime, commands, replicated, &config));
        let ids = Ids::new();
        let hub = Hub::start(runtime, transport, &config);
        let watchdog = Watchdog::start(runtime, Arc::clone(&scripts), config.renew_interval());
        tracing::debug!(client = %ids.client(), redis = %config.deployment, "lock client connected");
        Ok(Self {
            backend: Arc::new(Backend {
                ids,
                config,
                runtime,
                scripts,
                hub,
                watchdog,
                commands: CommandTable::default(),
                server,
            }),
        })
    }
}

/// Where a deployment's nodes are, before connecting: known, or to be asked of the Sentinels.
enum Targets<'a> {
    Nodes(Vec<redis::Client>),
    /// Boxed: redis-rs's Sentinel client is large.
    Sentinels(&'a str, Box<redis::sentinel::SentinelClient>),
}

/// Opens one command connection to the deployment.
async fn connect(config: &Config, nodes: &Nodes) -> redis::RedisResult<Commands> {
    // One reconnection try per request: the script path resends, on a fresh connection after a
    // timeout, so the manager's own retries would only pile up behind it.
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(None)
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    let name = config.connection_name();
    match (&config.deployment, nodes) {
        (_, Nodes::Sentinel(primary)) => {
            Commands::connect_sentinel(Arc::clone(primary), manager_config, &name).await
        }
        (Deployment::Cluster(urls), Nodes::Fixed(seeds)) => {
            let node_connect_timeout = config.cluster_node_connect_timeout();
            // Sent once by redis-rs: the script path resends what is safe to resend (see
            // `connection.rs`).
            let cluster = redis::cluster::ClusterClient::builder(urls.clone())
                .retries(0)
                .connection_timeout(node_connect_timeout)
                .response_timeout(config.response_timeout);
            #[cfg(feature = "tls")]
            let cluster = match config.tls.given() {
                Some(certificates) => cluster.certs(certificates.clone()),
                None => cluster,
            };
            let cluster = cluster.build()?;
            // Given again with each connection: a connection's config replaces the builder's.
            let cluster_config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(node_connect_timeout)
                .set_response_timeout(config.response_timeout);
            let asked = Asked {
                seed: seeds.first().cloned().ok_or_else(no_node)?,
                config: manager_config.set_connection_timeout(Some(node_connect_timeout)),
            };
            Commands::connect_cluster(cluster, cluster_config, asked, &name).await
        }
        (_, Nodes::Fixed(nodes)) => {
            let node = nodes.first().cloned().ok_or_else(no_node)?;
            Commands::connect(node, manager_config, &name).await
        }
    }
}

/// The error of a deployment given no node to connect to.
fn no_node() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "no Redis node to connect to",
    ))
}

/// What the server can run, by the version `INFO server` gives (on a cluster, the primary of
/// slot 0's): read once at connect, it chooses the scripts' variants (`#!lua` shebangs from
/// Redis 7.0) and on a cluster the pub/sub. A server that refuses `INFO` (some managed services)
/// counts as Redis 7, except a cluster, which needs the answer to choose its pub/sub.
async fn server_features(
    connection: &mut Connection,
    deployment: &Deployment,
) -> redis::RedisResult<ServerFeatures> {
    let info = redis::cmd("INFO").arg("server").clone();
    let version = match connection.query_on::<String>(&info, Some(0)).await {
        Ok(info) => redis_version(&info),
        Err(err) if !matches!(deployment, Deployment::Cluster(_)) => {
            tracing::debug!(redis = %deployment, error = %err, "could not read the server's version");
            None
        }
        Err(err) => return Err(err),
    };
    let server = ServerFeatures { version };
    if !server.script_flags() {
        tracing::info!(
            version = %server.describe(),
            "this Redis predates 7.0: scripts are sent without their `#!lua` flags"
        );
    }
    Ok(server)
}

/// Whether the cluster serves sharded pub/sub (`SSUBSCRIBE`, `SPUBLISH`: Redis 7 or newer),
/// judged by the version of the primary of slot 0. On an older cluster the client falls back on
/// classic pub/sub, which Redis Cluster broadcasts to every node, and says so once.
fn cluster_has_sharded_pubsub(server: ServerFeatures) -> bool {
    let sharded = server.version.is_some_and(|(major, _)| major >= 7);
    if !sharded {
        tracing::warn!(
            version = %server.describe(),
            "this Redis Cluster predates Redis 7 and its sharded pub/sub: release notifications use classic pub/sub, which the cluster broadcasts to every node"
        );
    }
    sharded
}

/// The `(major, minor)` version in the text of `INFO server`, if it says.
fn redis_version(info: &str) -> Option<(u32, u32)> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))?;
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0);
    Some((major, minor))
}

/// Every `volatile-*` and `allkeys-*` eviction policy may delete a held lock under memory
/// pressure, so say so once at connect. Managed Redis services may refuse `CONFIG`: stay quiet.
async fn warn_if_locks_can_be_evicted(connection: &mut Connection, redis: &Deployment) {
    let reply: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(connection)
        .await;
    match reply.as_deref() {
        Ok([_, policy]) if policy != "noeviction" => tracing::warn!(
            %redis,
            policy = policy.as_str(),
            "Redis may evict lock keys under memory pressure; set `maxmemory-policy noeviction`"
        ),
        Ok(_) => {}
        Err(err) => tracing::debug!(%redis, error = %err, "could not read maxmemory-policy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_info_server() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(redis_version(info), Some((7, 0)));
        assert_eq!(redis_version("redis_version:6.2.14\n"), Some((6, 2)));
        assert_eq!(redis_version("redis_version:8\n"), Some((8, 0)));
        assert_eq!(redis_version("# Server\n"), None);
    }
}
