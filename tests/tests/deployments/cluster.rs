//! The lock on a real 3-master Redis Cluster: each lock lives on the node that owns its hash tag's
//! slot, waiters wait on sharded pub/sub on that node only, and exclusion and fencing hold.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use lock_runtime::{LockClient, LockError, LockGuard};
use lock_tests::{
    Capability, RedisCluster,
    locks::{
        await_cluster_subscriber, await_shard_subscribers, command_calls, last_token, lock_key,
        shard_subscribers, take_once, unlock_channel,
    },
    server_version, skip_without, unique_name,
};

async fn cluster_client(cluster: &RedisCluster) -> LockClient {
    LockClient::builder()
        .cluster(cluster.urls())
        .build()
        .await
        .expect("connect to the cluster")
}

/// Lock names whose keys land on every node of the cluster.
fn names_on_every_node(cluster: &RedisCluster) -> Vec<String> {
    let mut names = Vec::new();
    let mut ports_seen = Vec::new();
    let mut index = 0;
    while ports_seen.len() < cluster.nodes().len() {
        let name = unique_name(&format!("cluster-{index}"));
        let port = cluster.node_for_key(lock_key(&name)).port();
        if !ports_seen.contains(&port) {
            ports_seen.push(port);
            names.push(name);
        }
        index += 1;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lock_lives_on_the_node_owning_its_slot() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;

    for name in names_on_every_node(&cluster) {
        let guard = client.lock(&name).acquire().await.expect("acquire");
        let owner = cluster.node_for_key(lock_key(&name));
        let held: i64 = owner.cmd(&["EXISTS", &lock_key(&name)]);
        assert_eq!(held, 1, "lock {name} on the node of port {}", owner.port());
        guard.unlock().await.expect("unlock");
        let held: i64 = owner.cmd(&["EXISTS", &lock_key(&name)]);
        assert_eq!(held, 0, "lock {name} released");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_woken_by_a_release_on_every_node() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    for name in names_on_every_node(&cluster) {
        // A 30 s lease: only the release message can wake the waiter in time.
        let holder = client
            .lock(&name)
            .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(30)))
            .await
            .expect("acquire");
        let waiter = {
            let lock = client.lock(&name);
            tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let released = Instant::now();
        holder.unlock().await.expect("unlock");
        let guard = waiter.await.expect("join").expect("the waiter");
        assert!(
            released.elapsed() < Duration::from_secs(2),
            "woken after {:?}",
            released.elapsed()
        );
        guard.unlock().await.expect("unlock");
    }
}

/// A task waiting up to 10 s for the lock `name`; once it has it, it releases it and returns
/// when it took it.
fn spawn_waiter(client: &LockClient, name: &str) -> JoinHandle<Result<Instant, LockError>> {
    let lock = client.lock(name);
    tokio::spawn(async move {
        let guard = lock.try_acquire(Duration::from_secs(10), None).await?;
        let acquired = Instant::now();
        guard.unlock().await?;
        Ok(acquired)
    })
}

/// Every one of `waiters` got the lock within 2 s of `released`: woken by the release, not by
/// the holder's 30 s lease.
async fn assert_woken_by_the_release(
    released: Instant,
    waiters: Vec<JoinHandle<Result<Instant, LockError>>>,
) {
    for waiter in waiters {
        let acquired = waiter.await.expect("join").expect("the waiter");
        let after = acquired.saturating_duration_since(released);
        assert!(
            after < Duration::from_secs(2),
            "woken {after:?} after the release"
        );
    }
}

/// A lock held on a 3-master cluster, for the tests of how its waiters are woken.
struct Held {
    cluster: RedisCluster,
    client: LockClient,
    name: String,
    /// Its guard, with a 30 s lease: a waiter woken sooner was woken by the release.
    holder: LockGuard,
}

impl Held {
    /// Starts the cluster and takes the lock `<prefix>-…`.
    async fn new(prefix: &str) -> Self {
        let cluster = RedisCluster::start(3);
        let client = cluster_client(&cluster).await;
        let name = unique_name(prefix);
        let holder = client
            .lock(&name)
            .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(30)))
            .await
            .expect("acquire");
        Self {
            cluster,
            client,
            name,
            holder,
        }
    }
}

/// Waiting on a cluster uses a shard channel, subscribed with `SSUBSCRIBE` on the node owning
/// the lock's slot: no node has a classic subscription, no other node a shard one, and the
/// release's `SPUBLISH` wakes the waiter at once (the holder's lease is 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_subscribe_to_a_shard_channel_on_the_owning_node_only() {
    if skip_without(Capability::ShardedPubSub) {
        return;
    }
    let Held {
        cluster,
        client,
        name,
        holder,
    } = Held::new("sharded").await;
    let channel = unlock_channel(&name);
    let owner = cluster.node_for_key(lock_key(&name));
    let waiters: Vec<_> = (0..3).map(|_| spawn_waiter(&client, &name)).collect();
    await_shard_subscribers(owner, &channel, 1).await;
    for node in cluster.nodes() {
        let classic: Vec<String> = node.cmd(&["PUBSUB", "CHANNELS", "*"]);
        assert!(classic.is_empty(), "node {}: {classic:?}", node.port());
        let (_, numsub): (String, i64) = node.cmd(&["PUBSUB", "NUMSUB", &channel]);
        assert_eq!(numsub, 0, "no classic subscription on node {}", node.port());
        if node.port() != owner.port() {
            assert_eq!(shard_subscribers(node, &channel), 0, "node {}", node.port());
        }
    }

    let released = Instant::now();
    holder.unlock().await.expect("unlock");
    assert_woken_by_the_release(released, waiters).await;
    for node in cluster.nodes() {
        assert_eq!(command_calls(node, &["publish"]), 0, "node {}", node.port());
    }
    assert!(
        command_calls(owner, &["spublish"]) > 0,
        "the releases used SPUBLISH"
    );
    // The subscription lingers, then is dropped with SUNSUBSCRIBE.
    await_shard_subscribers(owner, &channel, 0).await;
}

/// On a cluster a waiting client subscribes the lock's channel only, not its own channel of the
/// lock as it does on one Redis: with sharded pub/sub the scripts name the waiter on the lock's
/// channel, and with classic pub/sub (before Redis 7) `PUBLISH` counts the receivers of its own
/// node only, so a script could not tell whether the waiter's client listens elsewhere. The
/// release still wakes the waiter at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_client_subscribes_no_own_channel_on_a_cluster() {
    let Held {
        cluster,
        client,
        name,
        holder,
    } = Held::new("no-own-channel").await;
    let channel = unlock_channel(&name);
    let owner = cluster.node_for_key(lock_key(&name));
    let waiters = vec![spawn_waiter(&client, &name)];
    let nodes: Vec<_> = cluster.nodes().iter().collect();
    await_cluster_subscriber(&nodes, owner, &channel).await;
    let sharded = server_version().redis_7_or_newer();
    for node in cluster.nodes() {
        let mut subscribed: Vec<String> = node.cmd(&["PUBSUB", "CHANNELS", "*"]);
        if sharded {
            subscribed.extend(node.cmd::<Vec<String>>(&["PUBSUB", "SHARDCHANNELS", "*"]));
        }
        assert!(
            subscribed.iter().all(|subscribed| *subscribed == channel),
            "node {}: {subscribed:?}",
            node.port()
        );
    }

    let released = Instant::now();
    holder.unlock().await.expect("unlock");
    assert_woken_by_the_release(released, waiters).await;
}

/// Locks in three slots on three nodes waited on at once: each channel is subscribed on its own
/// node, one `SSUBSCRIBE` each (one naming channels of two slots would be refused with
/// `CROSSSLOT`), and every waiter is woken by its release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_in_different_slots_are_waited_on_at_once() {
    if skip_without(Capability::ShardedPubSub) {
        return;
    }
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let names = names_on_every_node(&cluster);
    let mut holders = Vec::new();
    let mut waiters = Vec::new();
    for name in &names {
        let holder = client
            .lock(name)
            .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(30)))
            .await
            .expect("acquire");
        holders.push(holder);
        waiters.extend((0..2).map(|_| spawn_waiter(&client, name)));
    }
    for name in &names {
        let owner = cluster.node_for_key(lock_key(name));
        await_shard_subscribers(owner, &unlock_channel(name), 1).await;
        for node in cluster.nodes() {
            let shard_channels: Vec<String> = node.cmd(&["PUBSUB", "SHARDCHANNELS", "*"]);
            assert_eq!(
                shard_channels.contains(&unlock_channel(name)),
                node.port() == owner.port(),
                "node {}: {shard_channels:?}",
                node.port()
            );
        }
    }

    let released = Instant::now();
    for holder in holders {
        holder.unlock().await.expect("unlock");
    }
    assert_woken_by_the_release(released, waiters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusion_and_fencing_hold_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let name = unique_name("cluster-exclusion");
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let lock = client.lock(&name);
            let (inside, overlaps) = (Arc::clone(&inside), Arc::clone(&overlaps));
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                for _ in 0..10 {
                    let guard = lock.acquire().await?;
                    if inside.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokens.push(guard.fencing_token());
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    guard.unlock().await?;
                }
                Ok::<_, lock_runtime::LockError>(tokens)
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.extend(task.await.expect("join").expect("task"));
    }

    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two holders at once");
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 80, "every acquisition got its own token");
    let owner = cluster.node_for_key(lock_key(&name));
    let fence: u64 = owner.cmd(&["GET", &format!("{}:fence", lock_key(&name))]);
    assert_eq!(
        Some(&last_token(fence)),
        tokens.last(),
        "the fencing state keeps the last token"
    );
    let held: i64 = owner.cmd(&["EXISTS", &lock_key(&name)]);
    assert_eq!(held, 0, "released");
}

/// Lock-checked writes on a cluster: keys named with the lock's hash tag live in its slot and
/// are written; a key of another slot is a clear error naming the tag to use, and leaves the
/// whole pipeline unrun, the writes in the lock's slot before it included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_checked_writes_need_the_locks_slot() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let name = unique_name("cluster-exec");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let inside = format!("{}:data", guard.hash_tag());
    let mut pipe = redis::pipe();
    pipe.set(&inside, "written").ignore().get(&inside);
    let (value,): (String,) = guard.exec(&pipe).await.expect("a key in the lock's slot");
    assert_eq!(value, "written");

    // A sharded channel in the lock's slot is published to (Redis 7.0 has sharded pub/sub;
    // before, the script itself compares its keys' slots with the lock's).
    let sharded = server_version().redis_7_or_newer();
    if sharded {
        let mut pipe = redis::pipe();
        pipe.cmd("SPUBLISH").arg(&inside).arg("news");
        let (receivers,): (i64,) = guard
            .exec(&pipe)
            .await
            .expect("a channel in the lock's slot");
        assert_eq!(receivers, 0);
    }

    // Keys without the tag that hash to another slot than the lock's: one on the lock's node,
    // one on another.
    let lock_slot = lock_tests::key_slot(lock_key(&name).as_bytes());
    let lock_node = cluster.node_for_key(lock_key(&name)).port();
    let elsewhere = |same_node: bool| {
        (0..)
            .map(|i| format!("elsewhere-{i}"))
            .find(|key| {
                lock_tests::key_slot(key.as_bytes()) != lock_slot
                    && (cluster.node_for_key(key).port() == lock_node) == same_node
            })
            .expect("some key hashes elsewhere")
    };
    let before = format!("{}:before", guard.hash_tag());
    let (same_node, other_node) = (elsewhere(true), elsewhere(false));
    for (outside, atomic, command) in [
        (&same_node, true, "SET"),
        (&same_node, false, "SET"),
        (&other_node, true, "SET"),
        (&other_node, false, if sharded { "SPUBLISH" } else { "SET" }),
    ] {
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        pipe.set(&before, "written")
            .ignore()
            .cmd(command)
            .arg(outside)
            .arg("stray")
            .ignore();
        let err = guard.exec::<()>(&pipe).await.expect_err("another slot");
        let written: i64 = cluster.node_for_key(&before).cmd(&["EXISTS", &before]);
        assert_eq!(written, 0, "the write in the lock's slot landed: {err}");
        let stray: i64 = cluster.node_for_key(outside).cmd(&["EXISTS", outside]);
        assert_eq!(stray, 0, "the key outside the slot was written: {err}");
        assert!(
            matches!(
                err,
                lock_runtime::LockError::Config {
                    mistake: lock_runtime::Mistake::InvalidArgument,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("hash tag"), "{err}");
        assert!(err.to_string().contains("nothing ran"), "{err}");
    }
    let _: i64 = cluster.node_for_key(&inside).cmd(&["DEL", &inside]);
    guard.unlock().await.expect("unlock");
}

/// The size of the value whose reply passes the output buffer limit: far past the 16 KB a reply
/// may take before the limit is checked.
const BIG_REPLY: usize = 64 * 1024;

/// A request the runtime sends once (a lock-checked write, a command of the guard's connection)
/// runs once on a cluster, even when its connection drops after it ran: nothing resends it, not
/// redis-rs either. Its reply is lost on purpose: the node closes a client whose reply passes
/// the output buffer limit, after running the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_once_runs_once_when_its_reply_is_lost() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let name = unique_name("cluster-once");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let node = cluster.node_for_key(lock_key(&name));
    let (runs, big) = (
        format!("{}:runs", guard.hash_tag()),
        format!("{}:big", guard.hash_tag()),
    );
    let _: () = node.cmd(&["SET", &big, &"x".repeat(BIG_REPLY)]);
    let mut pipe = redis::pipe();
    pipe.incr(&runs, 1).ignore().get(&big);
    // Once with its reply, so the client knows these commands (`exec` reads a command's table
    // from the server at its first use, a read the limit below would cut instead of the write).
    let (warm,): (String,) = guard.exec(&pipe).await.expect("exec before the limit");
    assert_eq!(warm.len(), BIG_REPLY);
    let _: () = node.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 1024 0 0",
    ]);

    let written = guard.exec::<(String,)>(&pipe).await;
    assert!(written.is_err(), "the reply was lost: {written:?}");
    let sent: redis::RedisResult<(String,)> = pipe.query_async(&mut guard.connection()).await;
    assert!(sent.is_err(), "the reply was lost: {sent:?}");

    let _: () = node.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 0 0 0",
    ]);
    let ran: i64 = node.cmd(&["GET", &runs]);
    assert_eq!(ran, 3, "each request ran once (the first before the limit)");
    guard.unlock().await.expect("unlock");
    lock_tests::locks::assert_released_beside(node, &name, &[&runs, &big]);
}

/// A slot being migrated answers `ASK` for the keys that already left it (or were never
/// there): the client follows it to the importing node, after `ASKING`, while the slot map still
/// names the old owner. A command of the guard's connection on a key not written yet lands
/// there. A script of several keys gets `TRYAGAIN` until the migration ends (Redis serves no
/// request of several keys split between two nodes): the release waits and is done then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_being_migrated_is_followed_where_it_goes() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let name = unique_name("cluster-ask");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let slot = lock_tests::key_slot(lock_key(&name).as_bytes());
    let owner = cluster.node_for_slot(slot).port();
    let target = cluster
        .primaries()
        .into_iter()
        .find(|primary| primary.port() != owner)
        .expect("three primaries");
    let source = cluster.start_slot_migration(slot, target);

    let direct = format!("{}:direct", guard.hash_tag());
    let () = redis::cmd("SET")
        .arg(&direct)
        .arg("asked")
        .query_async(&mut guard.connection())
        .await
        .expect("a command of the guard's connection");
    let on_target: Vec<String> = target.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "10"]);
    assert_eq!(
        on_target,
        [direct.as_str()],
        "written on the importing node"
    );

    let release = tokio::spawn(guard.unlock());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!release.is_finished(), "a release waits for the migration");
    cluster.finish_slot_migration(slot, source, target);
    release
        .await
        .expect("join")
        .expect("released once the slot moved");
    lock_tests::locks::assert_released_beside(target, &name, &[&direct]);
}

/// The rest of the family on a cluster, on names whose keys land on every node: every script
/// touches its name's slot only, wherever that slot lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_family_works_on_every_node() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let short = Duration::from_millis(200);
    for name in names_on_every_node(&cluster) {
        let rw = client.read_write_lock(&name);
        let reading = rw.read().acquire().await.expect("read");
        let also = rw.read().acquire().await.expect("readers share");
        let err = rw.write().try_acquire(short, None).await.expect_err("read");
        assert!(err.is_timeout(), "{err}");
        reading.unlock().await.expect("unlock");
        also.unlock().await.expect("unlock");
        rw.write()
            .acquire()
            .await
            .expect("write")
            .unlock()
            .await
            .expect("unlock");

        let fair = client.fair_lock(&name);
        fair.acquire()
            .await
            .expect("fair")
            .unlock()
            .await
            .expect("unlock");

        let semaphore = client.semaphore(&name);
        assert!(semaphore.try_set_permits(2).await.expect("set"));
        let permit = semaphore.acquire(2).await.expect("permits");
        let err = semaphore
            .try_acquire(1, short, None)
            .await
            .expect_err("none free");
        assert!(err.is_timeout(), "{err}");
        permit.release().await.expect("release");
        assert_eq!(semaphore.available_permits().await.expect("count"), 2);

        let latch = client.count_down_latch(&name);
        assert!(latch.try_set_count(1).await.expect("set"));
        latch.count_down().await.expect("count down");
        assert!(latch.wait_timeout(short).await.expect("wait"));

        let both = client
            .multi_lock([name.clone(), format!("{name}-other")])
            .acquire()
            .await
            .expect("multi-lock across slots");
        both.unlock().await.expect("unlock");

        semaphore.add_permits(1).await.expect("add permits");
        let _forgotten = client.lock(&name).acquire().await.expect("lock");
        assert!(client.lock(&name).force_unlock().await.expect("force"));
        let _forgotten = rw.write().acquire().await.expect("write");
        assert!(rw.force_unlock().await.expect("force"));
    }
    // Every script that wakes waiters published with SPUBLISH, inside the lock's shard; before
    // Redis 7.0, which has no sharded pub/sub, with PUBLISH.
    let (used, unused) = if server_version().redis_7_or_newer() {
        ("spublish", "publish")
    } else {
        ("publish", "spublish")
    };
    for node in cluster.nodes() {
        assert_eq!(command_calls(node, &[unused]), 0, "node {}", node.port());
        assert!(command_calls(node, &[used]) > 0, "node {}", node.port());
    }
}

/// `held_locks` walks every primary: locks whose keys live on three different nodes are all
/// listed, the limit holds across nodes, and released locks are not listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_locks_lists_the_locks_of_every_primary() {
    let cluster = RedisCluster::start(3);
    let client = cluster_client(&cluster).await;
    let names = names_on_every_node(&cluster);
    let mut guards = Vec::new();
    for name in &names {
        guards.push(client.lock(name).acquire().await.expect("acquire"));
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        client.held_locks("cluster-*", 100).await.expect("list"),
        sorted
    );
    let two = client.held_locks("cluster-*", 2).await.expect("list");
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.iter().all(|name| names.contains(name)), "{two:?}");
    let one = client.held_locks(&names[2], 10).await.expect("list");
    assert_eq!(one, [names[2].clone()]);

    for guard in guards {
        guard.unlock().await.expect("unlock");
    }
    assert!(
        client
            .held_locks("cluster-*", 100)
            .await
            .expect("list")
            .is_empty()
    );
}

/// The client's name reaches every node: `CLIENT SETNAME` goes to each node connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_the_client_by_name() {
    let cluster = RedisCluster::start(3);
    let client = LockClient::builder()
        .cluster(cluster.urls())
        .client_name("billing on node 7")
        .build()
        .await
        .expect("connect to the cluster");
    take_once(&client, &unique_name("named")).await;
    for node in cluster.nodes() {
        let named = node.client_list().iter().any(|connection| {
            connection.get("name").map(String::as_str) == Some("billing_on_node_7")
        });
        assert!(
            named,
            "node {} lists no named connection: {:?}",
            node.port(),
            node.client_list()
        );
    }
}
