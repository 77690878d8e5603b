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
//! to the node owning its keys' slot and manages its per-node connections itself.
//!
//! Connections are opened, and replaced, inside the background runtime's context (the script
//! path polls every request there), so their drivers live as long as the client.

use std::sync::RwLock;

use redis::{
    Cmd, FromRedisValue, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
};

/// The multiplexed command connection shared by every task of a client.
pub(crate) struct Commands {
    /// How to open a replacement; `None` on a cluster, whose connection replaces its own.
    single: Option<(redis::Client, ConnectionManagerConfig)>,
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    connection: Connection,
}

/// A connection to one Redis or to a Redis Cluster; cheap to clone, requests are pipelined.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Connection {
    /// Runs `command` on the primary serving `slot`, for commands that name no key and must
    /// reach a given node of a cluster (a `SCAN` walks one node's keys). On one Redis, or
    /// without a slot, it runs where any command runs.
    pub(crate) async fn query_on<T: FromRedisValue>(
        &mut self,
        command: &Cmd,
        slot: Option<u16>,
    ) -> redis::RedisResult<T> {
        match (self, slot) {
            (Self::Cluster(connection), Some(slot)) => {
                let primary = Route::new(slot, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(primary));
                let value = connection.route_command(command.clone(), routing).await?;
                Ok(T::from_redis_value(value)?)
            }
            (connection, _) => command.query_async(connection).await,
        }
    }
}

/// One connection handed out, remembering which one, so a failure retires only that one.
pub(crate) struct Leased {
    generation: u64,
    pub(crate) connection: Connection,
}

impl Commands {
    /// Connects to one Redis, failing if it cannot be reached.
    pub(crate) async fn connect(
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> redis::RedisResult<Self> {
        let connection = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        Ok(Self::with(
            Connection::Single(connection),
            Some((client, config)),
        ))
    }

    /// Connects to a Redis Cluster, failing if no seed node can be reached.
    pub(crate) async fn connect_cluster(
        client: redis::cluster::ClusterClient,
    ) -> redis::RedisResult<Self> {
        let connection = client.get_async_connection().await?;
        Ok(Self::with(Connection::Cluster(connection), None))
    }

    fn with(
        connection: Connection,
        single: Option<(redis::Client, ConnectionManagerConfig)>,
    ) -> Self {
        Self {
            single,
            current: RwLock::new(Current {
                generation: 0,
                connection,
            }),
        }
    }

    /// The current connection (a cheap clone; requests on it are pipelined).
    pub(crate) fn lease(&self) -> Leased {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Leased {
            generation: current.generation,
            connection: current.connection,
        }
    }

    /// Tells how a request on `leased` ended. A timeout retires that connection (if no other
    /// request retired it already); the replacement connects on its first request.
    pub(crate) fn report(&self, leased: &Leased, err: &redis::RedisError) {
        let Some((client, config)) = &self.single else {
            return;
        };
        if !err.is_timeout() {
            return;
        }
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.generation != leased.generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(client.clone(), config.clone()) {
            Ok(connection) => {
                tracing::debug!(error = %err, "command connection stopped answering; replacing it");
                *current = Current {
                    generation: current.generation + 1,
                    connection: Connection::Single(connection),
                };
            }
            Err(replace_err) => {
                tracing::debug!(error = %replace_err, "could not replace the command connection");
            }
        }
    }
}
