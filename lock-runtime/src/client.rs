//! [`LockClient`]: the connections, identity and background tasks shared by every lock.
//!
//! # Connections
//!
//! A client keeps exactly two connections to Redis, whatever the number of locks and waiters:
//!
//! - one multiplexed command connection (redis-rs `ConnectionManager`): every task's scripts are
//!   pipelined on it, and it reconnects by itself after a failure, or is replaced when it stops
//!   answering (see the `connection` module);
//! - one dedicated RESP2 pub/sub connection owned by the [subscription hub](crate::hub), opened the
//!   first time a task has to wait.
//!
//! Pub/sub lives on its own connection rather than as RESP3 pushes on the command connection so
//! that the hub sees the connection drop (its message stream ends) and can resubscribe and wake
//! every waiter, and so that a slow subscriber never holds up lock commands. It also works with
//! Redis servers older than 6.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::RetryMethod;
use tokio::time::Instant;

use crate::{
    Lock, LockClientBuilder, LockError,
    config::{Config, Deployment},
    connection::{Commands, Connection},
    hub::Hub,
    watchdog::Watchdog,
};

/// A handle to one Redis deployment, from which locks are made.
///
/// Cheap to clone: clones share the connections, the subscription hub and the lease watchdog.
/// The background tasks stop when the last clone (and the last guard made from it) is dropped.
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
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    /// Random id of this client; prefixes every owner id it hands out.
    pub(crate) id: Arc<str>,
    pub(crate) config: Config,
    commands: Arc<Commands>,
    pub(crate) hub: Hub,
    pub(crate) watchdog: Watchdog,
    next_scope: AtomicU64,
    next_request: AtomicU64,
}

impl std::fmt::Debug for LockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockClient")
            .field("id", &self.inner.id)
            .field("redis", &self.inner.config.deployment)
            .field("key_prefix", &self.inner.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl LockClient {
    /// Connects to the Redis at `url` with default settings.
    ///
    /// Must be called inside a Tokio runtime. Use [`LockClient::builder`] to change a setting.
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

    /// The random id of this client, the first part of every owner id it hands out.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub(crate) async fn from_config(config: Config) -> Result<Self, LockError> {
        let urls = match &config.deployment {
            Deployment::Single(url) => std::slice::from_ref(url),
            Deployment::Cluster(urls) => urls.as_slice(),
        };
        // The pub/sub connection goes to one node (the first that answers, in this order).
        let nodes = urls
            .iter()
            .map(|url| {
                redis::Client::open(url.as_str()).map_err(|err| {
                    LockError::config(format!("Redis URL `{url}` does not parse: {err}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let connecting = async {
            match &config.deployment {
                Deployment::Single(_) => {
                    let manager_config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(config.connect_timeout))
                        .set_response_timeout(Some(config.response_timeout))
                        .set_max_delay(Duration::from_secs(1));
                    Commands::connect(nodes[0].clone(), manager_config).await
                }
                Deployment::Cluster(urls) => {
                    let cluster = redis::cluster::ClusterClient::builder(urls.clone())
                        .connection_timeout(config.connect_timeout)
                        .response_timeout(config.response_timeout)
                        .build()?;
                    Commands::connect_cluster(cluster).await
                }
            }
        };
        let context = || format!("connecting to {}", config.deployment);
        let commands = tokio::time::timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| LockError::redis(context(), timed_out(config.connect_timeout)))?
            .map_err(|err| LockError::redis(context(), err))?;
        let commands = Arc::new(commands);
        warn_if_locks_can_be_evicted(&mut commands.lease().connection, &config.deployment).await;

        let id: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let hub = Hub::start(nodes, &config);
        let watchdog = Watchdog::start(Arc::clone(&commands), &config);
        tracing::debug!(client = %id, redis = %config.deployment, "lock client connected");
        Ok(Self {
            inner: Arc::new(ClientInner {
                id,
                config,
                commands,
                hub,
                watchdog,
                next_scope: AtomicU64::new(1),
                next_request: AtomicU64::new(1),
            }),
        })
    }
}

impl ClientInner {
    /// A new owner id, unique to one fresh acquisition: `client id:scope id`.
    pub(crate) fn new_owner_id(&self) -> Arc<str> {
        let scope = self.next_scope.fetch_add(1, Ordering::Relaxed);
        format!("{}:{scope}", self.id).into()
    }

    /// A new request id, unique to one logical request however often it is resent.
    pub(crate) fn new_request_id(&self) -> String {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{}:r{request}", self.id)
    }

    /// Runs `request` on the command connection, resending it while it fails for a transient
    /// reason, until [`Config::retry_timeout`] after the first failure or until `deadline`,
    /// whichever comes first.
    ///
    /// Only requests that are safe to resend may come here: the scripts make them so.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        context: impl Fn() -> String,
        deadline: Option<Instant>,
        mut request: F,
    ) -> Result<T, LockError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut give_up_at: Option<Instant> = None;
        let mut backoff = Duration::from_millis(10);
        loop {
            let leased = self.commands.lease();
            let err = match request(leased.connection.clone()).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            self.commands.report(&leased, &err);
            let now = Instant::now();
            let give_up_at = *give_up_at.get_or_insert_with(|| {
                let retry_end = now + self.config.retry_timeout;
                deadline.map_or(retry_end, |deadline| deadline.min(retry_end))
            });
            if !is_transient(&err) || now + backoff >= give_up_at {
                return Err(LockError::redis(context(), err));
            }
            tracing::debug!(error = %err, ?backoff, "transient Redis error; resending");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// Whether resending the command may succeed: the connection dropped or stalled, or the server is
/// loading or failing over.
fn is_transient(err: &redis::RedisError) -> bool {
    !matches!(err.retry_method(), RetryMethod::NoRetry)
        && err.kind() != redis::ErrorKind::AuthenticationFailed
}

pub(crate) fn timed_out(after: Duration) -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    )
    .into()
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
