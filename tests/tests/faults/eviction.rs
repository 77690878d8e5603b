//! The fault suite's memory pressure: what `maxmemory` does to locks under each kind of policy.
//! The client warns at connect when the policy may evict lock keys; under `volatile-ttl` (every
//! lock key has a TTL, so it goes first) a held lock is evicted and its holder learns it through
//! `lease_lost()`; under `noeviction` a held lock stays held and new acquisitions fail with
//! Redis's OOM error instead of hanging.

use std::time::Duration;

use lock_runtime::LockClient;
use lock_tests::{
    RedisServer,
    locks::{assert_released, client_with_watchdog, lock_key},
    logs::capture_warnings,
    unique_name,
};

/// A server whose eviction policy is `policy` (no memory limit yet).
fn server_with(policy: &str) -> RedisServer {
    RedisServer::builder()
        .arg("maxmemory-policy", policy)
        .start()
}

/// Fills the server with keys that have no TTL, then sets its memory limit below what it uses:
/// every later write that needs memory must evict (or, under `noeviction`, is refused).
fn exhaust_memory(server: &RedisServer) {
    let _: () = server.cmd(&["DEBUG", "POPULATE", "20000", "filler", "256"]);
    let used: u64 = server
        .info_field("memory", "used_memory")
        .and_then(|used| used.parse().ok())
        .expect("used_memory");
    let _: () = server.cmd(&["CONFIG", "SET", "maxmemory", &(used / 2).to_string()]);
}

/// Lifts the memory limit: memory is back (the filler stays, the locks' keys with it).
fn lift_memory_limit(server: &RedisServer) {
    let _: () = server.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
}

#[tokio::test]
async fn a_client_warns_at_connect_when_its_locks_can_be_evicted() {
    for (policy, warned) in [
        ("allkeys-lru", true),
        ("volatile-ttl", true),
        ("noeviction", false),
    ] {
        let server = server_with(policy);
        let (logging, captured) = capture_warnings();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        drop(logging);
        let lines = captured.lines();
        let warning = lines
            .iter()
            .any(|line| line.contains("WARN") && line.contains("evict") && line.contains(policy));
        assert_eq!(warning, warned, "{policy}: {lines:#?}");
        drop(client);
    }
}

/// Under `volatile-ttl` the lock key, having a TTL among keys without one, is the first to go
/// when memory runs out. The holder is told at its next renewal; once memory is freed another
/// client takes the lock while the first still has its guard: `lease_lost()` is how it knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_policy_drops_a_held_lock_and_its_holder_learns_it() {
    let server = server_with("volatile-ttl");
    let holding = client_with_watchdog(&server, Duration::from_millis(600)).await;
    let name = unique_name("evicted");
    let guard = holding.lock(&name).acquire().await.expect("free");

    exhaust_memory(&server);
    let _: String = server.cmd(&["PING"]);
    assert_eq!(
        server.cmd::<i64>(&["EXISTS", &lock_key(&name)]),
        0,
        "the held lock was evicted"
    );
    tokio::time::timeout(Duration::from_secs(3), guard.lease_lost())
        .await
        .expect("the holder's next renewal finds its lock gone");

    lift_memory_limit(&server);
    let other = LockClient::connect(&server.url()).await.expect("connect");
    let second = other
        .lock(&name)
        .try_acquire(Duration::from_secs(1), None)
        .await
        .expect("the lock is free for anyone");
    assert!(guard.is_lease_lost());
    second.unlock().await.expect("unlock");
    assert!(guard.unlock().await.expect_err("lost").is_not_held());
    assert_released(&server, &name);
}

/// Under `noeviction` a full Redis keeps every held lock and renews it; a new acquisition fails
/// at once with Redis's OOM error (never a hang, never a panic). A release needs memory too (its
/// count and its idempotence memo are writes Redis refuses under OOM): it goes through once
/// memory is back, and until then the lock ends with its lease (see the README's fault suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noeviction_keeps_held_locks_and_refuses_new_ones_with_an_error() {
    let server = server_with("noeviction");
    let holding = client_with_watchdog(&server, Duration::from_millis(600)).await;
    let name = unique_name("kept");
    let guard = holding.lock(&name).acquire().await.expect("free");

    exhaust_memory(&server);
    let refused = holding
        .lock(unique_name("refused"))
        .try_acquire(Duration::from_secs(2), None)
        .await
        .expect_err("no memory for a new lock");
    assert!(refused.is_redis(), "{refused}");
    let cause = std::error::Error::source(&refused).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|cause| cause.contains("OOM")),
        "{refused}: {cause:?}"
    );

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!guard.is_lease_lost(), "renewals go on under OOM");
    assert_eq!(server.cmd::<i64>(&["EXISTS", &lock_key(&name)]), 1);
    lift_memory_limit(&server);
    guard.unlock().await.expect("released once memory is back");
    assert_released(&server, &name);
}
