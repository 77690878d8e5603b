//! The client's name on its Redis connections (issue "Operations"): `CLIENT LIST` on the server
//! shows which service each connection belongs to, on the command connection and the pub/sub
//! connection, again after they are killed and reopened, and without costing an uncontended
//! acquisition a command.

use std::{collections::BTreeMap, time::Duration};

use lock_runtime::{LockClient, LockGuard};
use lock_tests::{
    Capability, RedisServer,
    locks::{
        assert_released, await_one_subscription, client_named, command_calls, eventually,
        spawn_waiters, take_once,
    },
    skip_without, unique_name,
};

/// What `CLIENT SETNAME` makes of the name `orders api\nhost 3` (Redis refuses spaces and
/// newlines in a connection name).
const SANITIZED: &str = "orders_api_host_3";

/// A task waiting for a lock, then releasing it.
type Waiter = tokio::task::JoinHandle<Result<(), lock_runtime::LockError>>;

/// The connections of `server` named `name`: `(pub/sub?, id)` each.
fn named(server: &RedisServer, name: &str) -> Vec<(bool, String)> {
    server
        .client_list()
        .iter()
        .filter(|client| client.get("name").map(String::as_str) == Some(name))
        .map(|client| (is_pubsub(client), client["id"].clone()))
        .collect()
}

/// Whether a `CLIENT LIST` entry is a subscriber.
fn is_pubsub(client: &BTreeMap<String, String>) -> bool {
    client.get("sub").is_some_and(|sub| sub != "0")
}

/// A client named with a space and a newline, holding the lock `name` with a waiter of its own
/// subscribed, so it has both its command and its pub/sub connection open.
async fn holding_with_a_waiter(
    server: &RedisServer,
    name: &str,
) -> (LockClient, LockGuard, Vec<Waiter>) {
    let client = client_named(server, "orders api\nhost 3").await;
    let guard = client.lock(name).acquire().await.expect("free");
    let waiters = spawn_waiters(&client, name, 1, Duration::from_secs(20));
    await_one_subscription(server, name).await;
    (client, guard, waiters)
}

/// Releases what [`holding_with_a_waiter`] took: the lock, then its waiter's turn.
async fn release(server: &RedisServer, name: &str, guard: LockGuard, waiters: Vec<Waiter>) {
    guard.unlock().await.expect("unlock");
    for waiter in waiters {
        waiter.await.expect("join").expect("served");
    }
    assert_released(server, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_shows_the_sanitized_name_on_both_connections() {
    let server = RedisServer::start();
    let name = unique_name("named");
    let (_client, guard, waiters) = holding_with_a_waiter(&server, &name).await;
    let connections = named(&server, SANITIZED);
    assert!(
        connections.iter().any(|(pubsub, _)| !pubsub),
        "no named command connection: {:?}",
        server.client_list()
    );
    assert!(
        connections.iter().any(|(pubsub, _)| *pubsub),
        "no named pub/sub connection: {:?}",
        server.client_list()
    );
    assert!(
        server
            .client_list()
            .iter()
            .filter(|c| is_pubsub(c))
            .all(|c| c["name"] == SANITIZED),
        "an unnamed subscriber: {:?}",
        server.client_list()
    );
    release(&server, &name, guard, waiters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_comes_back_after_the_connections_are_killed() {
    let server = RedisServer::start();
    let name = unique_name("renamed");
    let (client, guard, waiters) = holding_with_a_waiter(&server, &name).await;
    let before = named(&server, SANITIZED);
    assert_eq!(before.len(), 2, "{before:?}");

    assert!(server.client_kill("TYPE pubsub") >= 1);
    assert!(server.client_kill("TYPE normal") >= 1);
    // The hub reconnects by itself (a task waits); the command connection on the next request.
    take_once(&client, &unique_name("after-kill")).await;
    let back = eventually(Duration::from_secs(5), || {
        let now = named(&server, SANITIZED);
        now.iter().any(|(pubsub, _)| *pubsub)
            && now.iter().any(|(pubsub, _)| !pubsub)
            && now.iter().all(|connection| !before.contains(connection))
    })
    .await;
    assert!(back, "not named again: {:?}", server.client_list());

    release(&server, &name, guard, waiters).await;
}

/// The name is sent once per connection, not with every request: a hundred uncontended
/// acquisitions send no `CLIENT SETNAME` at all once the client is connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_costs_an_uncontended_acquisition_nothing() {
    let server = RedisServer::start();
    let client = client_named(&server, "orders api\nhost 3").await;
    let lock = client.lock(unique_name("uncontended"));
    take_once(&client, lock.name()).await;
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..100 {
        lock.acquire()
            .await
            .expect("acquire")
            .unlock()
            .await
            .expect("unlock");
    }
    assert_eq!(command_calls(&server, &["client|setname"]), 0);
    assert_eq!(
        command_calls(&server, &["fcall", "evalsha"]),
        200,
        "one script per acquire and release"
    );
    assert_released(&server, lock.name());
}

/// A client that logs in as an ACL user names its pub/sub connection too: the name is set
/// after `AUTH` (here the default user, which a connection is before `AUTH`, may not name
/// itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_password_names_its_pub_sub_connection() {
    if skip_without(Capability::AclSubcommandRules) {
        return;
    }
    let server = RedisServer::start();
    let _: () = server.cmd(&["ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all"]);
    let _: () = server.cmd(&["ACL", "SETUSER", "default", "-client|setname"]);
    let client = LockClient::builder()
        .url(format!("redis://app:pw@127.0.0.1:{}", server.port()))
        .client_name("billing")
        .build()
        .await
        .expect("connect as app");
    let name = unique_name("named-acl");
    let guard = client.lock(&name).acquire().await.expect("free");
    let waiters = spawn_waiters(&client, &name, 1, Duration::from_secs(20));
    let subscribed = eventually(Duration::from_secs(5), || {
        named(&server, "billing").iter().any(|(pubsub, _)| *pubsub)
    })
    .await;
    assert!(
        subscribed,
        "no named subscriber: {:?}",
        server.client_list()
    );
    release(&server, &name, guard, waiters).await;
}
