//! The command connection, replaced when it stops answering.
//!
//! redis-rs's `ConnectionManager` reconnects when the connection fails (reset, closed, refused),
//! but not when it merely stops answering: a response timeout leaves the same socket in place.
//! A peer that vanished without a `FIN` or `RST` (a crashed host, a silent partition, a NAT that
//! forgot the flow) would then time out every command until the kernel gives up on the socket,
//! which takes many minutes. So a command that times out here retires the connection it used;
//! the next command opens a fresh one. Redisson's `pingConnectionInterval` serves the same end.
//!
//! On a Redis Cluster the connection is redis-rs's `ClusterConnection`, which routes every script
//! to the node owning its keys' slot and manages its per-node connections itself. It is built
//! to send each request once (`retries(0)`): left to itself, redis-rs resends a request whose
//! connection dropped or timed out after it was written, which may run it twice, and it sleeps
//! over a second between its resends. Every failure comes back to the script path, which knows
//! which requests are safe to resend (see `core/script_path.rs`). redis-rs still acts on what a
//! failure says about the cluster: it reads the slot map again after `MOVED` (and holds the
//! requests sent meanwhile until it has it), and reconnects a node whose connection dropped.
//! It does not learn anything when a node stops answering: a master whose host vanished (or
//! froze) would keep getting requests even once its replica took over. So a request that times
//! out on a cluster retires the whole cluster connection too; the replacement asks the nodes for
//! the slot map on its first request, and finds the new master.
//!
//! A slot being migrated answers `ASK` for the keys that already left: the request is then sent
//! to the node named, on a connection of its own, after `ASKING` ([`Commands::asking`]).
//!
//! Behind Sentinels the connection goes to the primary they name, and a failure that says it no
//! longer reaches the primary (no answer, refused, reset, or `READONLY`) marks it stale rather
//! than replacing it at once: the next request asks the Sentinels where the primary is now and
//! connects there (see `transport/sentinel`). A failover someone else learned of (the hub, the
//! `+switch-master` listener) moves the connection at its next request.
//!
//! Connections are opened, and replaced, inside the background runtime's context (the script
//! path polls every request there), so their drivers live as long as the client.
//!
//! Every connection carries the client's name (`CLIENT SETNAME`, see `naming.rs`): each request
//! goes through [`Connection`], which sends the name along with the first request on a new or
//! possibly reconnected connection.

use std::{
    future::Future,
    sync::{Arc, RwLock},
};

use tokio::sync::Mutex;

use futures_util::future::{BoxFuture, join};
use redis::{
    Cmd, ConnectionAddr, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
};

use super::{naming::Naming, sentinel::Primary};

/// The multiplexed command connection shared by every task of a client.
pub(crate) struct Commands {
    /// How to open a replacement.
    open: Open,
    /// The client's name, as its connections carry it.
    name: Arc<str>,
    current: RwLock<Current>,
    /// Taken to replace a stale connection behind Sentinels, so one request does it and the
    /// others wait for it.
    following: Mutex<()>,
}

/// How the command connection is opened: at first, and each time it is replaced.
pub(crate) enum Open {
    /// To the one Redis at this client's address (boxed: a client is large, and the other
    /// variant small).
    Single(Box<redis::Client>, ConnectionManagerConfig),
    /// To wherever the Sentinels say the primary is.
    Sentinel(Arc<Primary>, ConnectionManagerConfig),
    /// To the cluster, through its seed nodes (boxed: a client is large); and to a node that
    /// answered `ASK`, with the first seed's settings.
    Cluster(Box<ClusterClient>, ClusterConfig, Box<Asked>),
}

/// How a connection to a node named by `ASK` is opened: with a seed node's settings
/// (credentials, TLS), and the reconnection settings of a single node's connection.
pub(crate) struct Asked {
    pub(crate) seed: redis::Client,
    pub(crate) config: ConnectionManagerConfig,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    connection: Connection,
    /// The primary's epoch this connection goes to (behind Sentinels; 0 otherwise).
    epoch: u64,
    /// A request found that this connection no longer reaches the primary (behind Sentinels).
    stale: bool,
}

/// A connection to one Redis or to a Redis Cluster; cheap to clone, requests are pipelined.
/// Every request names the connection first if it may not carry the client's name yet.
#[derive(Clone)]
pub(crate) struct Connection {
    inner: Inner,
    naming: Arc<Naming>,
}

/// The redis-rs connection under a [`Connection`].
#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// To the node a cluster named in an `ASK` redirect: every command goes out right after an
    /// `ASKING` of its own, in one write, so no other request on it can take the flag.
    Asking(ConnectionManager),
}

impl ConnectionLike for Inner {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            Self::Asking(connection) => Box::pin(async move {
                let mut asking = redis::pipe();
                asking.cmd("ASKING").add_command(cmd.clone());
                let mut replies = connection.req_packed_commands(&asking, 1, 1).await?;
                replies.pop().ok_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Client, "no reply after ASKING"))
                })
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Asking(connection) => Box::pin(async move {
                // The same commands after `ASKING`, a transaction's `MULTI` and `EXEC` spelled
                // out so that `ASKING` comes before them: every reply one place further.
                let mut asking = redis::pipe();
                asking.cmd("ASKING");
                if pipeline.is_transaction() {
                    asking.cmd("MULTI");
                }
                for command in pipeline.cmd_iter() {
                    asking.add_command(command.clone());
                }
                if pipeline.is_transaction() {
                    asking.cmd("EXEC");
                }
                connection
                    .req_packed_commands(&asking, offset + 1, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) | Self::Asking(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.send(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let naming = self.naming_along();
        let request = self.inner.req_packed_commands(pipeline, offset, count);
        Box::pin(along(naming, request))
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// The naming state of a connection, and the `CLIENT SETNAME` to send with this request, if
/// it is the one to send it.
type NamingAlong = (Arc<Naming>, Option<BoxFuture<'static, ()>>);

/// `request`, with `CLIENT SETNAME` sent beside it if `naming` says so (both go out at once on
/// the multiplexed connection: no extra round trip); its outcome is told to the naming state.
async fn along<T>(
    (naming, setname): NamingAlong,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let outcome = match setname {
        Some(setname) => join(setname, request).await.1,
        None => request.await,
    };
    naming.observe(&outcome);
    outcome
}

impl Connection {
    fn new(inner: Inner, name: &str) -> Self {
        Self {
            inner,
            naming: Naming::new(name),
        }
    }

    /// This connection's naming state, and the `CLIENT SETNAME` the next request sends with it,
    /// if it is the first of its epoch (see `naming.rs`).
    fn naming_along(&self) -> NamingAlong {
        let naming = Arc::clone(&self.naming);
        let setname = naming.claim().then(|| -> BoxFuture<'static, ()> {
            Box::pin(Arc::clone(&naming).name(self.inner.clone()))
        });
        (naming, setname)
    }

    /// Runs `command` and decodes its reply, as `command.query_async(connection)` does through
    /// [`ConnectionLike`], but without boxing the request once more on its way down: every
    /// script call goes out here.
    pub(crate) async fn query<T: FromRedisValue>(
        &mut self,
        command: &Cmd,
    ) -> redis::RedisResult<T> {
        let reply = self.send(command).await?;
        Ok(redis::from_redis_value(reply.extract_error()?)?)
    }

    /// `command` on the connection, with `CLIENT SETNAME` beside it if it is the first of its
    /// epoch (see [`along`]): what both [`query`](Self::query) and the [`ConnectionLike`]
    /// impl send.
    fn send<'a>(
        &'a mut self,
        command: &'a Cmd,
    ) -> impl Future<Output = redis::RedisResult<Value>> + 'a {
        along(self.naming_along(), self.inner.req_packed_command(command))
    }

    /// Runs `command` on the primary serving `slot`, for commands that name no key and must
    /// reach a given node of a cluster (a `SCAN` walks one node's keys). On one Redis, or
    /// without a slot, it runs where any command runs.
    pub(crate) async fn query_on<T: FromRedisValue>(
        &mut self,
        command: &Cmd,
        slot: Option<u16>,
    ) -> redis::RedisResult<T> {
        match (&mut self.inner, slot) {
            (Inner::Cluster(connection), Some(slot)) => {
                let primary = Route::new(slot, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(primary));
                let value = connection.route_command(command.clone(), routing).await;
                self.naming.observe(&value);
                Ok(T::from_redis_value(value?)?)
            }
            _ => command.query_async(self).await,
        }
    }
}

/// One connection handed out, remembering which one, so a failure retires only that one.
pub(crate) struct Leased {
    /// The generation of the shared connection; `None` for a connection opened for one request
    /// (to a node that answered `ASK`), which nothing else uses.
    generation: Option<u64>,
    pub(crate) connection: Connection,
}

impl Commands {
    /// Connects as `open` says: to one Redis, to the primary the Sentinels named last, or to a
    /// Redis Cluster, failing if it (or every seed node) cannot be reached. Its connections are
    /// named `name` (a `connection_name`).
    pub(crate) async fn connect(open: Open, name: &str) -> redis::RedisResult<Self> {
        let (inner, epoch) = match &open {
            Open::Single(client, config) => {
                let connection = client
                    .get_connection_manager_with_config(config.clone())
                    .await?;
                (Inner::Single(connection), 0)
            }
            Open::Sentinel(primary, config) => {
                let located = primary.current();
                let connection = located
                    .node
                    .get_connection_manager_with_config(config.clone())
                    .await?;
                (Inner::Single(connection), located.epoch)
            }
            Open::Cluster(client, config, _) => {
                let connection = client
                    .get_async_connection_with_config(config.clone())
                    .await?;
                (Inner::Cluster(connection), 0)
            }
        };
        Ok(Self {
            open,
            name: Arc::from(name),
            current: RwLock::new(Current {
                generation: 0,
                connection: Connection::new(inner, name),
                epoch,
                stale: false,
            }),
            following: Mutex::new(()),
        })
    }

    fn read(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current connection (a cheap clone; requests on it are pipelined).
    pub(crate) fn lease(&self) -> Leased {
        Leased::from(self.read())
    }

    /// The connection to send a request on: the current one, or behind Sentinels, if it is stale
    /// or the primary moved since it was opened, a new one to where the primary is now (asking
    /// the Sentinels first if it is stale).
    ///
    /// # Errors
    ///
    /// The Sentinels' error when they cannot say where the primary is (transient: a failover is
    /// under way, or they are unreachable).
    pub(crate) async fn ready(&self) -> redis::RedisResult<Leased> {
        let current = self.read();
        match &self.open {
            Open::Sentinel(primary, config)
                if current.stale || current.epoch != primary.epoch() =>
            {
                // Boxed as a trait object: the lookup's future type is deep (it would overflow
                // the compiler's checks of every caller's future), and only a failover comes here.
                let follow: BoxFuture<'_, _> = Box::pin(self.follow(primary, config));
                follow.await
            }
            _ => Ok(Leased::from(current)),
        }
    }

    /// A connection, for one request, to the cluster node at `host:port` that answered `ASK`
    /// for a slot being migrated: each command on it goes after an `ASKING`. It connects on
    /// its first request.
    ///
    /// # Errors
    ///
    /// When this is not a cluster's connection, or the address cannot be used.
    pub(crate) fn asking(&self, host: &str, port: u16) -> redis::RedisResult<Leased> {
        let Open::Cluster(_, _, asked) = &self.open else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "ASK redirect outside a Redis Cluster",
            )));
        };
        let node = node_client(&asked.seed, host, port, None)?;
        let connection = ConnectionManager::new_lazy_with_config(node, asked.config.clone())?;
        Ok(Leased {
            generation: None,
            connection: Connection::new(Inner::Asking(connection), &self.name),
        })
    }

    /// Replaces the connection with one to where the primary is now; one request at a time, the
    /// others take its replacement.
    async fn follow(
        &self,
        primary: &Primary,
        config: &ConnectionManagerConfig,
    ) -> redis::RedisResult<Leased> {
        let seen = primary.lookups();
        let _turn = self.following.lock().await;
        let current = self.read();
        if current.stale {
            primary.resolve_after(seen).await?;
        } else if current.epoch == primary.epoch() {
            return Ok(Leased::from(current));
        }
        let located = primary.current();
        let connection = ConnectionManager::new_lazy_with_config(located.node, config.clone())?;
        tracing::debug!(
            master = primary.master(),
            "command connection follows the primary"
        );
        let mut current = self.write();
        current.replace(Inner::Single(connection), &self.name, located.epoch);
        Ok(Leased::from(current.clone()))
    }

    /// Tells how a request on `leased` ended. A timeout retires that connection (if no other
    /// request retired it already); the replacement connects on its first request (on a
    /// cluster, it asks for the slot map first). Behind Sentinels, any failure that says the
    /// connection no longer reaches the primary marks it stale, and the next request finds the
    /// primary again ([`ready`](Self::ready)).
    pub(crate) fn report(&self, leased: &Leased, err: &redis::RedisError) {
        let open = &self.open;
        let retire = match open {
            Open::Single(..) | Open::Cluster(..) => err.is_timeout(),
            Open::Sentinel(..) => leaves_primary(err),
        };
        if !retire {
            return;
        }
        let mut current = self.write();
        if leased.generation != Some(current.generation) {
            return;
        }
        match open {
            Open::Cluster(client, config, _) => {
                let connection = client.get_pending_async_connection_with_config(config.clone());
                tracing::warn!(error = %err, "a cluster node stopped answering; reconnecting to learn the slot map");
                current.replace(Inner::Cluster(connection), &self.name, 0);
            }
            Open::Sentinel(..) => {
                tracing::warn!(error = %err, "command connection may not reach the primary; finding it again");
                current.stale = true;
            }
            Open::Single(client, config) => {
                match ConnectionManager::new_lazy_with_config((**client).clone(), config.clone()) {
                    Ok(connection) => {
                        tracing::warn!(error = %err, "command connection stopped answering; replacing it");
                        current.replace(Inner::Single(connection), &self.name, 0);
                    }
                    Err(replace_err) => {
                        tracing::warn!(error = %replace_err, "could not replace the command connection");
                    }
                }
            }
        }
    }
}

impl Current {
    /// Retires this connection for `inner`, a new one to where the primary's `epoch` is (0 but
    /// behind Sentinels), named `name`: requests on the retired one report to it no more.
    fn replace(&mut self, inner: Inner, name: &str, epoch: u64) {
        *self = Self {
            generation: self.generation + 1,
            connection: Connection::new(inner, name),
            epoch,
            stale: false,
        };
    }
}

impl From<Current> for Leased {
    fn from(current: Current) -> Self {
        Self {
            generation: Some(current.generation),
            connection: current.connection,
        }
    }
}

/// A client of the node at `host:port`, with `seed`'s settings (credentials, TLS), speaking
/// `protocol` if given, else the seed's: for connections to one node of a cluster.
///
/// # Errors
///
/// When the settings cannot be used for that address.
pub(crate) fn node_client(
    seed: &redis::Client,
    host: &str,
    port: u16,
    protocol: Option<redis::ProtocolVersion>,
) -> RedisResult<redis::Client> {
    let info = seed.get_connection_info().clone();
    let addr = match info.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    let mut settings = info.redis_settings().clone();
    if let Some(protocol) = protocol {
        settings = settings.set_protocol(protocol);
    }
    redis::Client::open(info.set_addr(addr).set_redis_settings(settings))
}

/// Whether `err` says that a connection behind Sentinels no longer reaches the primary: no
/// answer, the connection refused, reset or closed, or a write refused by a replica
/// (`READONLY`: the old primary, demoted, still accepts connections).
fn leaves_primary(err: &redis::RedisError) -> bool {
    err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || err.kind() == redis::ServerErrorKind::ReadOnly.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demoted_or_unreachable_primary_is_left() {
        let io = |kind: std::io::ErrorKind| redis::RedisError::from(std::io::Error::from(kind));
        for err in [
            io(std::io::ErrorKind::TimedOut),
            io(std::io::ErrorKind::ConnectionRefused),
            io(std::io::ErrorKind::ConnectionReset),
            io(std::io::ErrorKind::UnexpectedEof),
            redis::RedisError::from((
                redis::ServerErrorKind::ReadOnly.into(),
                "You can't write against a read only replica.",
            )),
        ] {
            assert!(leaves_primary(&err), "{err}");
        }
        for err in [
            redis::RedisError::from((redis::ServerErrorKind::NoScript.into(), "NOSCRIPT")),
            redis::RedisError::from((redis::ServerErrorKind::ResponseError.into(), "WRONGTYPE")),
        ] {
            assert!(!leaves_primary(&err), "{err}");
        }
    }
}
