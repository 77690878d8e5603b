//! The real-Redis test kit of the workspace: tests run against real `redis-server` processes, never a mock.
//!
//! Every test starts its own servers on free `127.0.0.1` ports, each in its own temporary directory, so
//! tests run in parallel and leave nothing behind: dropping a server kills the process and removes its
//! directory, also when the test panics.
//!
//! | Need | Use |
//! |---|---|
//! | one server | [`RedisServer::start`], or [`RedisServer::builder`] for extra directives |
//! | a primary with synced replicas | [`ReplicatedRedis::start`] / [`start_with_replicas`] |
//! | Sentinels that fail a primary over | [`SentinelRedis::start`], [`wait_for_new_primary`](SentinelRedis::wait_for_new_primary) |
//! | N independent masters (Redlock) | [`start_masters`] |
//! | a 3+ master Redis Cluster | [`RedisCluster::start`], [`key_slot`] |
//! | a cluster with replicas, failed over, a slot migrated | [`RedisCluster::with_replicas`], [`kill_primary`](RedisCluster::kill_primary), [`fail_over_to`](RedisCluster::fail_over_to), [`migrate_slot`](RedisCluster::migrate_slot) |
//! | crash, restart, freeze a node | [`RedisServer::kill`], [`restart`](RedisServer::restart), [`pause`](RedisServer::pause) / [`resume`](RedisServer::resume) |
//! | drop client connections, stall the server | [`RedisServer::client_kill`], [`RedisServer::debug_sleep`] |
//! | latency, half-open or reset connections | [`TcpProxy`] between the client and the server |
//! | lost or late replies, requests delivered late | [`TcpProxy::drop_replies`], [`hold_replies`](TcpProxy::hold_replies), [`hold_connections`](TcpProxy::hold_connections) |
//! | a request's copy landing after its memos are gone | [`late`]: [`first_copy_held`](late::first_copy_held), [`deliver_after_the_memos`](late::deliver_after_the_memos) |
//! | contention across OS processes | [`Workers`] / [`spawn_workers`] |
//! | a fresh lock name, no keys left behind | [`unique_name`], [`assert_no_keys`] |
//! | which commands a client sent (not a script) | [`RedisServer::monitor`] |
//! | which server runs (Redis 6.2, Valkey 9, …), a test skipped where it lacks TLS | [`server_version`], [`RedisServer::version`], [`skip_without`] |
//!
//! # Finding `redis-server`
//!
//! The binary is [`RedisServerBuilder::binary`] when given, else `$REDIS_SERVER`, else `redis-server`
//! on `PATH`. Every supported server runs: Redis 6.2 or newer, Valkey 7.2 or newer; the kit reads
//! the binary's `--version` ([`server_version`], [`RedisServer::version`]) and leaves out what an
//! older server does not know (`enable-debug-command`, `cluster-port`, `CLUSTER ADDSLOTSRANGE`
//! before Redis 7.0). `scripts/ensure-servers.sh` installs Valkey 9, Valkey 8 and Redis 6.2
//! binaries. When the binary is missing, starting a server panics with a message saying how to
//! install it (`scripts/ensure-redis.sh`, `apt-get install redis-server`, `brew install redis`):
//! the tests fail, they never skip for that. Only a test that needs what the binary was built
//! without (TLS) skips, by name, through [`skip_without`].
//!
//! # Blocking
//!
//! Server methods are synchronous and block for at most a few seconds (start, `PING` polling, one
//! command). That is fine in `#[tokio::test(flavor = "multi_thread")]` tests; [`TcpProxy`] needs a
//! Tokio runtime.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use lock_tests::{RedisServer, TcpProxy, assert_no_keys, unique_name};
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn lock_survives_a_slow_network() {
//!     let server = RedisServer::start();
//!     let proxy = TcpProxy::start(server.port()).await;
//!     proxy.set_delay(Duration::from_millis(20));
//!     let name = unique_name("slow-network");
//!     // ... connect the lock client to `proxy.url()`, lock `name`, unlock ...
//!     assert_no_keys(&server, &format!("*{name}*"));
//! }
//! # fn main() {}
//! ```

#![warn(missing_docs)]

mod binary;
mod cluster;
pub mod late;
pub mod locks;
pub mod logs;
mod monitor;
mod proxy;
mod replication;
mod sentinel;
mod server;
mod tls;
mod workers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use binary::{
    Capability, SKIP_LOG_VAR, ServerProduct, ServerVersion, server_version, skip_without,
};
pub use cluster::{CLUSTER_SLOTS, RedisCluster, key_slot};
pub use monitor::{
    Monitor, MonitoredCommand, drop_fence_catch_ups, published_channels, ran_by_each_call,
};
pub use proxy::TcpProxy;
pub use replication::{ReplicatedRedis, start_with_replicas};
pub use sentinel::SentinelRedis;
pub use server::{RedisServer, RedisServerBuilder, command_stats, info_value, start_masters};
pub use workers::{WorkerOutput, Workers, WorkersBuilder, spawn_workers};

/// A lock name no other test (in this or another process) uses: `<prefix>-<pid>-<counter>-<time>`.
///
/// It contains no `{`, `}`, spaces or glob characters, so it can be embedded in keys and in
/// [`assert_no_keys`] patterns.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Panics, listing them, if any keys of `server` match `pattern` (a `KEYS` glob such as `"*my-lock*"`).
///
/// Use it at the end of a test to show no lock key was left behind.
///
/// # Panics
///
/// When keys match, or when the server cannot be queried.
pub fn assert_no_keys(server: &RedisServer, pattern: &str) {
    let keys = server.keys(pattern);
    if !keys.is_empty() {
        let listed: Vec<String> = keys
            .iter()
            .map(|key| {
                let kind: String = server.cmd(&["TYPE", key]);
                let ttl: i64 = server.cmd(&["PTTL", key]);
                format!("  {key} ({kind}, pttl {ttl} ms)")
            })
            .collect();
        panic!(
            "{} key(s) matching {pattern:?} left on redis-server port {}:\n{}",
            keys.len(),
            server.port(),
            listed.join("\n")
        );
    }
}

/// The workspace README's Rust examples, as doctests: `build.rs` adds to each the throwaway
/// servers it needs, so the README itself shows no test setup.
#[cfg(doctest)]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/README.md"))]
struct ReadmeDoctests;
