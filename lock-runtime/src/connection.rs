//! The command connection, replaced when it stops answering.
//!
//! redis-rs's `ConnectionManager` reconnects when the connection fails (reset, closed, refused),
//! but not when it merely stops answering: a response timeout leaves the same socket in place.
//! A peer that vanished without a `FIN` or `RST` (a crashed host, a silent partition, a NAT that
//! forgot the flow) would then time out every command until the kernel gives up on the socket,
//! which takes many minutes. So a command that times out here retires the connection it used;
//! the next command opens a fresh one. Redisson's `pingConnectionInterval` serves the same end.

use std::sync::RwLock;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The multiplexed command connection shared by every task of a client.
pub(crate) struct Commands {
    client: redis::Client,
    config: ConnectionManagerConfig,
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    connection: ConnectionManager,
}

/// One connection handed out, remembering which one, so a failure retires only that one.
pub(crate) struct Leased {
    generation: u64,
    pub(crate) connection: ConnectionManager,
}

impl Commands {
    /// Connects, failing if Redis cannot be reached.
    pub(crate) async fn connect(
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> redis::RedisResult<Self> {
        let connection = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        Ok(Self {
            client,
            config,
            current: RwLock::new(Current {
                generation: 0,
                connection,
            }),
        })
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
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(connection) => {
                tracing::debug!(error = %err, "command connection stopped answering; replacing it");
                *current = Current {
                    generation: current.generation + 1,
                    connection,
                };
            }
            Err(replace_err) => {
                tracing::debug!(error = %replace_err, "could not replace the command connection");
            }
        }
    }
}
