//! Where a client's pub/sub goes: fixed nodes or a Sentinel-managed primary (classic
//! `SUBSCRIBE`), or each primary of a Redis Cluster (sharded `SSUBSCRIBE`).

use std::{future::Future, sync::Arc, time::Duration};

use redis::aio::{PubSubSink, PubSubStream};

use crate::transport::{deadline::within, naming, sentinel::Primary};

/// Where and how a client's pub/sub reaches Redis (the subscription hub's connections).
pub(crate) enum PubSub {
    /// Classic pub/sub (`SUBSCRIBE`, `PUBLISH`) on one connection.
    Classic(Nodes),
    /// Sharded pub/sub (`SSUBSCRIBE`, `SPUBLISH`, Redis 7) on the primary serving each channel's
    /// slot, in the Redis Cluster reached through these seed nodes.
    Sharded(Vec<redis::Client>),
}

/// Where classic pub/sub connects: fixed nodes, or the primary the Sentinels name.
pub(crate) enum Nodes {
    /// The first of these nodes that answers, in this order.
    Fixed(Vec<redis::Client>),
    /// The primary the Sentinels name, followed through failovers.
    Sentinel(Arc<Primary>),
}

impl Nodes {
    /// Opens a pub/sub connection named `name`, and says which [epoch](Self::epoch) it goes
    /// to. Behind Sentinels, it asks them where the primary is first if `ask`.
    pub(crate) async fn connect(
        &self,
        name: &str,
        connect_timeout: Duration,
        ask: bool,
    ) -> redis::RedisResult<(PubSubSink, PubSubStream, u64)> {
        let nodes = match self {
            Self::Fixed(nodes) => nodes,
            Self::Sentinel(primary) => {
                if ask {
                    primary.resolve_soon(connect_timeout).await;
                }
                let located = primary.current();
                let pubsub = within(connect_timeout, naming::pubsub(&located.node, name)).await?;
                let (sink, stream) = pubsub.split();
                return Ok((sink, stream, located.epoch));
            }
        };
        let mut failure = None;
        for node in nodes {
            match within(connect_timeout, naming::pubsub(node, name)).await {
                Ok(pubsub) => {
                    let (sink, stream) = pubsub.split();
                    return Ok((sink, stream, 0));
                }
                Err(err) => failure = Some(err),
            }
        }
        Err(failure.unwrap_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis node to subscribe on",
            ))
        }))
    }

    /// How many times the Sentinel-managed primary moved; always 0 for fixed nodes.
    pub(crate) fn epoch(&self) -> u64 {
        match self {
            Self::Fixed(_) => 0,
            Self::Sentinel(primary) => primary.epoch(),
        }
    }

    /// Completes when the primary is found at another address than at `epoch`; never for fixed
    /// nodes.
    pub(crate) fn moved_from(&self, epoch: u64) -> impl Future<Output = ()> + use<> {
        let moves = match self {
            Self::Fixed(_) => None,
            Self::Sentinel(primary) => Some(primary.moves()),
        };
        async move {
            match moves {
                Some(mut moves) => {
                    if moves
                        .wait_for(|located| located.epoch != epoch)
                        .await
                        .is_err()
                    {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        }
    }
}
