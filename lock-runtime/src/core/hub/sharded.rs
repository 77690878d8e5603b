//! The sharded transport (Redis Cluster, Redis 7): each channel is subscribed with `SSUBSCRIBE`
//! on the primary serving its slot, and the scripts publish with `SPUBLISH`, so a release's
//! message stays inside the lock's shard instead of being broadcast to every node.
//!
//! # Connections
//!
//! The listener owns one RESP3 connection per primary it subscribes on (redis-rs's multiplexed
//! connection, opened the first time a channel of that primary has waiters), named like every
//! connection of the client. Their push messages (`smessage`, and the `ssubscribe` and
//! `sunsubscribe` confirmations) come to the listener on one queue, each tagged with the id of
//! the connection it came from. Where a channel goes is read from `CLUSTER SLOTS` (asked of a
//! connected primary, or of a seed node), and each channel is subscribed with a command of its
//! own: one `SSUBSCRIBE` naming channels of two slots is refused (`CROSSSLOT`).
//!
//! redis-rs's own cluster pub/sub is not used: after a reconnection it resubscribes every shard
//! channel of a node in one command (refused when they hash to different slots), and it only
//! passes on a `sunsubscribe` that the server sends when a slot moves away.
//!
//! # When the cluster changes
//!
//! - **A primary fails or stops answering** (its connection closes, or a `PING` gets no answer
//!   within the response timeout): the connection is dropped, and every channel subscribed on it
//!   is unconfirmed and waits to be placed again. The listener reads the slot map again and
//!   subscribes each channel on the node serving its slot, retrying with backoff while the
//!   replica is being promoted (until then the map still names the failed primary).
//! - **A slot moves** (resharding, or a failover that left the old primary running as a
//!   replica): Redis unsubscribes the slot's shard channels itself and says so with a
//!   `sunsubscribe` push that this listener did not ask for. Its own `SUNSUBSCRIBE`s are counted
//!   per connection and channel, so any other `sunsubscribe` means the channel moved: it is
//!   placed again on the slot's new owner. `SSUBSCRIBE` answered `MOVED` means the same.
//!
//! Each channel placed again is confirmed again, which wakes all of its waiters: a release
//! published meanwhile went unseen. Until then waiters sleep at most the holder's TTL, as always.
//!
//! # Replies out of step
//!
//! Redis may send that unrequested `sunsubscribe` while a command of ours waits for its reply;
//! redis-rs then hands the push to that command as its reply, and the real reply to the next
//! one. So every reply is checked: `SSUBSCRIBE` and `SUNSUBSCRIBE` must be answered by the
//! confirmation naming their channel, `PING` by `PONG`. Anything else drops the connection, and
//! its channels are placed again on a fresh one.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Weak},
    time::Duration,
};

use redis::{
    AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, RedisResult, Value,
    aio::{AsyncPushSender, MultiplexedConnection, SendError},
};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Channel, MAX_RECONNECT_DELAY, MIN_RECONNECT_DELAY, Shared, Subscribe, Timeouts, is_refusal,
    timers,
};
use crate::{
    core::slots::{self, Address, SlotRange},
    transport::{connection::node_client, deadline::within},
};

/// A push message, and the id of the connection it came on.
type Push = (u64, PushInfo);

/// Forwards a connection's pushes to the listener, tagged with the connection's id.
struct Tagged {
    id: u64,
    pushes: mpsc::UnboundedSender<Push>,
}

impl AsyncPushSender for Tagged {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        self.pushes.send((self.id, info)).map_err(|_| SendError)
    }
}

/// A connection to one primary.
struct Shard {
    id: u64,
    connection: MultiplexedConnection,
    /// The `SUNSUBSCRIBE`s sent on it whose confirmation has not come yet, by channel.
    leaving: HashMap<String, usize>,
}

/// What became of one channel's subscription.
enum Placed {
    /// Subscribed and confirmed.
    Done,
    /// Redis refused it (no channel rights); its waiters fall back on their timers.
    Refused,
    /// Not now (the node is unreachable, or the slot map is out of date): try again later.
    Later,
}

/// The listener's state: its connections, the slot map, and where each channel is.
struct Listener {
    shared: Weak<Shared>,
    seeds: Vec<redis::Client>,
    name: String,
    timeouts: Timeouts,
    slots: Vec<SlotRange>,
    /// The slot map must be read again before the next channel is placed.
    stale: bool,
    shards: HashMap<Address, Shard>,
    /// The node each subscribed channel is subscribed on.
    placed: HashMap<String, (Address, Arc<Channel>)>,
    /// Channels with waiters that are subscribed nowhere yet.
    unplaced: Vec<Arc<Channel>>,
    /// When to try placing them again, after a failure.
    retry: Option<Instant>,
    delay: Duration,
    next_id: u64,
    pushes: mpsc::UnboundedSender<Push>,
}

/// The listener task: places each channel joined on the primary serving its slot, delivers
/// messages, pings every connection, unsubscribes channels that lingered, and places again the
/// channels of a failed connection or a moved slot.
pub(super) async fn listen(
    shared: Weak<Shared>,
    seeds: Vec<redis::Client>,
    name: String,
    mut commands: mpsc::UnboundedReceiver<Subscribe>,
    timeouts: Timeouts,
) {
    let (pushes, mut incoming) = mpsc::unbounded_channel();
    let mut listener = Listener {
        shared,
        seeds,
        name,
        timeouts,
        slots: Vec::new(),
        stale: true,
        shards: HashMap::new(),
        placed: HashMap::new(),
        unplaced: Vec::new(),
        retry: None,
        delay: MIN_RECONNECT_DELAY,
        next_id: 0,
        pushes,
    };
    let (mut ping, mut sweep) = timers(timeouts.ping_interval);
    loop {
        let retry = listener.retry;
        tokio::select! {
            command = commands.recv() => {
                let Some(Subscribe(channel)) = command else {
                    return;
                };
                listener.unplaced.push(channel);
                listener.place().await;
            }
            Some((id, push)) = incoming.recv() => listener.on_push(id, push),
            _ = sweep.tick() => listener.sweep().await,
            _ = ping.tick() => listener.ping().await,
            () = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {
                listener.place().await;
            }
        }
        if listener.shared.strong_count() == 0 {
            return;
        }
    }
}

impl Listener {
    /// Subscribes every unplaced channel that still has waiters where its slot is served; what
    /// cannot be placed now is tried again after a backoff.
    async fn place(&mut self) {
        let Some(state) = self.shared.upgrade() else {
            return;
        };
        self.unplaced.retain(|channel| state.is_current(channel));
        drop(state);
        if self.unplaced.is_empty() {
            self.retry = None;
            return;
        }
        if self.stale {
            match self.refresh().await {
                Ok(()) => self.stale = false,
                Err(err) => {
                    tracing::debug!(error = %err, "reading the cluster's slot map failed");
                    self.back_off();
                    return;
                }
            }
        }
        let mut unreachable = HashSet::new();
        for channel in std::mem::take(&mut self.unplaced) {
            if let Placed::Later = self.subscribe(&channel, &mut unreachable).await {
                self.unplaced.push(channel);
            }
        }
        if self.unplaced.is_empty() {
            self.retry = None;
            self.delay = MIN_RECONNECT_DELAY;
        } else {
            self.back_off();
        }
    }

    fn back_off(&mut self) {
        tracing::debug!(channels = self.unplaced.len(), delay = ?self.delay, "placing shard channels later");
        self.retry = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(MAX_RECONNECT_DELAY);
    }

    /// Subscribes `channel` on the primary serving its slot, unless that node is among
    /// `unreachable` (it failed earlier in this pass).
    async fn subscribe(
        &mut self,
        channel: &Arc<Channel>,
        unreachable: &mut HashSet<Address>,
    ) -> Placed {
        let slot = slots::key_slot(channel.name.as_bytes());
        let Some(address) = slots::owner(&self.slots, slot).cloned() else {
            self.stale = true;
            return Placed::Later;
        };
        if unreachable.contains(&address) {
            return Placed::Later;
        }
        let mut connection = match self.connection(&address).await {
            Ok(connection) => connection,
            Err(err) => {
                tracing::debug!(error = %err, node = ?address, "cannot reach a primary to subscribe");
                unreachable.insert(address);
                self.stale = true;
                return Placed::Later;
            }
        };
        let command = redis::cmd("SSUBSCRIBE").arg(&channel.name).clone();
        let reply = within(
            self.timeouts.response,
            command.query_async::<Value>(&mut connection),
        )
        .await;
        match reply {
            Ok(reply) if confirms(&reply, &PushKind::SSubscribe, &channel.name) => {
                self.placed
                    .insert(channel.name.clone(), (address, Arc::clone(channel)));
                channel.confirm();
                Placed::Done
            }
            Ok(reply) => {
                self.lose(
                    &address,
                    &format!("SSUBSCRIBE answered out of step: {reply:?}"),
                );
                Placed::Later
            }
            Err(err) if is_refusal(&err) => {
                if let Some(state) = self.shared.upgrade() {
                    state.refused(&[channel.name.as_str()], &err);
                }
                Placed::Refused
            }
            Err(err) if matches!(err.kind(), redis::ErrorKind::Server(_)) => {
                // `MOVED`, `CLUSTERDOWN`, `TRYAGAIN`: the connection is fine, the map is not.
                tracing::debug!(error = %err, "SSUBSCRIBE not served there; reading the slot map again");
                self.stale = true;
                Placed::Later
            }
            Err(err) => {
                unreachable.insert(address.clone());
                self.lose(&address, &err.to_string());
                Placed::Later
            }
        }
    }

    /// The connection to `address`, opened (and named) if there is none.
    async fn connection(&mut self, address: &Address) -> RedisResult<MultiplexedConnection> {
        if let Some(shard) = self.shards.get(address) {
            return Ok(shard.connection.clone());
        }
        let seed = self.seeds.first().ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis Cluster seed node",
            ))
        })?;
        let node = node_client(seed, &address.0, address.1, Some(ProtocolVersion::RESP3))?;
        self.next_id += 1;
        let id = self.next_id;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(None)
            .set_push_sender(Tagged {
                id,
                pushes: self.pushes.clone(),
            });
        let mut connection = within(
            self.timeouts.connect,
            node.get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let setname = redis::cmd("CLIENT").arg("SETNAME").arg(&self.name).clone();
        match within(
            self.timeouts.response,
            setname.query_async::<()>(&mut connection),
        )
        .await
        {
            Err(err) if !matches!(err.kind(), redis::ErrorKind::Server(_)) => return Err(err),
            // Best effort: a server that refuses names serves the connection the same.
            _ => {}
        }
        self.shards.insert(
            address.clone(),
            Shard {
                id,
                connection: connection.clone(),
                leaving: HashMap::new(),
            },
        );
        Ok(connection)
    }

    /// Reads the slot map (`CLUSTER SLOTS`) from a connected primary, else from a seed node.
    async fn refresh(&mut self) -> RedisResult<()> {
        let command = redis::cmd("CLUSTER").arg("SLOTS").clone();
        let mut failure = None;
        let connected: Vec<MultiplexedConnection> = self
            .shards
            .values()
            .map(|shard| shard.connection.clone())
            .collect();
        for mut connection in connected {
            match within(self.timeouts.response, command.query_async(&mut connection)).await {
                Ok(slots) => {
                    self.slots = slots;
                    return Ok(());
                }
                Err(err) => failure = Some(err),
            }
        }
        for seed in &self.seeds {
            let asked = async {
                let mut connection = within(
                    self.timeouts.connect,
                    seed.get_multiplexed_async_connection(),
                )
                .await?;
                within(self.timeouts.response, command.query_async(&mut connection)).await
            };
            match asked.await {
                Ok(slots) => {
                    self.slots = slots;
                    return Ok(());
                }
                Err(err) => failure = Some(err),
            }
        }
        Err(failure.unwrap_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis Cluster node to read the slot map from",
            ))
        }))
    }

    /// Drops the connection to `address`; its channels wait to be placed again, now.
    fn lose(&mut self, address: &Address, reason: &str) {
        if self.shards.remove(address).is_none() {
            return;
        }
        tracing::warn!(node = ?address, %reason, "shard pub/sub connection lost; placing its channels again");
        let lost: Vec<String> = self
            .placed
            .iter()
            .filter(|(_, (at, _))| at == address)
            .map(|(name, _)| name.clone())
            .collect();
        for name in lost {
            if let Some((_, channel)) = self.placed.remove(&name) {
                self.unplace(channel);
            }
        }
        self.stale = true;
        self.retry = Some(Instant::now());
    }

    fn unplace(&mut self, channel: Arc<Channel>) {
        channel.unconfirm();
        self.unplaced.push(channel);
    }

    /// Handles a push from connection `id`: a message, a confirmation, or the connection's end.
    fn on_push(&mut self, id: u64, push: PushInfo) {
        let Some(address) = self
            .shards
            .iter()
            .find(|(_, shard)| shard.id == id)
            .map(|(address, _)| address.clone())
        else {
            // From a connection dropped since.
            return;
        };
        match push.kind {
            PushKind::SMessage => {
                if let [Value::BulkString(channel), Value::BulkString(payload), ..] =
                    push.data.as_slice()
                    && let Some(state) = self.shared.upgrade()
                {
                    state.deliver(&String::from_utf8_lossy(channel), payload);
                }
            }
            PushKind::SUnsubscribe => {
                let Some(Value::BulkString(channel)) = push.data.first() else {
                    return;
                };
                let channel = String::from_utf8_lossy(channel).into_owned();
                self.unsubscribed(&address, channel);
            }
            PushKind::Disconnection => self.lose(&address, "the connection closed"),
            _ => {}
        }
    }

    /// `channel` was unsubscribed on the connection to `address`: by our own `SUNSUBSCRIBE`, or
    /// by Redis because its slot moved away, in which case it is placed again.
    fn unsubscribed(&mut self, address: &Address, channel: String) {
        if let Some(shard) = self.shards.get_mut(address)
            && let Some(count) = shard.leaving.get_mut(&channel)
        {
            *count -= 1;
            if *count == 0 {
                shard.leaving.remove(&channel);
            }
            return;
        }
        if self
            .placed
            .get(&channel)
            .is_some_and(|(at, _)| at == address)
            && let Some((_, moved)) = self.placed.remove(&channel)
        {
            tracing::debug!(%channel, node = ?address, "Redis unsubscribed a shard channel (its slot moved); placing it again");
            self.unplace(moved);
            self.stale = true;
            self.retry = Some(Instant::now());
        }
    }

    /// Unsubscribes the channels that lingered without waiters long enough.
    async fn sweep(&mut self) {
        let Some(state) = self.shared.upgrade() else {
            return;
        };
        let expired = state.expire_lingering(Instant::now());
        drop(state);
        for name in expired {
            self.unplaced.retain(|channel| channel.name != name);
            let Some((address, _)) = self.placed.remove(&name) else {
                continue;
            };
            let Some(shard) = self.shards.get_mut(&address) else {
                continue;
            };
            *shard.leaving.entry(name.clone()).or_default() += 1;
            let mut connection = shard.connection.clone();
            let command = redis::cmd("SUNSUBSCRIBE").arg(&name).clone();
            let reply = within(
                self.timeouts.response,
                command.query_async::<Value>(&mut connection),
            )
            .await;
            match reply {
                Ok(reply) if confirms(&reply, &PushKind::SUnsubscribe, &name) => {}
                Ok(reply) => {
                    self.lose(
                        &address,
                        &format!("SUNSUBSCRIBE answered out of step: {reply:?}"),
                    );
                }
                Err(err) => self.lose(&address, &err.to_string()),
            }
        }
    }

    /// Pings every connection; one that does not answer `PONG` in time is dropped.
    async fn ping(&mut self) {
        let connected: Vec<(Address, MultiplexedConnection)> = self
            .shards
            .iter()
            .map(|(address, shard)| (address.clone(), shard.connection.clone()))
            .collect();
        for (address, mut connection) in connected {
            let ping = redis::cmd("PING");
            match within(
                self.timeouts.response,
                ping.query_async::<Value>(&mut connection),
            )
            .await
            {
                Ok(Value::SimpleString(pong)) if pong == "PONG" => {}
                Ok(reply) => self.lose(&address, &format!("PING answered out of step: {reply:?}")),
                Err(err) => self.lose(&address, &format!("ping failed: {err}")),
            }
        }
    }
}

/// Whether `reply` is the confirmation `kind` (`ssubscribe`, `sunsubscribe`) of `channel`.
fn confirms(reply: &Value, kind: &PushKind, channel: &str) -> bool {
    matches!(
        reply,
        Value::Push { kind: got, data }
            if got == kind
                && matches!(data.first(), Some(Value::BulkString(name)) if name == channel.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, channel: &str) -> Value {
        Value::Push {
            kind,
            data: vec![
                Value::BulkString(channel.as_bytes().to_vec()),
                Value::Int(1),
            ],
        }
    }

    #[test]
    fn only_the_confirmation_naming_the_channel_confirms() {
        let ssubscribe = push(PushKind::SSubscribe, "{lock:a}:unlock");
        assert!(confirms(
            &ssubscribe,
            &PushKind::SSubscribe,
            "{lock:a}:unlock"
        ));
        assert!(!confirms(
            &ssubscribe,
            &PushKind::SSubscribe,
            "{lock:b}:unlock"
        ));
        assert!(!confirms(
            &ssubscribe,
            &PushKind::SUnsubscribe,
            "{lock:a}:unlock"
        ));
        let stray = push(PushKind::SUnsubscribe, "{lock:b}:unlock");
        assert!(!confirms(&stray, &PushKind::SSubscribe, "{lock:a}:unlock"));
        assert!(!confirms(
            &Value::Okay,
            &PushKind::SSubscribe,
            "{lock:a}:unlock"
        ));
    }
}
