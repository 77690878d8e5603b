//! The classic transport: one pub/sub connection (RESP2, `SUBSCRIBE`) for every channel of
//! the client, to one Redis, to the primary the Sentinels name, or to an old cluster (Redis
//! before 7, where classic messages reach every node).
//!
//! One listener task owns the connection, runs the queued subscriptions one at a time, in order,
//! delivers messages, pings while idle, and on failure reconnects, resubscribes every channel
//! that still has waiters and wakes all of them (see the hub's module docs).

use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Channel, MAX_RECONNECT_DELAY, MIN_RECONNECT_DELAY, Shared, Subscribe, Timeouts, is_refusal,
    timers,
};
use crate::transport::{deadline::within, nodes::Nodes};

/// The listener task: owns the pub/sub connection, runs the queued commands, delivers messages,
/// and reconnects, resubscribes and wakes everyone when the connection fails.
pub(super) async fn listen(
    shared: Weak<Shared>,
    nodes: Nodes,
    name: String,
    mut commands: mpsc::UnboundedReceiver<Subscribe>,
    timeouts: Timeouts,
) {
    let mut delay = MIN_RECONNECT_DELAY;
    // Whether to ask the Sentinels where the primary is before connecting: after a failure, not
    // at the start nor after following a move.
    let mut ask = false;
    loop {
        // No pub/sub connection while no task waits. Whatever a queued command asks for is in the
        // map, which the (re)subscription below reads.
        let idle = shared.upgrade().is_none_or(|state| !state.has_waiters());
        if idle && commands.recv().await.is_none() {
            return;
        }
        let (mut sink, mut stream, epoch) = match nodes.connect(&name, timeouts.connect, ask).await
        {
            Ok(connection) => connection,
            Err(err) => {
                ask = true;
                tracing::debug!(error = %err, ?delay, "pub/sub connection failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                continue;
            }
        };
        let Some(state) = shared.upgrade() else {
            return;
        };
        let wanted = state.wanted();
        if !wanted.is_empty()
            && let Err(err) = subscribe(&mut sink, &state, &wanted, timeouts).await
        {
            ask = true;
            tracing::debug!(error = %err, ?delay, "resubscribing failed; reconnecting");
            drop(state);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
            continue;
        }
        drop(state);
        // Reset only once a connection proved usable, so a server that accepts connections and
        // then fails them cannot make the listener reconnect in a tight loop.
        delay = MIN_RECONNECT_DELAY;

        let moved = nodes.moved_from(epoch);
        let failure = serve(
            &shared,
            (&mut sink, &mut stream),
            &mut commands,
            timeouts,
            moved,
        )
        .await;
        let Some(reason) = failure else {
            return;
        };
        ask = nodes.epoch() == epoch;
        tracing::warn!(%reason, "pub/sub connection lost; reconnecting (waiters wake at their timers meanwhile)");
        if let Some(state) = shared.upgrade() {
            for channel in state.wanted() {
                channel.unconfirm();
            }
        }
    }
}

/// Serves one connection until it fails or `moved` completes (`Some(reason)`), or the hub is
/// gone (`None`).
async fn serve(
    shared: &Weak<Shared>,
    (sink, stream): (&mut PubSubSink, &mut PubSubStream),
    commands: &mut mpsc::UnboundedReceiver<Subscribe>,
    timeouts: Timeouts,
    moved: impl Future<Output = ()>,
) -> Option<String> {
    tokio::pin!(moved);
    let (mut ping, mut sweep) = timers(timeouts.ping_interval);
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Subscribe(channel) = command?;
                let state = shared.upgrade()?;
                if let Err(err) = subscribe(sink, &state, &[channel], timeouts).await {
                    return Some(err.to_string());
                }
            }
            _ = sweep.tick() => {
                let expired = shared.upgrade()?.expire_lingering(Instant::now());
                if !expired.is_empty()
                    && let Err(err) = within(timeouts.response, sink.unsubscribe(&expired)).await
                {
                    return Some(err.to_string());
                }
            }
            message = stream.next() => {
                let Some(message) = message else {
                    return Some("the server closed the connection".to_owned());
                };
                shared.upgrade()?.deliver(message.get_channel_name(), message.get_payload_bytes());
            }
            _ = ping.tick() => {
                if let Err(err) = within(timeouts.response, sink.ping::<redis::Value>()).await {
                    return Some(format!("ping failed: {err}"));
                }
            }
            () = &mut moved => {
                return Some("the primary moved (Sentinel failover)".to_owned());
            }
        }
    }
}

/// Subscribes `channels` and confirms them, which wakes their waiters; then their own channels
/// (see the hub's `Channel::own`), after them: a release finds nobody on an own channel until
/// then, and names its waiter on the resource's channel instead, so a waiter counts on the
/// resource's channel alone. A refusal (a Redis user without the channel rights) is not a
/// failure of the connection: refused `channels` are reported to `state` and stay unconfirmed
/// (their waiters fall back on their timers); refused own channels leave the releases naming
/// waiters on the resources' channels.
async fn subscribe(
    sink: &mut PubSubSink,
    state: &Shared,
    channels: &[Arc<Channel>],
    timeouts: Timeouts,
) -> redis::RedisResult<()> {
    let names: Vec<&str> = channels
        .iter()
        .map(|channel| channel.name.as_str())
        .collect();
    match within(timeouts.response, sink.subscribe(&names)).await {
        Ok(()) => {}
        Err(err) if is_refusal(&err) => {
            state.refused(&names, &err);
            return Ok(());
        }
        Err(err) => return Err(err),
    }
    tracing::debug!(
        channels = channels.len(),
        "pub/sub (re)subscribed; waking every waiter"
    );
    for channel in channels {
        channel.confirm();
    }
    let own: Vec<&str> = channels.iter().filter_map(|c| c.own.as_deref()).collect();
    if own.is_empty() {
        return Ok(());
    }
    match within(timeouts.response, sink.subscribe(&own)).await {
        Err(err) if is_refusal(&err) => {
            tracing::debug!(error = %err, "own channels refused: named on the locks' channels");
            Ok(())
        }
        done => done,
    }
}
