//! The `+switch-master` listener: one pub/sub connection to a Sentinel, so a failover is
//! followed the moment the Sentinels announce it, even while the old primary still answers.

use std::{future::Future, sync::Weak, time::Duration};

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};

use crate::transport::{deadline::within, naming};

/// The channel on which a Sentinel announces a new primary:
/// `<master> <old ip> <old port> <new ip> <new port>`.
const SWITCH_MASTER: &str = "+switch-master";

const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(10);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The time limits of the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// For connecting to a Sentinel, and for each lookup of the primary.
    pub(crate) connect: Duration,
    /// For a `PING` to be answered.
    pub(crate) response: Duration,
    /// How often the connection is probed, so a half-open one is replaced.
    pub(crate) ping_interval: Duration,
}

/// What the listener needs of the primary it follows (`Primary`, which starts it): a trait, so
/// that the listener and its owner do not import each other.
pub(super) trait Followed: Send + Sync + 'static {
    /// The name the Sentinels monitor the primary under.
    fn master(&self) -> &str;

    /// A client of a Sentinel that answers.
    fn sentinel(&self) -> impl Future<Output = redis::RedisResult<redis::Client>> + Send;

    /// Asks the Sentinels where the primary is now, for at most `within`.
    fn resolve_soon(&self, within: Duration) -> impl Future<Output = ()> + Send;
}

/// Listens to the first Sentinel that answers, and asks the Sentinels for the primary each
/// time one announces a switch of ours. Reconnects (to whichever Sentinel answers) when the
/// connection fails, and then asks once, since a switch may have been announced meanwhile.
/// Returns when the primary followed is gone.
pub(super) async fn listen<P: Followed>(primary: Weak<P>, name: String, limits: Limits) {
    let mut delay = MIN_RECONNECT_DELAY;
    let mut first = true;
    loop {
        let (mut sink, mut stream) = match subscribe(&primary, &name, limits).await {
            None => return,
            Some(Ok(connection)) => connection,
            Some(Err(err)) => {
                tracing::debug!(error = %err, ?delay, "Sentinel subscription failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                continue;
            }
        };
        delay = MIN_RECONNECT_DELAY;
        if !std::mem::take(&mut first) {
            let Some(state) = primary.upgrade() else {
                return;
            };
            state.resolve_soon(limits.connect).await;
        }
        let Some(reason) = serve(&primary, &mut sink, &mut stream, limits).await else {
            return;
        };
        tracing::debug!(%reason, "Sentinel subscription lost; resubscribing");
    }
}

/// Subscribes to [`SWITCH_MASTER`] on a Sentinel; `None` when the primary followed is gone.
async fn subscribe<P: Followed>(
    primary: &Weak<P>,
    name: &str,
    limits: Limits,
) -> Option<redis::RedisResult<(PubSubSink, PubSubStream)>> {
    let primary = primary.upgrade()?;
    let subscribing = async {
        let sentinel = primary.sentinel().await?;
        let (mut sink, stream) = naming::pubsub(&sentinel, name).await?.split();
        sink.subscribe(SWITCH_MASTER).await?;
        Ok((sink, stream))
    };
    Some(within(limits.connect, subscribing).await)
}

/// Serves one subscription until it fails (`Some(reason)`) or the primary followed is gone
/// (`None`).
async fn serve<P: Followed>(
    primary: &Weak<P>,
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    limits: Limits,
) -> Option<String> {
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Some("the Sentinel closed the connection".to_owned());
                };
                let state = primary.upgrade()?;
                if announces(message.get_payload_bytes(), state.master()) {
                    state.resolve_soon(limits.connect).await;
                }
            }
            _ = ping.tick() => {
                if let Err(err) = within(limits.response, sink.ping::<redis::Value>()).await {
                    return Some(format!("ping failed: {err}"));
                }
            }
        }
    }
}

/// Whether a `+switch-master` message is about `master`.
fn announces(payload: &[u8], master: &str) -> bool {
    payload.split(|byte| *byte == b' ').next() == Some(master.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_of_another_master_is_ignored() {
        assert!(announces(b"orders 10.0.0.1 6379 10.0.0.2 6379", "orders"));
        assert!(!announces(
            b"orders-eu 10.0.0.1 6379 10.0.0.2 6379",
            "orders"
        ));
        assert!(!announces(b"", "orders"));
    }
}
