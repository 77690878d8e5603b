//! [`LockClientBuilder`]: every setting of a client, checked before connecting.

use std::time::Duration;

use tokio::runtime::Handle;

use crate::{
    client::LockClient,
    core::{keys::validate_name, lease::MAX_LEASE},
    error::LockError,
    transport::{
        config::{Config, DEFAULT_WATCHDOG_TIMEOUT, Deployment, ReplicaCheck},
        sentinel::sentinel_client,
        tls::Tls,
    },
};

/// The longest watchdog timeout: the watchdog's lease is a lease like any other.
const MAX_WATCHDOG_TIMEOUT: Duration = MAX_LEASE;

/// Builds a [`LockClient`] with every setting spelled out.
///
/// ```no_run
/// # async fn example() -> Result<(), lock_runtime::LockError> {
/// use std::time::Duration;
///
/// let client = lock_runtime::LockClient::builder()
///     .url("redis://127.0.0.1:6379")
///     .key_prefix("myapp")
///     .watchdog_timeout(Duration::from_secs(30))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct LockClientBuilder {
    deployment: Option<Deployment>,
    key_prefix: String,
    client_name: Option<String>,
    watchdog_timeout: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
    retry_timeout: Duration,
    pubsub_ping_interval: Duration,
    replicas: Option<ReplicaCheck>,
    tls: Tls,
    background_runtime: Option<Handle>,
}

impl Default for LockClientBuilder {
    fn default() -> Self {
        Self {
            deployment: None,
            key_prefix: "lock".to_owned(),
            client_name: None,
            watchdog_timeout: DEFAULT_WATCHDOG_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(3),
            retry_timeout: Duration::from_secs(10),
            pubsub_ping_interval: Duration::from_secs(5),
            replicas: None,
            tls: Tls::default(),
            background_runtime: None,
        }
    }
}

impl LockClientBuilder {
    /// The Redis server, as a `redis://` (or `redis+unix://`) URL; `rediss://` (TLS) needs the
    /// `tls` cargo feature, which adds `tls_root_certificate` and `tls_client_certificate`.
    ///
    /// This, [`cluster`](Self::cluster) or [`sentinel`](Self::sentinel) is required; the last
    /// one given wins.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.deployment = Some(Deployment::Single(url.into()));
        self
    }

    /// A Redis Cluster, reached through these seed nodes (`redis://host:port` each; any subset of
    /// the nodes will do, the client learns the rest).
    ///
    /// Every key of one lock shares a hash tag, so each script runs on the one node that owns the
    /// lock's slot, and it follows the slot through resharding and failover. Release
    /// notifications use sharded pub/sub (Redis 7): waiters subscribe with `SSUBSCRIBE` on the
    /// primary serving the lock's slot and the scripts publish with `SPUBLISH`, so a message
    /// stays inside its shard; the subscriptions follow failovers and slot migrations. On a
    /// cluster older than Redis 7 (found at connect), the client warns and uses classic pub/sub,
    /// which Redis Cluster broadcasts to every node.
    ///
    /// A master failover delays acquire, release and renew (they resend within the
    /// [retry timeout](Self::retry_timeout) and their own deadline) rather than failing them;
    /// requests that must not run twice (lock-checked writes, `add_permits`, the commands of
    /// [`LockGuard::connection`](crate::LockGuard::connection)) are sent again only when the
    /// cluster's answer proves they did not run (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`);
    /// a master that stops answering costs one [response timeout](Self::response_timeout) more
    /// before the client asks for the new slot map. A lock the failed master had not yet
    /// replicated is lost with it. [`wait_for_replicas`](Self::wait_for_replicas) is not
    /// available on a cluster.
    ///
    /// This, [`url`](Self::url) or [`sentinel`](Self::sentinel) is required; the last one given
    /// wins.
    pub fn cluster<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deployment = Some(Deployment::Cluster(
            urls.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The primary that Redis Sentinel monitors as `master_name`, found through the Sentinels at
    /// `sentinel_urls` (`redis://host:port` each; the client asks them in this order) and
    /// followed through failovers.
    ///
    /// The client listens to the Sentinels' `+switch-master` announcements, and also looks the
    /// primary up again when a request finds its connection refused, reset, silent, or answered
    /// `READONLY` by a demoted primary; the command and pub/sub connections then move to the new
    /// primary, and waiting tasks retry there. Acquire, release and renew resend through a
    /// failover within the [retry timeout](Self::retry_timeout) and their own deadline, so a
    /// failover delays them rather than failing them. A lock the old primary had not yet
    /// replicated is lost with it: see [`wait_for_replicas`](Self::wait_for_replicas) (allowed
    /// here) and fencing tokens.
    ///
    /// The username and password in the URLs (which must agree) are used for the Sentinels and
    /// for the data nodes alike, and the URLs' database number for the data nodes.
    /// `rediss://` URLs (the `tls` cargo feature) mean TLS to the Sentinels and the data nodes,
    /// with the certificates given by `tls_root_certificate` and `tls_client_certificate`.
    ///
    /// This, [`url`](Self::url) or [`cluster`](Self::cluster) is required; the last one given
    /// wins. An empty master name, no Sentinel, or a URL that does not parse is a
    /// [`LockError::Config`] from [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), lock_runtime::LockError> {
    /// let client = lock_runtime::LockClient::builder()
    ///     .sentinel(
    ///         "mymaster",
    ///         ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    ///     )
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn sentinel<I, S>(mut self, master_name: impl Into<String>, sentinel_urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deployment = Some(Deployment::Sentinel {
            master: master_name.into(),
            sentinels: sentinel_urls.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Prefix of every Redis key and channel this client uses, so several applications can share
    /// one Redis without their lock names colliding.
    ///
    /// Defaults to `"lock"`: the lock named `stock:42` lives at the key `{lock:stock:42}`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The name this client's holds are recorded under, so that a caller who times out on a lock
    /// learns who holds it: [`LockError::Timeout`] says "held by
    /// orders-api@host-3 for 12.4 s, 3 in the queue". At most 200 bytes.
    ///
    /// It also names the client's connections to Redis (`CLIENT SETNAME`: the command
    /// connection, the pub/sub connection, and every connection that replaces them after a
    /// failure), so `CLIENT LIST` on the server shows which service each connection belongs to.
    /// Redis refuses spaces and newlines in a connection name, so there every character outside
    /// `'!'..='~'` becomes `_` (`"orders api"` names its connections `orders_api`); holds record
    /// the name as given. Naming costs no round trip: the name goes out with the first request
    /// on a connection (and the first after a failure that may have replaced it), never with
    /// the others. A Redis user whose ACL refuses `CLIENT SETNAME` leaves the connections
    /// unnamed and works the same. On a Redis Cluster, a node connection redis-rs opens on its
    /// own (a failover, a new node) is named after the next failed request, not before.
    ///
    /// Defaults to the host's name and the process id, such as `host-3/4121`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The lease set on locks acquired without a fixed lease. While such a lock is held, the
    /// client's watchdog renews it every third of this time; if the process dies, the lock frees
    /// itself at most this long after the last renewal. Between 30 ms and a year.
    ///
    /// Defaults to 30 seconds.
    pub fn watchdog_timeout(mut self, timeout: Duration) -> Self {
        self.watchdog_timeout = timeout;
        self
    }

    /// How long connecting to Redis may take when the client is built. (Reconnections later
    /// count against the response timeout of the request that needs them.) `Duration::MAX`
    /// means no limit.
    ///
    /// Defaults to 5 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer one command, including re-establishing the connection
    /// first if it was lost, before the attempt counts as failed and is resent on a fresh
    /// connection. An operation recovers within about this long after the network comes back.
    /// `Duration::MAX` means no limit (a silently dead peer then stalls commands until the kernel
    /// gives up on the socket).
    ///
    /// Defaults to 3 seconds.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long an operation keeps resending a command that failed for a transient reason (the
    /// connection dropped, a response timed out) before it reports the error. Resends are safe:
    /// each request carries an id the scripts recognise, so nothing is counted twice.
    /// A bounded wait (`try_acquire`) stops retrying at its own deadline. `Duration::MAX` means
    /// resend for as long as it takes.
    ///
    /// Defaults to 10 seconds.
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// How often the pub/sub connection is probed with `PING` while tasks wait on it, so a
    /// half-open connection is found and replaced instead of silently losing wake-ups.
    /// `Duration::MAX` means never.
    ///
    /// Defaults to 5 seconds.
    pub fn pubsub_ping_interval(mut self, interval: Duration) -> Self {
        self.pubsub_ping_interval = interval;
        self
    }

    /// After every fresh acquisition, waits up to `timeout` for `replicas` replicas to confirm
    /// they have the lock (Redis `WAIT`), and fails the acquisition with
    /// [`LockError::NotReplicated`] (releasing the lock) if fewer do. Redisson calls this the
    /// synced-slaves check.
    ///
    /// What it buys: a lock acknowledged by a replica survives the failover of the primary to
    /// that replica. What it does not: Redis replication stays asynchronous, so a replica that
    /// acknowledged can still be passed over for one that did not, and a failover during the
    /// wait can lose the lock. Fencing tokens are the defence that does not depend on any of
    /// this. `WAIT` runs on a connection of its own, opened for it, so it never holds up the
    /// releases and renewals of other tasks; fresh acquisitions of one client take turns on it,
    /// so keep `timeout` short. It must be shorter than the response timeout. A resent
    /// acquisition that finds its own hold writes it again, so `WAIT` covers it too.
    ///
    /// Defaults to off.
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.replicas = Some(ReplicaCheck { replicas, timeout });
        self
    }

    /// Runs this client's background work on `runtime` (typically `Handle::current()` in a
    /// service's `main`) instead of the library's own thread: its connections to Redis (every
    /// reply and every message is read there), the listener that wakes waiting tasks, the lease
    /// watchdog, and the releases that finish in the background.
    ///
    /// What it buys: the tasks that wait for Redis and the work that wakes them share a
    /// runtime, so on a current-thread runtime no reply or message has to wake another thread
    /// first, and on a multi-threaded runtime a task on its workers hands its request to the
    /// connection and gets the reply back without waking another thread. A thread woken from
    /// sleep is a cost every request pays twice on the library's thread, and every contended
    /// hand-off a few times: in a full run of the benchmark, the uncontended p50 from a worker
    /// task went from 1.36× to 1.15× the round-trip floor this way, and the contended lock's
    /// hand-off from about 4 to 2.7 round trips (README, "Which runtime runs the client").
    ///
    /// What it costs: the client then lives only as long as that runtime. Once the runtime
    /// shuts down, the client's connections are closed, its held locks are no longer renewed
    /// (a guard's lease runs out by its deadline, as any lost lease does), waiting tasks are no
    /// longer woken by releases (a task waiting elsewhere wakes at its timer, which is the
    /// library's), and every request is refused with [`LockError::Config`]
    /// ([`Mistake::Misuse`](crate::Mistake::Misuse)): build another client. So give it the
    /// runtime the client is used from, for as long as the client is: never for a client kept
    /// in a `static` and used from several runtimes (the default client of a test suite, where
    /// every `#[tokio::test]` has a runtime of its own), and never a current-thread runtime
    /// that is not kept running (its tasks run only while something is inside its
    /// `block_on`: a `#[tokio::main(flavor = "current_thread")]` is fine). The library's own
    /// thread is started all the same: it keeps the timers callers wait on (a lease's end, a
    /// waiter's next try, a pause before a resend) and the deadlines of every client's
    /// requests, so a caller on another runtime never polls a timer of one that is gone. The
    /// handle is kept for the rest of the process (after a shutdown, with the runtime's shared
    /// state: kilobytes), so build such clients once per runtime, not once per request.
    ///
    /// Defaults to the library's own runtime: one worker thread per process, never shut down,
    /// which any number of runtimes can share a client through.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), lock_runtime::LockError> {
    /// let client = lock_runtime::LockClient::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .background_runtime(tokio::runtime::Handle::current())
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn background_runtime(mut self, runtime: Handle) -> Self {
        self.background_runtime = Some(runtime);
        self
    }

    /// Trusts the CA certificate(s) in `pem` (PEM text) for `rediss://` servers, instead of the
    /// system's root certificates: for a private CA, as managed Redis services and self-run
    /// TLS setups use. Needs the `tls` cargo feature.
    ///
    /// Defaults to the system's roots.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root(pem.into());
        self
    }

    /// Shows a client certificate to `rediss://` servers that ask for one
    /// (`tls-auth-clients yes`, mutual TLS): the certificate chain and its private key, both
    /// PEM text. Needs the `tls` cargo feature.
    ///
    /// Defaults to none.
    #[cfg(feature = "tls")]
    pub fn tls_client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity(cert_pem.into(), key_pem.into());
        self
    }

    /// Checks the settings, connects to Redis, and starts the client's background tasks.
    ///
    /// Works from any executor, Tokio or not: the client's I/O and timers run on the library's
    /// own runtime (or on the one given to [`background_runtime`](Self::background_runtime)).
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] if a setting is missing or out of range, [`LockError::Redis`] if
    /// Redis cannot be reached within the connect timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future drops the half-built client and its connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # lock_tests::locks::run_with_redis(|url| async move {
    /// let client = lock_runtime::LockClient::builder()
    ///     .url(url)
    ///     .key_prefix("billing")
    ///     .watchdog_timeout(Duration::from_secs(10))
    ///     .build()
    ///     .await?;
    /// # drop(client);
    /// # Ok(()) });
    /// ```
    pub async fn build(self) -> Result<LockClient, LockError> {
        let config = self.into_config()?;
        LockClient::from_config(config).await
    }

    fn into_config(self) -> Result<Config, LockError> {
        let deployment = match self.deployment {
            None => {
                return Err(LockError::config(
                    "no Redis URL: call `.url(\"redis://host:port\")` (or `.cluster([...])`, or `.sentinel(name, [...])`) on the builder",
                ));
            }
            Some(Deployment::Cluster(urls)) if urls.is_empty() => {
                return Err(LockError::config(
                    "`.cluster([...])` was given no node: name at least one seed node",
                ));
            }
            Some(Deployment::Cluster(_)) if self.replicas.is_some() => {
                return Err(LockError::config(
                    "`wait_for_replicas` is not available on a Redis Cluster",
                ));
            }
            Some(Deployment::Sentinel { master, sentinels }) => {
                // Checked now, so a mistake is found before anything connects.
                sentinel_client(&master, &sentinels, &self.tls)?;
                Deployment::Sentinel { master, sentinels }
            }
            Some(deployment) => deployment,
        };
        validate_name(&self.key_prefix)
            .map_err(|err| LockError::config(format!("key prefix `{}`: {err}", self.key_prefix)))?;
        let positive = [
            (
                "watchdog_timeout",
                self.watchdog_timeout,
                Duration::from_millis(30),
            ),
            (
                "connect_timeout",
                self.connect_timeout,
                Duration::from_millis(1),
            ),
            (
                "response_timeout",
                self.response_timeout,
                Duration::from_millis(1),
            ),
            (
                "pubsub_ping_interval",
                self.pubsub_ping_interval,
                Duration::from_millis(1),
            ),
        ];
        for (setting, value, minimum) in positive {
            if value < minimum {
                return Err(LockError::config(format!(
                    "`{setting}` is {value:?}; it must be at least {minimum:?}"
                )));
            }
        }
        if self.watchdog_timeout > MAX_WATCHDOG_TIMEOUT {
            return Err(LockError::config(format!(
                "`watchdog_timeout` is {:?}; it must be at most {} days",
                self.watchdog_timeout,
                MAX_WATCHDOG_TIMEOUT.as_secs() / 86_400
            )));
        }
        if let Some(check) = self.replicas {
            if check.replicas == 0 {
                return Err(LockError::config(
                    "`wait_for_replicas` needs at least one replica; leave it out to not wait",
                ));
            }
            if check.timeout.is_zero() || check.timeout >= self.response_timeout {
                return Err(LockError::config(format!(
                    "the `wait_for_replicas` timeout is {:?}; it must be above zero and below the response timeout ({:?})",
                    check.timeout, self.response_timeout
                )));
            }
        }
        #[cfg(feature = "tls")]
        self.tls.check()?;
        let client_name = self.client_name.unwrap_or_else(default_client_name);
        if client_name.is_empty() || client_name.len() > 200 {
            return Err(LockError::config(format!(
                "the client name {client_name:?} must have 1 to 200 bytes"
            )));
        }
        Ok(Config {
            deployment,
            key_prefix: self.key_prefix,
            client_name,
            watchdog_timeout: self.watchdog_timeout,
            connect_timeout: self.connect_timeout,
            response_timeout: self.response_timeout,
            retry_timeout: self.retry_timeout,
            // An interval must fit `Instant` arithmetic: "never" is once a year.
            pubsub_ping_interval: self.pubsub_ping_interval.min(MAX_LEASE),
            replicas: self.replicas,
            tls: self.tls,
            background_runtime: self.background_runtime,
        })
    }
}

/// The host's name and this process's id, such as `host-3/4121`.
fn default_client_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}/{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_url_is_a_config_error() {
        let err = LockClientBuilder::default()
            .into_config()
            .expect_err("no url");
        assert!(err.to_string().contains(".url("), "{err}");
    }

    #[test]
    fn a_cluster_needs_a_node_and_no_replica_wait() {
        let empty = LockClientBuilder::default()
            .cluster(Vec::<String>::new())
            .into_config()
            .expect_err("no node");
        assert!(empty.to_string().contains("no node"), "{empty}");
        let waiting = LockClientBuilder::default()
            .cluster(["redis://127.0.0.1:7000"])
            .wait_for_replicas(1, Duration::from_millis(100))
            .into_config()
            .expect_err("WAIT on a cluster");
        assert!(
            waiting.to_string().contains("wait_for_replicas"),
            "{waiting}"
        );
    }

    #[test]
    fn the_last_deployment_given_wins_and_sentinels_are_checked() {
        let sentinel = LockClientBuilder::default()
            .url("redis://127.0.0.1:6379")
            .sentinel("mymaster", ["redis://127.0.0.1:26379"])
            .wait_for_replicas(1, Duration::from_millis(100))
            .into_config()
            .expect("a Sentinel-managed primary may wait for replicas");
        assert!(matches!(
            sentinel.deployment,
            Deployment::Sentinel { ref master, .. } if master == "mymaster"
        ));
        let single = LockClientBuilder::default()
            .sentinel("mymaster", ["redis://127.0.0.1:26379"])
            .url("redis://127.0.0.1:6379")
            .into_config()
            .expect("valid");
        assert!(matches!(single.deployment, Deployment::Single(_)));
        let err = LockClientBuilder::default()
            .sentinel("", ["redis://127.0.0.1:26379"])
            .into_config()
            .expect_err("no name");
        assert!(err.to_string().contains("empty master name"), "{err}");
    }

    #[test]
    fn watchdog_timeouts_out_of_range_are_refused() {
        for timeout in [Duration::ZERO, Duration::MAX] {
            let err = LockClientBuilder::default()
                .url("redis://127.0.0.1")
                .watchdog_timeout(timeout)
                .into_config()
                .expect_err("out of range");
            assert!(err.to_string().contains("watchdog_timeout"), "{err}");
        }
    }

    #[test]
    fn unbounded_timeouts_are_accepted_and_memos_stay_bounded() {
        let config = LockClientBuilder::default()
            .url("redis://127.0.0.1")
            .connect_timeout(Duration::MAX)
            .response_timeout(Duration::MAX)
            .retry_timeout(Duration::MAX)
            .pubsub_ping_interval(Duration::MAX)
            .into_config()
            .expect("valid");
        assert_eq!(config.memo_ttl(), Duration::from_secs(24 * 60 * 60));
        assert!(config.abandoned_ttl() >= config.memo_ttl());
        assert_eq!(
            config.request_horizon(),
            Duration::from_secs(24 * 60 * 60 + 15 * 60)
        );
    }

    #[test]
    fn the_request_horizon_covers_every_resend_and_then_tcp() {
        let config = LockClientBuilder::default()
            .url("redis://127.0.0.1")
            .into_config()
            .expect("valid");
        assert_eq!(config.memo_ttl(), Duration::from_secs(13));
        assert_eq!(config.request_horizon(), Duration::from_secs(15 * 60 + 13));
    }

    #[test]
    fn a_replica_wait_must_fit_in_the_response_timeout() {
        let builder = LockClientBuilder::default().url("redis://127.0.0.1");
        for (replicas, timeout) in [(0, 100), (1, 0), (1, 3_000)] {
            let err = builder
                .clone()
                .wait_for_replicas(replicas, Duration::from_millis(timeout))
                .into_config()
                .expect_err("out of range");
            assert!(err.to_string().contains("wait_for_replicas"), "{err}");
        }
    }

    #[test]
    fn braced_prefix_is_refused() {
        let err = LockClientBuilder::default()
            .url("redis://127.0.0.1")
            .key_prefix("a{b}")
            .into_config()
            .expect_err("braces");
        assert!(matches!(err, LockError::Config { .. }), "{err}");
    }
}
