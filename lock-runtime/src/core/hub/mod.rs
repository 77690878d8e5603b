//! The subscription hub: one subscription per lock channel per client, on one pub/sub
//! connection, or on a Redis Cluster on the primary serving each channel's slot.
//!
//! A task that cannot take a lock at once joins the lock's channel here and sleeps until an unlock
//! message, the holder's TTL, or its own deadline wakes it. The hub keeps, per channel, the count
//! of local waiters: the first to join makes the hub subscribe, however many tasks wait after it
//! (the part of Redisson's `PublishSubscribeService` / `RedissonLockEntry` that matters). When the
//! last one leaves, the channel lingers, still subscribed, for [`LINGER`]; a task that waits on it
//! again meanwhile joins without sending anything to Redis, and a channel left alone that long is
//! unsubscribed. Under light contention this saves a `SUBSCRIBE`, an `UNSUBSCRIBE` and a retry
//! per acquisition.
//!
//! # Transports
//!
//! This module keeps the bookkeeping (channels, waiters, wake-ups); a listener task per client
//! talks to Redis, in one of two ways ([`PubSub`]):
//!
//! - **classic** (`classic.rs`): one RESP2 connection, `SUBSCRIBE`, and the scripts `PUBLISH`.
//!   One Redis, a Sentinel-managed primary, or a Redis Cluster older than Redis 7 (where Redis
//!   broadcasts every message to every node);
//! - **sharded** (`sharded.rs`): on a Redis Cluster (Redis 7 or newer), each channel is
//!   subscribed with `SSUBSCRIBE` on the primary serving its slot, one RESP3 connection per
//!   primary, and the scripts `SPUBLISH`, so a release's message stays inside the lock's shard.
//!   Every key of a lock and its channel share the lock's hash tag, so the channel's slot is the
//!   lock's. A failed primary's channels, and those of a slot that moved (Redis says so with a
//!   `sunsubscribe`), are subscribed again where the slot is served now.
//!
//! The scripts take the publish command as an argument ([`Hub::publish`]).
//!
//! # Ordering
//!
//! Joining and leaving only update a map under a mutex (a new channel also queues its
//! subscription); one listener task owns the connections, runs the queued subscriptions one at a
//! time, in order, and is the only one to unsubscribe, after taking the lingering channel out of
//! the map. So subscribe and unsubscribe of one channel never race: a channel joined again after
//! it was taken out is a new entry whose subscription is queued behind the unsubscription. On a
//! cluster a channel is subscribed on one primary at a time: it is subscribed elsewhere only
//! once the old subscription is gone (its connection dropped, or Redis unsubscribed it).
//!
//! # Wake-ups
//!
//! A message on a channel says which local waiters to wake ([`Wake`]): `to:<id>` when Redis knows
//! whom a release hands the lock to and names that waiter (the locks' releases: the one task
//! registered under that id wakes, in whichever process it waits, and every other process
//! ignores the message; off a cluster the message goes to the waiter's client's own channel of
//! the resource, so no other process receives it, see [`Channel::own`]),
//! `to:<id> <grant>` when the release already gave it the resource (a lock handed over directly:
//! the grant, in the primitive's own words, reaches that waiter with its wake-up); `one` for one
//! local waiter; `all` when every waiter may proceed (a forced unlock, a read unlock, a latch at
//! zero); `n:<k>` when `k` units came free (a semaphore release). An unknown message wakes
//! everyone: always safe.
//! Tokio hands a notification to another waiter if the woken one is dropped before it runs, and
//! the wait engine passes it on if the woken task leaves without using it.
//! - A confirmed subscription wakes every waiter of that channel once: an unlock published between
//!   a waiter's failed attempt and its subscription would otherwise go unseen (Redisson issue 1763).
//! - When the connection drops, the listener reconnects, resubscribes every channel that still has
//!   waiters, and wakes all of them, because messages may have been lost meanwhile. On a cluster
//!   the same holds per primary, and for a channel whose slot moved.
//! - A waiter never sleeps longer than the holder's remaining TTL: a crashed holder publishes
//!   nothing. Pub/sub is at-most-once, and correctness never depends on a message arriving.
//!
//! The listener pings its connections, so a half-open (or frozen) one is noticed and replaced
//! rather than silently swallowing wake-ups.
//!
//! # Behind Sentinels
//!
//! The connection goes to the primary the Sentinels name
//! ([`Nodes::Sentinel`](crate::transport::nodes::Nodes::Sentinel)). A demoted
//! primary keeps its pub/sub connections and receives nothing the new primary publishes until
//! it replicates from it, so the listener does not wait for its connection to fail: when the
//! client finds the primary at a new address (see `transport/sentinel`), the listener drops its
//! connection and reconnects to the new primary, resubscribing and waking every waiter as after
//! any reconnection. After a failure of its own it asks the Sentinels where the primary is
//! before reconnecting.
//!
//! # When Redis refuses a subscription
//!
//! A Redis 7 ACL user may lack channel rights (`acl-pubsub-default resetchannels` makes that the
//! default for new users): `SUBSCRIBE` (or `SSUBSCRIBE`) is answered `NOPERM`. That is not a broken connection, so
//! the listener does not reconnect (which would only be refused again, in a storm); it logs one
//! warning, marks the channel refused, and its waiters fall back on their timers: each sleeps at
//! most the holder's remaining TTL. The scripts publish with `pcall`, so a refused `PUBLISH` (or
//! `SPUBLISH`) never fails a release.
//!
//! # Which runtime
//!
//! The listener runs on the library's background runtime (see `transport/background.rs`), so it
//! lives as long as the client, whatever runtime created it.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    sync::{Notify, futures::Notified, mpsc},
    time::Instant,
};
use tokio_util::task::AbortOnDropHandle;

use crate::transport::{
    background::Background,
    config::{Config, Deployment},
    failure::is_transient,
    nodes::PubSub,
    sync::lock_ignoring_poison,
};

mod classic;
mod sharded;

/// Which local waiters a message on a channel wakes. Published by the scripts (as
/// [`Wake::message`]) and decoded by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wake {
    /// One waiter: a lock was released.
    One,
    /// Every waiter.
    All,
    /// Up to this many waiters.
    Count(u32),
    /// The one waiter registered under `id` (see [`Subscription::name`]): a primitive that
    /// knows its next owner in Redis wakes exactly that task, in whichever process it waits.
    /// Every other process ignores the message. A `grant` tells the waiter what it was given
    /// (a lock handed over directly: the primitive's own words, see [`NamedWaiter::take_grant`]).
    Waiter { id: String, grant: Option<String> },
}

impl Wake {
    /// The message a script publishes for this wake-up.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::One => "one".to_owned(),
            Self::All => "all".to_owned(),
            Self::Count(n) => format!("n:{n}"),
            Self::Waiter { id, grant: None } => format!("to:{id}"),
            Self::Waiter {
                id,
                grant: Some(grant),
            } => format!("to:{id} {grant}"),
        }
    }

    /// Decodes a message; anything unknown wakes everyone, which is always safe.
    fn parse(payload: &[u8]) -> Self {
        let Ok(text) = std::str::from_utf8(payload) else {
            return Self::All;
        };
        match text {
            "one" => Self::One,
            "all" => Self::All,
            _ => {
                if let Some(named) = text.strip_prefix("to:") {
                    let (id, grant) = match named.split_once(' ') {
                        Some((id, grant)) => (id, Some(grant.to_owned())),
                        None => (named, None),
                    };
                    if !id.is_empty() {
                        return Self::Waiter {
                            id: id.to_owned(),
                            grant,
                        };
                    }
                }
                text.strip_prefix("n:")
                    .and_then(|count| count.parse().ok())
                    .map_or(Self::All, Self::Count)
            }
        }
    }
}

/// How long a channel stays subscribed after its last local waiter left.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// The command the scripts publish wake-ups with on one Redis (passed to them as an argument).
pub(crate) const PUBLISH: &str = "publish";

/// The command the scripts publish wake-ups with on a Redis Cluster with sharded pub/sub: the
/// message goes to the subscribers of the shard serving the channel's slot only.
const SPUBLISH: &str = "spublish";

/// The command the scripts publish wake-ups with on a Redis Cluster older than Redis 7: classic
/// `PUBLISH`, broadcast to every node. Spelt in capitals, which Redis reads alike, so that the
/// scripts can tell it from [`PUBLISH`]: there the hub subscribes no own channel (see
/// [`Channel::own`]; `PUBLISH` counts the receivers of the node it runs on only, so the scripts
/// could not tell whether the waiter's client listens on its own channel on another node), and
/// the scripts name every waiter on the resource's channel (`wake_by_name` in the family's
/// `common.lua`).
const BROADCAST: &str = "PUBLISH";

/// The first pause before reconnecting (or resubscribing) after a failure; it doubles with each
/// failure in a row, up to [`MAX_RECONNECT_DELAY`].
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(10);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The per-client hub; dropping it stops the listener and closes the pub/sub connections.
pub(crate) struct Hub {
    shared: Arc<Shared>,
    /// The command the scripts publish wake-ups with, passed to them as an argument:
    /// `publish`, or `spublish` where the hub subscribes with `SSUBSCRIBE`.
    publish: &'static str,
    _listener: AbortOnDropHandle<()>,
}

struct Shared {
    channels: Mutex<HashMap<String, Entry>>,
    /// What the client's own channel of a resource adds to the resource's channel:
    /// `:<client id>` (see [`Channel::own`]).
    own_suffix: String,
    commands: mpsc::UnboundedSender<Subscribe>,
    /// Set once Redis refused a subscription, so the warning is logged once per client.
    warned_refused: AtomicBool,
}

/// A channel of the map, with its local waiters.
struct Entry {
    channel: Arc<Channel>,
    waiters: usize,
    /// When the last waiter left; `None` while some task waits.
    idle_since: Option<Instant>,
}

/// One subscribed channel and the local tasks waiting on it.
struct Channel {
    name: String,
    /// This client's own channel of the resource, `<name>:<client id>`, subscribed after `name`
    /// when its waiters are woken by name, on one Redis or behind Sentinels (the scripts
    /// publish with [`PUBLISH`]): a release publishes a message naming a waiter there
    /// (`wake_by_name` in the family's `common.lua`), so only the waiter's process receives it,
    /// not every process waiting on `name`. Where nobody listens on it (not subscribed yet, or
    /// refused by the user's channel rights), the release names the waiter on `name`. Its
    /// messages are delivered as `name`'s. None on a cluster, where the scripts name every
    /// waiter on `name` ([`SPUBLISH`], [`BROADCAST`]).
    own: Option<String>,
    wake: Notify,
    confirmed: AtomicBool,
    /// The waiters that registered a name ([`Subscription::name`]), each with its wake-up. Empty
    /// for primitives that only wake by count.
    named: Mutex<HashMap<Arc<str>, Named>>,
    /// The grant of the last message naming a registered waiter, until it takes it: kept here
    /// rather than beside each waiter, as only a waiter handed something has one.
    grants: Mutex<HashMap<Arc<str>, String>>,
}

/// The wake-up of one named waiter, kept in its channel's map rather than in a `Notify` of its
/// own: a waiting task then costs the hub one map entry and no allocation of its own.
#[derive(Default)]
struct Named {
    /// Set by a message naming the waiter, until the waiter sees it.
    woken: bool,
    /// The task to wake: the one that last polled [`NamedWaiter::woken`] and found no wake-up.
    waker: Option<Waker>,
}

/// A channel whose first waiter just joined: subscribe to it.
struct Subscribe(Arc<Channel>);

/// A waiter's membership of one channel; leaving is dropping it.
pub(crate) struct Subscription {
    shared: Arc<Shared>,
    channel: Arc<Channel>,
}

/// The listener's timers: a ping of its connections every `ping_interval` (the first one
/// interval from now), and a sweep of the lingering channels twice per [`LINGER`]. A tick
/// missed while the listener was busy is delayed, not repeated.
fn timers(ping_interval: Duration) -> (tokio::time::Interval, tokio::time::Interval) {
    let mut ping = tokio::time::interval(ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    let mut sweep = tokio::time::interval(LINGER / 2);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    (ping, sweep)
}

/// The time limits of the hub's connections.
#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    response: Duration,
    ping_interval: Duration,
}

impl Hub {
    /// Starts the listener on `runtime` for the client `client_id`. It opens a pub/sub
    /// connection only when a task waits.
    pub(crate) fn start(
        runtime: &Background,
        pubsub: PubSub,
        config: &Config,
        client_id: &str,
    ) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            channels: Mutex::new(HashMap::new()),
            own_suffix: format!(":{client_id}"),
            commands,
            warned_refused: AtomicBool::new(false),
        });
        let name = config.connection_name();
        let state = Arc::downgrade(&shared);
        let (publish, listener) = match pubsub {
            PubSub::Classic(nodes) => {
                // On a Redis Cluster before Redis 7 the connection goes to the first seed that
                // answers: a frozen one is passed over as quickly as the per-shard connections
                // of a newer cluster pass over theirs.
                let (connect, publish) = match config.deployment {
                    Deployment::Cluster(_) => (config.cluster_node_connect_timeout(), BROADCAST),
                    _ => (config.connect_timeout, PUBLISH),
                };
                let timeouts = Timeouts {
                    connect,
                    response: config.response_timeout,
                    ping_interval: config.pubsub_ping_interval,
                };
                let listen = classic::listen(state, nodes, name, receiver, timeouts);
                (publish, runtime.handle().spawn(listen))
            }
            PubSub::Sharded(seeds) => {
                let timeouts = Timeouts {
                    connect: config.cluster_node_connect_timeout(),
                    response: config.response_timeout,
                    ping_interval: config.pubsub_ping_interval,
                };
                let listen = sharded::listen(state, seeds, name, receiver, timeouts);
                (SPUBLISH, runtime.handle().spawn(listen))
            }
        };
        Self {
            shared,
            publish,
            _listener: AbortOnDropHandle::new(listener),
        }
    }

    /// The command the scripts publish wake-ups with: `publish`, or `spublish` on a Redis
    /// Cluster with sharded pub/sub. Passed to every script that publishes.
    pub(crate) fn publish(&self) -> &'static str {
        self.publish
    }

    /// Joins the channel `channel` names only if other local tasks wait on it already and
    /// Redis confirmed the subscription: then joining sends nothing to Redis. The name is made
    /// only when some channel is subscribed: an uncontended acquisition makes none.
    pub(crate) fn join_if_confirmed(
        &self,
        channel: impl FnOnce() -> String,
    ) -> Option<Subscription> {
        let mut channels = lock_ignoring_poison(&self.shared.channels);
        if channels.is_empty() {
            return None;
        }
        let entry = channels.get_mut(&channel())?;
        if !entry.channel.confirmed.load(Ordering::Acquire) {
            return None;
        }
        entry.waiters += 1;
        entry.idle_since = None;
        Some(Subscription {
            shared: Arc::clone(&self.shared),
            channel: Arc::clone(&entry.channel),
        })
    }

    /// Joins `channel` as one more local waiter, subscribing if this is the first; `named`:
    /// the channel's waiters register names ([`Subscription::name`]), so the client's own
    /// channel of the resource is subscribed too (off a cluster, see [`Channel::own`]).
    pub(crate) fn join(&self, channel: &str, named: bool) -> Subscription {
        let mut channels = lock_ignoring_poison(&self.shared.channels);
        let entry = channels.entry(channel.to_owned()).or_insert_with(|| {
            let own = (named && self.publish == PUBLISH)
                .then(|| format!("{channel}{}", self.shared.own_suffix));
            let channel = Arc::new(Channel {
                name: channel.to_owned(),
                own,
                wake: Notify::new(),
                confirmed: AtomicBool::new(false),
                named: Mutex::new(HashMap::new()),
                grants: Mutex::new(HashMap::new()),
            });
            // The listener outlives every sender but the one in `Shared`, which we are using.
            let _ = self.shared.commands.send(Subscribe(Arc::clone(&channel)));
            Entry {
                channel,
                waiters: 0,
                idle_since: None,
            }
        });
        entry.waiters += 1;
        entry.idle_since = None;
        Subscription {
            shared: Arc::clone(&self.shared),
            channel: Arc::clone(&entry.channel),
        }
    }
}

impl Subscription {
    /// A future that completes at the next wake-up of this channel. Call
    /// [`Notified::enable`] on it *before* trying the lock, so a wake-up that arrives during the
    /// attempt is kept.
    pub(crate) fn woken(&self) -> Notified<'_> {
        self.channel.wake.notified()
    }

    /// Whether Redis has confirmed the subscription (on the current connection).
    pub(crate) fn is_confirmed(&self) -> bool {
        self.channel.confirmed.load(Ordering::Acquire)
    }

    /// Registers this waiter under `id`, so that a [`Wake::Waiter`] message naming it wakes this
    /// task alone, until the returned registration is dropped. The ids are the primitive's (it
    /// also registers them in Redis); they must be unique per channel.
    pub(crate) fn name(&self, id: &Arc<str>) -> NamedWaiter {
        let id = Arc::clone(id);
        lock_ignoring_poison(&self.channel.named).insert(Arc::clone(&id), Named::default());
        NamedWaiter {
            channel: Arc::clone(&self.channel),
            id,
        }
    }

    /// The wake-up this waiter just received, to pass on unless it is [used](Baton::used).
    pub(crate) fn baton(&self) -> Baton {
        Baton(Some(Arc::clone(&self.channel)))
    }
}

/// A waiter's registration under a name; see [`Subscription::name`].
pub(crate) struct NamedWaiter {
    channel: Arc<Channel>,
    id: Arc<str>,
}

impl NamedWaiter {
    /// Completes at a message naming this waiter, including one that arrived since the last
    /// call: a named wake-up is kept until it is awaited.
    pub(crate) fn woken(&self) -> NamedWoken<'_> {
        NamedWoken(self)
    }

    /// The grant carried by a message naming this waiter since the last call, if any.
    pub(crate) fn take_grant(&self) -> Option<String> {
        lock_ignoring_poison(&self.channel.grants).remove(&self.id)
    }
}

impl Drop for NamedWaiter {
    fn drop(&mut self) {
        lock_ignoring_poison(&self.channel.named).remove(&self.id);
        lock_ignoring_poison(&self.channel.grants).remove(&self.id);
    }
}

/// The future of [`NamedWaiter::woken`]: a pointer, where a `Notified` would be eight words in
/// the state of every waiting task.
pub(crate) struct NamedWoken<'a>(&'a NamedWaiter);

impl Future for NamedWoken<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let waiter = self.0;
        let mut named = lock_ignoring_poison(&waiter.channel.named);
        // Registered until the waiter is dropped; should another registration under the same id
        // have taken it out, the waiter registers again rather than sleep to its timer.
        let slot = named.entry(Arc::clone(&waiter.id)).or_default();
        if std::mem::take(&mut slot.woken) {
            slot.waker = None;
            return Poll::Ready(());
        }
        match &mut slot.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A wake-up a waiter received and has not used yet. Dropped unused (the waiter's try failed,
/// its caller gave up, its deadline passed), it wakes another local waiter of the channel, so
/// the others do not sleep to the holder's TTL. The default holds no wake-up: a waiter keeps
/// one in its state rather than an `Option` of one, 8 bytes less for every waiting task.
#[derive(Default)]
pub(crate) struct Baton(Option<Arc<Channel>>);

impl Baton {
    /// The wake-up led to a try that reached Redis: nothing to pass on.
    pub(crate) fn used(mut self) {
        self.0 = None;
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        if let Some(channel) = self.0.take() {
            channel.wake.notify_one();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = lock_ignoring_poison(&self.shared.channels);
        let Some(entry) = channels.get_mut(&self.channel.name) else {
            return;
        };
        if !Arc::ptr_eq(&entry.channel, &self.channel) {
            return;
        }
        entry.waiters -= 1;
        if entry.waiters == 0 {
            entry.idle_since = Some(Instant::now());
        }
    }
}

impl Shared {
    /// The channels some task waits on. Lingering channels are forgotten: this is asked when a
    /// new connection, subscribed to nothing, is set up.
    fn wanted(&self) -> Vec<Arc<Channel>> {
        let mut channels = lock_ignoring_poison(&self.channels);
        channels.retain(|_, entry| entry.waiters > 0);
        channels
            .values()
            .map(|entry| Arc::clone(&entry.channel))
            .collect()
    }

    /// Whether `channel` is still the map's entry for its name: a channel taken out of the map
    /// (unsubscribed after lingering) and joined again is a new entry.
    fn is_current(&self, channel: &Arc<Channel>) -> bool {
        lock_ignoring_poison(&self.channels)
            .get(&channel.name)
            .is_some_and(|entry| Arc::ptr_eq(&entry.channel, channel))
    }

    fn has_waiters(&self) -> bool {
        lock_ignoring_poison(&self.channels)
            .values()
            .any(|entry| entry.waiters > 0)
    }

    /// Takes out of the map the channels that have lingered long enough, to unsubscribe them:
    /// their names, and their own channels' (see [`Channel::own`]).
    fn expire_lingering(&self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        lock_ignoring_poison(&self.channels).retain(|name, entry| {
            let keep = entry
                .idle_since
                .is_none_or(|since| now.duration_since(since) < LINGER);
            if !keep {
                expired.push(name.clone());
                expired.extend(entry.channel.own.clone());
            }
            keep
        });
        expired
    }

    /// Wakes the waiters a message on `channel` names (see [`Wake`]); a message on a channel's
    /// own channel ([`Channel::own`]) is the channel's.
    fn deliver(&self, channel: &str, payload: &[u8]) {
        let channels = lock_ignoring_poison(&self.channels);
        let entry = channels.get(channel).or_else(|| {
            channel
                .strip_suffix(self.own_suffix.as_str())
                .and_then(|shared| channels.get(shared))
        });
        let Some(entry) = entry else {
            return;
        };
        let wake = &entry.channel.wake;
        match Wake::parse(payload) {
            Wake::One => wake.notify_one(),
            Wake::All => wake.notify_waiters(),
            Wake::Count(n) => (0..n.min(u32::try_from(entry.waiters).unwrap_or(u32::MAX)))
                .for_each(|_| wake.notify_one()),
            Wake::Waiter { id, grant } => {
                let mut named = lock_ignoring_poison(&entry.channel.named);
                let Some((id, _)) = named.get_key_value(id.as_str()) else {
                    return;
                };
                let id = Arc::clone(id);
                if let Some(grant) = grant {
                    lock_ignoring_poison(&entry.channel.grants).insert(Arc::clone(&id), grant);
                }
                // Kept until the waiter sees it, should it be trying right now.
                let waker = named.get_mut(&id).and_then(|slot| {
                    slot.woken = true;
                    slot.waker.take()
                });
                drop(named);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }

    /// Redis refused to subscribe to `channels` (no channel rights): their waiters fall back on
    /// their timers. Warns once per client.
    fn refused(&self, channels: &[&str], err: &redis::RedisError) {
        if !self.warned_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %err,
                "Redis refused to subscribe to a lock channel; waiters will wake at the holder's TTL instead of at its release. Grant the Redis user channel rights (`ACL SETUSER <user> &*`, or `&{{prefix}}*`)"
            );
        }
        tracing::debug!(?channels, "subscription refused");
    }
}

impl Channel {
    /// Redis confirmed the subscription: every waiter tries again, since a release published
    /// before it went unseen.
    fn confirm(&self) {
        self.confirmed.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    /// The subscription is gone (its connection failed, or its slot moved): until it is
    /// confirmed again, a new waiter does not count on it.
    fn unconfirm(&self) {
        self.confirmed.store(false, Ordering::Release);
    }
}

/// Whether Redis answered the command with a refusal (such as `NOPERM`) rather than the
/// connection failing or the server asking to try again later: reconnecting would not help.
fn is_refusal(err: &redis::RedisError) -> bool {
    matches!(err.kind(), redis::ErrorKind::Server(_)) && !is_transient(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_messages_round_trip_and_unknown_ones_wake_everyone() {
        for wake in [
            Wake::One,
            Wake::All,
            Wake::Count(3),
            Wake::Waiter {
                id: "client:w7".to_owned(),
                grant: None,
            },
            Wake::Waiter {
                id: "client:w7".to_owned(),
                grant: Some("17 1700000000000000".to_owned()),
            },
        ] {
            assert_eq!(Wake::parse(wake.message().as_bytes()), wake);
        }
        for unknown in [&b"unlock"[..], b"n:", b"n:-1", b"to:", b"to: 17 1", b"\xff"] {
            assert_eq!(Wake::parse(unknown), Wake::All);
        }
    }
}
