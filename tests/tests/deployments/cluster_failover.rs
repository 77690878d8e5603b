//! A Redis Cluster with a replica per master, changing under a held and waited-on lock: the
//! master owning the lock is killed or frozen and its replica takes over, or the lock's slot
//! migrates to another master. Neither is an error: the holder's renewals and release and every
//! waiter ride it out within their deadlines, no two tasks ever hold the lock at once, and the
//! waiters' shard subscription moves to the slot's new owner, where each release wakes the next
//! waiter at once. Before Redis 7 (no sharded pub/sub) the waiters' classic subscription stays
//! on a node that answers, or moves to one, and the cluster broadcasts each release to it.
//!
//! Redis replication is asynchronous: a lock written on a master that dies before sending it to
//! its replica is gone, and another task may take it. These tests wait until the replica has the
//! lock and the queued waiters ([`RedisCluster::await_replicated`]) before they kill the master,
//! so they tolerate no loss: a lease lost here is a bug.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::{LockClient, LockError, LockGuard};
use lock_tests::{
    RedisCluster, RedisServer, key_slot,
    locks::{await_cluster_subscriber, await_queued, command_calls, lock_key, unlock_channel},
    server_version, unique_name,
};
use tokio::task::JoinHandle;

/// How many tasks wait while the cluster changes.
const WAITERS: i64 = 5;

/// The holder's watchdog lease, renewed every third of it. It covers what a frozen master costs
/// a renewal: the failover (about two seconds), plus one response timeout (the default 3 s) to
/// notice the silence, plus the next renewal's turn. (Shorter than the default 30 s so that the
/// holder renews during the test; the clients are otherwise the default builder's.)
const WATCHDOG: Duration = Duration::from_secs(9);

/// How long the holder keeps the lock once the cluster changed: long enough for a renewal on the
/// new owner.
const HOLD_AFTER: Duration = Duration::from_millis(3500);

/// How long the waiters may take, all together, once the holder released: each is woken by the
/// previous one's release. Far less than the holder's TTL, which would wake them otherwise.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// How long a waiter waits at most: far more than a failover takes.
const WAIT: Duration = Duration::from_secs(30);

/// A lock held in watchdog mode by one task while [`WAITERS`] tasks of the same client wait for
/// it, each of which, once served, checks that nobody else holds it and releases it.
struct Contended {
    holder: LockGuard,
    waiters: Vec<JoinHandle<Result<u64, LockError>>>,
    overlaps: Arc<AtomicUsize>,
}

impl Contended {
    /// Takes the lock `name` and starts the waiters; returns once they all sleep in its queue and
    /// the replica of its master has the lock and the queue.
    async fn start(cluster: &RedisCluster, client: &LockClient, name: &str) -> Self {
        let holder = client.lock(name).acquire().await.expect("free");
        let inside = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let waiters = (0..WAITERS)
            .map(|_| {
                let lock = client.lock(name);
                let (inside, overlaps) = (Arc::clone(&inside), Arc::clone(&overlaps));
                tokio::spawn(async move {
                    let guard = lock.try_acquire(WAIT, None).await?;
                    if inside.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    let token = guard.fencing_token();
                    guard.unlock().await?;
                    Ok(token)
                })
            })
            .collect();
        let owner = cluster.node_for_key(lock_key(name));
        await_queued(owner, name, WAITERS).await;
        cluster.await_replicated(owner);
        Self {
            holder,
            waiters,
            overlaps,
        }
    }

    /// Once the waiters' subscription moved to `owner`, the slot's new owner (before Redis 7, to
    /// one of the `answering` nodes), holds the lock a while longer (the watchdog renews there),
    /// releases it, and checks that every waiter was served after it, one at a time, each with a
    /// new token, woken by the releases, published on `owner`.
    async fn finish(self, answering: &[&RedisServer], owner: &RedisServer, name: &str) {
        await_cluster_subscriber(answering, owner, &unlock_channel(name)).await;
        tokio::time::sleep(HOLD_AFTER).await;
        assert!(
            !self.holder.is_lease_lost(),
            "the holder's renewals ride out the change"
        );
        let first = self.holder.fencing_token();
        self.holder
            .unlock()
            .await
            .expect("the holder's release rides out the change");
        let released = Instant::now();
        let mut tokens = Vec::new();
        for waiter in self.waiters {
            let served = tokio::time::timeout(WAIT, waiter)
                .await
                .expect("every waiter finishes within its wait")
                .expect("join");
            tokens.push(served.expect("every waiter is served"));
        }
        assert!(
            released.elapsed() < SERVED_WITHIN,
            "the waiters took {:?}: not woken by the releases",
            released.elapsed()
        );
        assert_eq!(
            self.overlaps.load(Ordering::SeqCst),
            0,
            "two holders at once"
        );
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), 5, "each waiter got its own token: {tokens:?}");
        assert!(tokens[0] > first, "waiters' tokens follow the holder's");
        let publish = if server_version().redis_7_or_newer() {
            "spublish"
        } else {
            "publish"
        };
        assert!(
            command_calls(owner, &[publish]) > 0,
            "the releases used {publish} on the slot's new owner"
        );
    }
}

async fn cluster_client(cluster: &RedisCluster) -> LockClient {
    LockClient::builder()
        .cluster(cluster.urls())
        .watchdog_timeout(WATCHDOG)
        .build()
        .await
        .expect("connect to the cluster")
}

/// Whether the node that served the lock's slot before a change still answers after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FormerOwner {
    /// It still serves other slots (a slot migration).
    Answers,
    /// It was killed or frozen (a failover).
    Fails,
}

/// Starts a cluster with a replica per master and a held, waited-on lock; runs `change` on the
/// cluster, given the node serving the lock's slot and the slot, off the test's runtime (the kit
/// blocks for seconds); `change` returns the port of the slot's owner afterwards. Then checks
/// that the holder and every waiter rode the change out ([`Contended::finish`]).
async fn ride_out(
    prefix: &str,
    former: FormerOwner,
    change: impl FnOnce(&RedisCluster, &RedisServer, u16) -> u16 + Send + 'static,
) {
    let cluster = Arc::new(RedisCluster::with_replicas(3, 1));
    let client = cluster_client(&cluster).await;
    // A lock on the first seed: before Redis 7 the client's classic subscription is there too
    // (on the first seed that answers), so the change hits the subscription as well.
    let first_seed = cluster.nodes()[0].port();
    let name = (0..)
        .map(|i| unique_name(&format!("{prefix}-{i}")))
        .find(|name| cluster.node_for_key(lock_key(name)).port() == first_seed)
        .expect("some name lands on every node");
    let key = lock_key(&name);
    let contended = Contended::start(&cluster, &client, &name).await;

    let old = cluster.node_for_key(&key).port();
    let new = tokio::task::spawn_blocking({
        let cluster = Arc::clone(&cluster);
        let slot = key_slot(key.as_bytes());
        move || change(&cluster, cluster.node(old), slot)
    })
    .await
    .expect("join");
    assert_ne!(new, old);
    let new = cluster.node(new);
    let answering: Vec<&RedisServer> = cluster
        .nodes()
        .iter()
        .filter(|node| node.port() != old || former == FormerOwner::Answers)
        .collect();
    contended.finish(&answering, new, &name).await;
    assert_eq!(
        new.cmd::<i64>(&["EXISTS", &key]),
        0,
        "released on the slot's new owner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_is_ridden_out_by_the_holder_and_every_waiter() {
    ride_out("failover", FormerOwner::Fails, |cluster, owner, _| {
        cluster.kill_primary(owner).port()
    })
    .await;
}

/// The master freezes (its connections stay open and silent, as when its host vanishes) and its
/// replica takes over: requests sent to it get no answer, and only the cluster's new slot map
/// leads them to the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_is_failed_over_and_ridden_out_by_the_holder_and_every_waiter() {
    ride_out("frozen", FormerOwner::Fails, |cluster, owner, _| {
        cluster.freeze_primary(owner).port()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_is_ridden_out_by_the_holder_and_every_waiter() {
    ride_out("migration", FormerOwner::Answers, |cluster, owner, slot| {
        let target = cluster
            .primaries()
            .into_iter()
            .find(|primary| primary.port() != owner.port())
            .expect("three primaries");
        cluster.migrate_slot(slot, target);
        target.port()
    })
    .await;
}

/// A master killed under a held lock, with the default settings but a 3 s watchdog (renewed
/// every second): the holder's release, started 4.5 s after the kill, and every waiter of
/// another client are done within the node timeout and a few seconds. The holder may lose its
/// lease (its renewals cannot reach the slot while its replica is promoted, about as long as the
/// lease): then a waiter takes the lock once it expired, and the release says `NotHeld`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_delays_the_default_clients_by_seconds_only() {
    /// `cluster-node-timeout` of the kit's cluster with replicas, plus a few seconds.
    const DONE_WITHIN: Duration = Duration::from_secs(1 + 5);
    let cluster = RedisCluster::with_replicas(3, 1);
    let holder_client = LockClient::builder()
        .cluster(cluster.urls())
        .watchdog_timeout(Duration::from_secs(3))
        .build()
        .await
        .expect("connect to the cluster");
    let waiters_client = LockClient::builder()
        .cluster(cluster.urls())
        .build()
        .await
        .expect("connect to the cluster");
    let name = unique_name("killed");
    let holder = holder_client.lock(&name).acquire().await.expect("free");
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let lock = waiters_client.lock(&name);
            tokio::spawn(async move {
                let guard = lock.try_acquire(Duration::from_secs(40), None).await?;
                let token = guard.fencing_token();
                guard.unlock().await?;
                Ok::<_, LockError>(token)
            })
        })
        .collect();
    let owner = cluster.node_for_key(lock_key(&name));
    await_queued(owner, &name, 3).await;
    cluster.await_replicated(owner);

    owner.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let first = holder.fencing_token();
    match holder.unlock().await {
        Ok(()) | Err(LockError::NotHeld { .. }) => {}
        Err(err) => panic!("the release failed: {err}"),
    }
    assert!(
        killed.elapsed() < DONE_WITHIN,
        "the release ended {:?} after the kill",
        killed.elapsed()
    );
    let mut tokens = Vec::new();
    for waiter in waiters {
        tokens.push(waiter.await.expect("join").expect("every waiter is served"));
    }
    assert!(
        killed.elapsed() < DONE_WITHIN,
        "the waiters were served {:?} after the kill",
        killed.elapsed()
    );
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "each waiter got its own token: {tokens:?}");
    assert!(tokens[0] > first, "waiters' tokens follow the holder's");
    assert_eq!(
        cluster
            .node_for_key(lock_key(&name))
            .cmd::<i64>(&["EXISTS", &lock_key(&name)]),
        0,
        "released on the slot's new owner"
    );
}
