//! A Sentinel-managed primary (`LockClientBuilder::sentinel`): the client finds the primary
//! through real Sentinels and follows a failover with its command and pub/sub connections, so
//! holders, waiters and later acquisitions ride it out without an error.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockError, LockGuard};
use lock_tests::{
    RedisServer, SentinelRedis,
    locks::{
        assert_released, assert_released_beside, await_one_subscription, eventually, lock_key,
    },
    unique_name,
};
use tokio::task::JoinHandle;

/// How long the Sentinels get to agree on a new primary (about a second with the kit's
/// settings).
const FAILOVER: Duration = Duration::from_secs(15);

/// What the client's connections are called on the servers.
const CLIENT_NAME: &str = "sentinel-test";

async fn client_of(redis: &SentinelRedis) -> LockClient {
    LockClient::builder()
        .sentinel(SentinelRedis::MASTER_NAME, redis.urls())
        .client_name(CLIENT_NAME)
        .build()
        .await
        .expect("the Sentinels name a primary")
}

/// The client's connections on `server`: `(command, pub/sub)` counts.
fn connections_on(server: &RedisServer) -> (usize, usize) {
    let ours: Vec<_> = server
        .client_list()
        .into_iter()
        .filter(|client| client.get("name").map(String::as_str) == Some(CLIENT_NAME))
        .collect();
    let pubsub = ours
        .iter()
        .filter(|client| client.get("sub").is_some_and(|sub| sub != "0"))
        .count();
    (ours.len() - pubsub, pubsub)
}

/// Waits until the replicas of the deployment have the lock `name`, so a failover keeps it.
async fn await_replicated(redis: &SentinelRedis, name: &str) {
    let key = lock_key(name);
    let replicated = || {
        redis
            .nodes
            .replicas
            .iter()
            .all(|replica| replica.cmd::<i64>(&["EXISTS", &key]) == 1)
    };
    assert!(
        eventually(Duration::from_secs(5), replicated).await,
        "the replicas did not get the lock {name}"
    );
}

/// A lock held (watchdog lease) and replicated, and a task of the same client waiting for it,
/// subscribed on the primary.
struct Contended {
    guard: LockGuard,
    waiter: JoinHandle<Result<(LockGuard, Instant), LockError>>,
}

impl Contended {
    async fn start(redis: &SentinelRedis, client: &LockClient, name: &str) -> Self {
        let guard = client.lock(name).acquire().await.expect("free");
        await_replicated(redis, name).await;
        let lock = client.lock(name);
        let waiter = tokio::spawn(async move {
            let guard = lock.try_acquire(Duration::from_secs(30), None).await?;
            Ok((guard, Instant::now()))
        });
        await_one_subscription(redis.primary(), name).await;
        Self { guard, waiter }
    }

    /// Releases the lock and returns the waiter's guard, once it took the lock at the release
    /// (well before the 30 s watchdog lease would have woken it), with no error on either side.
    async fn release(self) -> LockGuard {
        let released = Instant::now();
        self.guard
            .unlock()
            .await
            .expect("the holder's unlock rides out the failover");
        let (woken, acquired) = self
            .waiter
            .await
            .expect("join")
            .expect("the waiter rides out the failover");
        let after = acquired.saturating_duration_since(released);
        assert!(
            after < Duration::from_secs(5),
            "woken {after:?} after the release, not by the release"
        );
        woken
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_go_to_the_primary_the_sentinels_name() {
    let redis = SentinelRedis::start(1, 1);
    let client = client_of(&redis).await;
    let name = unique_name("sentinel");

    let guard = client.lock(&name).acquire().await.expect("free");
    let primary = redis.primary();
    assert_eq!(primary.cmd::<i64>(&["EXISTS", &lock_key(&name)]), 1);
    let waiter = {
        let lock = client.lock(&name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await })
    };
    await_one_subscription(primary, &name).await;
    assert_eq!(
        connections_on(primary),
        (1, 1),
        "one command and one pub/sub connection, named"
    );
    let listening = eventually(Duration::from_secs(5), || {
        connections_on(&redis.sentinels[0]) == (0, 1)
    });
    assert!(listening.await, "the `+switch-master` listener, named");

    guard.unlock().await.expect("unlock");
    let woken = waiter.await.expect("join").expect("served at the release");
    woken.unlock().await.expect("unlock");
    assert_released(primary, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_followed_by_its_holder_its_waiter_and_later_locks() {
    let redis = SentinelRedis::start(1, 3);
    let client = client_of(&redis).await;
    let name = unique_name("killed-primary");
    let old = redis.primary();

    let contended = Contended::start(&redis, &client, &name).await;

    old.kill();
    let new = redis.wait_for_new_primary(old.port(), FAILOVER);
    assert_eq!(
        new.cmd::<i64>(&["EXISTS", &lock_key(&name)]),
        1,
        "the lock was replicated before the failover"
    );
    let woken = contended.release().await;
    woken.unlock().await.expect("unlock");
    assert_released(new, &name);

    let later = unique_name("after-failover");
    let guard = client.lock(&later).acquire().await.expect("free");
    assert_eq!(
        new.cmd::<i64>(&["EXISTS", &lock_key(&later)]),
        1,
        "later locks go to the new primary"
    );
    guard.unlock().await.expect("unlock");
    assert_released(new, &later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_still_running_is_left_by_every_connection() {
    let redis = SentinelRedis::start(1, 1);
    let client = client_of(&redis).await;
    let name = unique_name("demoted-primary");
    let old = redis.primary();

    let contended = Contended::start(&redis, &client, &name).await;

    redis.failover();
    let new = redis.wait_for_new_primary(old.port(), FAILOVER);
    // What Sentinel does some seconds later: the old primary becomes a replica of the new one
    // (and answers writes with READONLY), while it keeps running and keeps our connections.
    let _: () = old.cmd(&["REPLICAOF", "127.0.0.1", &new.port().to_string()]);

    let woken = contended.release().await;
    let moved = eventually(Duration::from_secs(5), || {
        connections_on(old) == (0, 0) && connections_on(new) == (1, 1)
    })
    .await;
    assert!(
        moved,
        "the command and pub/sub connections left the old primary: old {:?}, new {:?}",
        connections_on(old),
        connections_on(new)
    );
    woken.unlock().await.expect("unlock");
    assert_released(new, &name);
}

/// `LockGuard::connection` follows a failover like every other request: a connection taken
/// before it sends a write made after it to the new primary, not to the demoted one (which
/// would answer `READONLY` for the rest of the guard's life).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guards_connection_follows_a_failover() {
    let redis = SentinelRedis::start(1, 1);
    let client = client_of(&redis).await;
    let name = unique_name("guard-connection");
    let old = redis.primary();
    let guard = client.lock(&name).acquire().await.expect("free");
    await_replicated(&redis, &name).await;
    let mut connection = guard.connection();
    let key = format!("{}:data", guard.hash_tag());
    let set = |value: &str| redis::cmd("SET").arg(&key).arg(value).clone();
    let () = set("before")
        .query_async(&mut connection)
        .await
        .expect("a write before the failover");

    redis.failover();
    let new = redis.wait_for_new_primary(old.port(), FAILOVER);
    let _: () = old.cmd(&["REPLICAOF", "127.0.0.1", &new.port().to_string()]);

    let () = set("after")
        .query_async(&mut connection)
        .await
        .expect("a write after the failover");
    assert_eq!(new.cmd::<String>(&["GET", &key]), "after");
    guard.unlock().await.expect("unlock");
    assert_released_beside(new, &name, &[&key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_followed_as_the_sentinels_announce_it_while_the_old_primary_takes_writes() {
    let redis = SentinelRedis::start(1, 1);
    let client = client_of(&redis).await;
    let old = redis.primary();

    redis.failover();
    let new = redis.wait_for_new_primary(old.port(), FAILOVER);
    // Sentinel demotes the old primary only some seconds after the switch; until then it still
    // takes writes, and only the Sentinels' announcement tells the client to move.
    let deadline = Instant::now() + Duration::from_secs(3);
    let landed = loop {
        let name = unique_name("after-switch");
        let guard = client.lock(&name).acquire().await.expect("free");
        let on_new_primary = new.cmd::<i64>(&["EXISTS", &lock_key(&name)]) == 1;
        let unlocked = guard.unlock().await;
        if on_new_primary {
            unlocked.expect("unlock");
            break Some(name);
        }
        match unlocked {
            Ok(()) => assert_released(old, &name),
            // Taken on the old primary, and released after the client moved to the new one,
            // which never had it: the lock was lost with the old primary's writes.
            Err(err) => assert!(err.is_not_held(), "unlock: {err}"),
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        old.info_field("replication", "role").as_deref(),
        Some("master"),
        "the old primary was not demoted yet"
    );
    let name = landed.expect("locks still went to the old primary 3 s after the switch");
    assert_released(new, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sentinel_settings_are_config_errors() {
    let sentinel_url = ["redis://127.0.0.1:26379"];
    for (builder, says) in [
        (
            LockClient::builder().sentinel("", sentinel_url),
            "master name",
        ),
        (
            LockClient::builder().sentinel("mymaster", Vec::<String>::new()),
            "no Sentinel",
        ),
        (
            LockClient::builder().sentinel("mymaster", ["127.0.0.1:26379"]),
            "does not parse",
        ),
    ] {
        let err = builder.build().await.expect_err("refused");
        assert!(matches!(err, LockError::Config { .. }), "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_master_name_fails_the_build() {
    let redis = SentinelRedis::start(0, 1);
    let started = Instant::now();
    let err = LockClient::builder()
        .sentinel("no-such-master", redis.urls())
        .build()
        .await
        .expect_err("the Sentinels monitor no such master");
    assert!(matches!(err, LockError::Redis { .. }), "{err}");
    assert!(err.to_string().contains("no-such-master"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
}
