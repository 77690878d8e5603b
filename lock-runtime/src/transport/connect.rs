//! Opening a deployment: its command connections, where its pub/sub goes, and what its server
//! can run, found out once at connect.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;

use crate::{
    error::LockError,
    transport::{
        background::{Background, in_context},
        config::{Config, Deployment},
        connection::{Asked, Commands, Connection, Open},
        deadline::within,
        nodes::{Nodes, PubSub},
        sentinel, tls,
    },
};

/// A deployment just connected to.
pub(crate) struct Connected {
    /// Where its pub/sub goes.
    pub(crate) pubsub: PubSub,
    /// The command connection every request shares.
    pub(crate) commands: Commands,
    /// The connection of the acquisitions that `WAIT` for replicas, if the client asked for it.
    pub(crate) replicated: Option<Commands>,
    /// What its server can run.
    pub(crate) server: ServerFeatures,
}

/// Connects to the deployment `config` names, within its connect timeout. The connections are
/// opened inside `runtime`'s context, so their drivers live there and not on the caller's
/// runtime.
///
/// # Errors
///
/// [`LockError::Config`] for a URL that does not parse, [`LockError::Redis`] if the deployment
/// cannot be reached in time.
pub(crate) async fn open(
    config: &Config,
    runtime: &'static Background,
) -> Result<Connected, LockError> {
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
    let connecting = in_context(runtime, async {
        let nodes = match targets {
            Targets::Nodes(nodes) => Nodes::Fixed(nodes),
            Targets::Sentinels(master, sentinels) => {
                let limits = sentinel::Limits {
                    connect: config.connect_timeout,
                    response: config.response_timeout,
                    ping_interval: config.pubsub_ping_interval,
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
        let commands = command_connection(config, &nodes).await?;
        let replicated = match config.replicas {
            Some(_) => Some(command_connection(config, &nodes).await?),
            None => None,
        };
        let mut connection = commands.lease().connection;
        warn_if_locks_can_be_evicted(&mut connection, &config.deployment).await;
        let server = server_features(&mut connection, &config.deployment).await?;
        let pubsub = match (&config.deployment, nodes) {
            (Deployment::Cluster(_), Nodes::Fixed(seeds)) => {
                if cluster_has_sharded_pubsub(server) {
                    PubSub::Sharded(seeds)
                } else {
                    PubSub::Classic(Nodes::Fixed(seeds))
                }
            }
            (_, nodes) => PubSub::Classic(nodes),
        };
        Ok::<_, redis::RedisError>((pubsub, commands, replicated, server))
    });
    let context = || format!("connecting to {}", config.deployment);
    let timed = in_context(runtime, within(config.connect_timeout, connecting));
    let (pubsub, commands, replicated, server) = timed
        .await
        .map_err(|err| LockError::redis(context(), err))?;
    Ok(Connected {
        pubsub,
        commands,
        replicated,
        server,
    })
}

/// What the server a client connected to can run, by the version it reported at connect
/// (`redis_version` of `INFO server`; Valkey reports 7.2.4 there, so it counts as Redis 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerFeatures {
    /// The server's `(major, minor)` version; `None` when `INFO` did not say (a managed service
    /// may refuse it), which counts as Redis 7: the scripts are written for it.
    pub(crate) version: Option<(u32, u32)>,
}

impl ServerFeatures {
    /// Whether the server reads `#!lua` shebangs and script flags (Redis 7.0 and newer): older
    /// servers cannot compile a script that starts with one.
    pub(crate) fn script_flags(self) -> bool {
        self.version.is_none_or(|(major, _)| major >= 7)
    }

    /// Whether the server has Redis Functions (`FUNCTION LOAD`, `FCALL`; Redis 7.0 and newer,
    /// and Valkey): the scripts then go out as `FCALL` (see `core/lua.rs`).
    pub(crate) fn functions(self) -> bool {
        self.version.is_none_or(|(major, _)| major >= 7)
    }

    /// The version for messages, such as `6.2` (`unknown` when the server did not say).
    pub(crate) fn describe(self) -> String {
        self.version.map_or_else(
            || "unknown".to_owned(),
            |(major, minor)| format!("{major}.{minor}"),
        )
    }
}

/// Where a deployment's nodes are, before connecting: known, or to be asked of the Sentinels.
enum Targets<'a> {
    Nodes(Vec<redis::Client>),
    /// Boxed: redis-rs's Sentinel client is large.
    Sentinels(&'a str, Box<redis::sentinel::SentinelClient>),
}

/// Opens one command connection to the deployment.
async fn command_connection(config: &Config, nodes: &Nodes) -> redis::RedisResult<Commands> {
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
            let open = Open::Sentinel(Arc::clone(primary), manager_config);
            Commands::connect(open, &name).await
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
            let open = Open::Cluster(Box::new(cluster), cluster_config, Box::new(asked));
            Commands::connect(open, &name).await
        }
        (_, Nodes::Fixed(nodes)) => {
            let node = nodes.first().cloned().ok_or_else(no_node)?;
            let open = Open::Single(Box::new(node), manager_config);
            Commands::connect(open, &name).await
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
