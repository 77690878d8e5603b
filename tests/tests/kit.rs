//! Self-tests of the test kit, against real `redis-server` processes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lock_tests::{
    RedisCluster, RedisServer, ReplicatedRedis, ServerProduct, TcpProxy, Workers, assert_no_keys,
    key_slot, spawn_workers, start_masters, unique_name,
};
use redis::{Commands, RedisResult};

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn server_set_get_pause_resume_kill_restart_drop() {
    let server = RedisServer::start();
    assert!(server.url().ends_with(&format!(":{}", server.port())));
    let _: () = server.cmd(&["SET", "k", "v"]);
    assert_eq!(server.cmd::<String>(&["GET", "k"]), "v");
    assert_eq!(server.keys("*"), vec!["k".to_owned()]);
    assert_eq!(
        server.info_field("server", "tcp_port"),
        Some(server.port().to_string())
    );

    // Paused: a command times out; resumed: the same connection answers.
    let mut con = server.sync_connection();
    con.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    server.pause();
    let started = Instant::now();
    let paused: RedisResult<String> = redis::cmd("PING").query(&mut con);
    assert!(paused.is_err(), "PING answered while paused: {paused:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    server.resume();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut con = server.sync_connection(); // the timed-out connection may hold a stale reply
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut con).unwrap(),
        "PONG"
    );
    drop(con);

    // Kill, then restart on the same port: empty data set.
    let (port, old_pid) = (server.port(), server.pid());
    server.kill();
    assert!(!server.is_running());
    assert!(server.try_cmd::<String>(&["PING"]).is_err());
    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), old_pid);
    assert_eq!(server.cmd::<i64>(&["EXISTS", "k"]), 0);
    assert_no_keys(&server, "*");

    // Drop leaves no process and no directory behind, even a paused one.
    let pid = server.pid();
    let dir = server.dir().to_path_buf();
    server.pause();
    drop(server);
    assert!(!pid_alive(pid), "redis-server {pid} survived the drop");
    assert!(!dir.exists());
}

#[test]
fn builder_args_and_log_tail() {
    let server = RedisServer::builder()
        .arg("maxmemory-policy", "allkeys-lru")
        .start();
    let policy: Vec<String> = server.cmd(&["CONFIG", "GET", "maxmemory-policy"]);
    assert_eq!(policy, vec!["maxmemory-policy", "allkeys-lru"]);
    assert!(
        server.log_tail().contains("Ready to accept connections"),
        "{}",
        server.log_tail()
    );
}

#[test]
fn bad_config_panics_with_the_log() {
    let result =
        std::panic::catch_unwind(|| RedisServer::builder().arg("no-such-directive", "1").start());
    let message = panic_message(result.expect_err("start should fail"));
    assert!(message.contains("exited during start"), "{message}");
    assert!(message.contains("no-such-directive"), "{message}");
}

#[test]
fn taken_port_is_detected() {
    // Forcing the port of a running server makes every attempt fail with "Address already in use",
    // which the kit detects (and, with its own free ports, retries). The running server answers PING
    // on that port, but the kit checks the answer comes from its own process.
    let occupant = RedisServer::start();
    let port = occupant.port().to_string();
    let result = std::panic::catch_unwind(|| RedisServer::builder().arg("port", port).start());
    let message = panic_message(result.expect_err("the port is taken"));
    assert!(message.contains("could not find a free port"), "{message}");
    assert!(message.contains("Address already in use"), "{message}");
}

#[test]
fn client_kill_closes_a_subscriber() {
    let server = RedisServer::start();
    let mut subscriber = server.sync_connection();
    subscriber
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _: () = redis::cmd("SUBSCRIBE")
        .arg("chan")
        .exec(&mut subscriber)
        .unwrap();
    // The kit's own `normal` connection is never killed.
    assert_eq!(server.client_kill("TYPE pubsub"), 1);
    let next: RedisResult<redis::Value> = subscriber.recv_response();
    assert!(next.is_err(), "subscriber still open: {next:?}");
    assert_eq!(server.client_kill("TYPE pubsub"), 0);
}

#[test]
fn debug_sleep_stalls_the_server() {
    let server = RedisServer::start();
    let started = Instant::now();
    let sleeper = server.debug_sleep(Duration::from_millis(500));
    assert!(started.elapsed() < Duration::from_millis(400));
    let mut con = server.sync_connection();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _: String = redis::cmd("PING").query(&mut con).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    sleeper.join().unwrap();
}

#[test]
fn primary_with_two_replicas() {
    let redis = ReplicatedRedis::start(2);
    // `WAIT` counts acknowledgements of this connection's writes, so SET and WAIT share it.
    let mut con = redis.primary.sync_connection();
    let _: () = con.set("k", "v").unwrap();
    let acked: i64 = redis::cmd("WAIT").arg(2).arg(1000).query(&mut con).unwrap();
    assert_eq!(acked, 2);
    for replica in &redis.replicas {
        assert_eq!(replica.cmd::<String>(&["GET", "k"]), "v");
        assert_eq!(
            replica.info_field("replication", "role").as_deref(),
            Some("slave")
        );
    }
    assert_eq!(redis.replica_urls().len(), 2);
}

#[test]
fn independent_masters() {
    let masters = start_masters(3);
    let _: () = masters[0].cmd(&["SET", "k", "v"]);
    assert_eq!(masters[1].cmd::<i64>(&["EXISTS", "k"]), 0);
    let mut ports: Vec<u16> = masters.iter().map(RedisServer::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
}

#[test]
fn cluster_of_three() {
    let cluster = RedisCluster::start(3);
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        let info: String = node.cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
    for key in ["foo", "lock:{order-1}", "bar", "{a}b", "x{}y"] {
        let slot: i64 = cluster.nodes()[0].cmd(&["CLUSTER", "KEYSLOT", key]);
        assert_eq!(i64::from(key_slot(key.as_bytes())), slot, "{key}");
        let owner = cluster.node_for_key(key);
        let _: () = owner.cmd(&["SET", key, "v"]);
        assert_eq!(owner.cmd::<String>(&["GET", key]), "v");
        let other = cluster
            .nodes()
            .iter()
            .find(|n| n.port() != owner.port())
            .unwrap();
        let moved = other.try_cmd::<String>(&["GET", key]).unwrap_err();
        assert!(
            moved.to_string().to_lowercase().contains("moved"),
            "{moved}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_faults() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    assert_eq!(proxy.target_port(), server.port());
    let client = redis::Client::open(proxy.url()).unwrap();

    // Plain forwarding.
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(proxy.connection_count(), 1);

    // Delay: a round trip takes at least the delay.
    proxy.set_delay(Duration::from_millis(100));
    let started = Instant::now();
    let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    proxy.set_delay(Duration::ZERO);

    // Blackhole: the command times out (500 ms default response timeout), then traffic flows again.
    proxy.blackhole(true);
    let stalled: RedisResult<String> = redis::cmd("PING").query_async(&mut con).await;
    assert!(
        stalled.is_err(),
        "answered through a blackhole: {stalled:?}"
    );
    assert_eq!(proxy.connection_count(), 1, "the socket stays open");
    proxy.blackhole(false);

    // Dropping connections breaks an open connection; a new one works.
    let mut sync_con = redis::Client::open(proxy.url())
        .unwrap()
        .get_connection()
        .unwrap();
    sync_con
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _: String = redis::cmd("PING").query(&mut sync_con).unwrap();
    proxy.drop_connections();
    wait_until(|| proxy.connection_count() == 0).await;
    let broken: RedisResult<String> = redis::cmd("PING").query(&mut sync_con);
    assert!(broken.is_err(), "connection survived: {broken:?}");
    let mut fresh = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut fresh).await.unwrap();
    assert_eq!(pong, "PONG");

    // Refusing: new connections fail, then succeed again.
    proxy.refuse(true);
    let refused = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    }
    .await;
    assert!(refused.is_err(), "connected while refusing: {refused:?}");
    proxy.refuse(false);
    let mut again = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("PING").query_async(&mut again).await.unwrap();

    // Drop closes the listener.
    let port = proxy.port();
    drop(proxy);
    wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_err()).await;
}

/// The reply and hold faults: requests run while replies are lost or late, and bytes held on
/// the connections open at `hold_connections` reach the server only at `release_held`, while
/// newer connections work.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_reply_and_hold_faults() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = redis::Client::open(proxy.url()).unwrap();
    let key = unique_name("proxy-reply");

    // Lost replies: the command runs, its reply never comes.
    let mut lossy = client.get_multiplexed_async_connection().await.unwrap();
    proxy.drop_replies(true);
    let lost: RedisResult<i64> = redis::cmd("INCR").arg(&key).query_async(&mut lossy).await;
    assert!(lost.is_err(), "a reply got through: {lost:?}");
    assert_eq!(server.cmd::<i64>(&["GET", &key]), 1, "the request ran");
    proxy.drop_replies(false);

    // Late replies: the command runs at once, its reply comes when they are let through.
    // No response timeout: under load the held reply may take a while.
    let patient = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut late = client
        .get_multiplexed_async_connection_with_config(&patient)
        .await
        .unwrap();
    proxy.hold_replies(true);
    let pending = tokio::spawn({
        let key = key.clone();
        async move {
            redis::cmd("INCR")
                .arg(&key)
                .query_async::<i64>(&mut late)
                .await
        }
    });
    wait_until(|| server.cmd::<i64>(&["GET", &key]) == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "the reply is held");
    proxy.hold_replies(false);
    assert_eq!(pending.await.unwrap().unwrap(), 2, "the held reply arrives");

    // Held connections: nothing reaches the server until released; a new connection works.
    let key = unique_name("proxy-hold");
    let mut held = client.get_multiplexed_async_connection().await.unwrap();
    proxy.hold_connections();
    let stuck = tokio::spawn({
        let key = key.clone();
        async move {
            redis::cmd("SET")
                .arg(&key)
                .arg("late")
                .query_async::<()>(&mut held)
                .await
        }
    });
    wait_until(|| proxy.held_bytes() > 0).await;
    assert_eq!(
        server.cmd::<i64>(&["EXISTS", &key]),
        0,
        "held, not delivered"
    );
    let mut fresh = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut fresh).await.unwrap();
    assert_eq!(pong, "PONG", "a connection opened later is not held");
    proxy.release_held();
    wait_until(|| server.cmd::<i64>(&["EXISTS", &key]) == 1).await;
    assert_eq!(proxy.held_bytes(), 0);
    let _ = stuck.await.unwrap();
}

#[test]
fn workers_collect_output_and_time_out() {
    let outputs = spawn_workers(
        "sh",
        vec![
            vec!["-c", "echo hi; echo oops >&2"],
            vec!["-c", "echo second; exit 3"],
        ],
    )
    .wait_all(Duration::from_secs(10));
    assert_eq!(outputs[0].stdout, "hi\n");
    assert_eq!(outputs[0].stderr, "oops\n");
    assert!(outputs[0].status.success());
    assert_eq!(outputs[1].stdout, "second\n");
    assert_eq!(outputs[1].status.code(), Some(3));

    let started = Instant::now();
    let mut workers = Workers::command("sh")
        .env("GREETING", "ready")
        .worker(["-c", "echo $GREETING; exec sleep 30"])
        .worker(["-c", "exec sleep 30"])
        .spawn();
    assert!(workers.wait_for_stdout(0, "ready", Duration::from_secs(5)));
    let pids = [workers.pid(0), workers.pid(1)];
    workers.pause(1);
    workers.resume(1);
    workers.kill(1);
    assert!(!workers.is_running(1));
    let outputs = workers.wait_all(Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(outputs[0].timed_out);
    assert!(!outputs[1].timed_out);
    assert!(!outputs[0].status.success());
    assert_eq!(outputs[0].stdout, "ready\n");
    for pid in pids {
        assert!(!pid_alive(pid), "worker {pid} left behind");
    }

    // Drop kills what is still running.
    let workers = Workers::command("sleep").worker(["30"]).spawn();
    let pid = workers.pid(0);
    drop(workers);
    assert!(!pid_alive(pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_wait_all_async() {
    let outputs = Workers::command("sh")
        .worker(["-c", "echo async"])
        .spawn()
        .wait_all_async(Duration::from_secs(10))
        .await;
    assert_eq!(outputs[0].stdout, "async\n");
}

#[test]
fn unique_names_differ() {
    let a = unique_name("lock");
    let b = unique_name("lock");
    assert_ne!(a, b);
    assert!(a.starts_with("lock-"));
}

#[test]
fn assert_no_keys_lists_leftovers() {
    let server = RedisServer::start();
    assert_no_keys(&server, "*");
    let _: () = server.cmd(&["SET", "lock:left", "1", "PX", "60000"]);
    let result = std::panic::catch_unwind(|| assert_no_keys(&server, "lock:*"));
    let message = panic_message(result.expect_err("a key is left"));
    assert!(message.contains("lock:left"), "{message}");
}

#[test]
fn sync_connection_commands() {
    let server = RedisServer::start();
    let mut con = server.sync_connection();
    let _: () = con.set("a", 1).unwrap();
    let value: i64 = con.get("a").unwrap();
    assert_eq!(value, 1);
}

/// What a client sent is told from what a script ran, under the same command name.
#[test]
fn monitor_tells_a_clients_commands_from_a_scripts() {
    let server = RedisServer::start();
    let monitor = server.monitor();
    let _: Option<String> = server.cmd(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"]);
    let _: Option<String> = server.cmd(&["GET", "k \"quoted\""]);
    let seen = monitor.stop();
    let by_clients: Vec<_> = seen
        .iter()
        .filter(|command| command.sent_by_a_client())
        .map(|command| command.args.clone())
        .collect();
    assert_eq!(
        by_clients,
        [
            vec!["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
            vec!["GET", "k \"quoted\""],
        ],
        "{seen:?}"
    );
    let by_scripts: Vec<_> = seen
        .iter()
        .filter(|command| !command.sent_by_a_client())
        .map(lock_tests::MonitoredCommand::name)
        .collect();
    assert_eq!(by_scripts, ["get"], "{seen:?}");
}

/// The kit reads the product and version of its binary, and they are the running server's own
/// (Valkey reports `redis_version:7.2.4` for compatibility, and its own in `valkey_version`).
#[test]
fn a_server_is_the_version_its_binary_says() {
    let server = RedisServer::start();
    let version = server.version();
    assert_eq!(version, lock_tests::server_version());
    let field = match version.product {
        ServerProduct::Redis => "redis_version",
        ServerProduct::Valkey => "valkey_version",
    };
    let (major, minor, patch) = version.version;
    assert_eq!(
        server.info_field("server", field),
        Some(format!("{major}.{minor}.{patch}")),
        "{version}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn async_connection_commands() {
    let server = RedisServer::start();
    let mut con = server.async_connection().await;
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(server.cmd::<String>(&["GET", "a"]), "1");
}

#[test]
#[should_panic(expected = "scripts/ensure-redis.sh")]
fn missing_binary_panics_with_install_hint() {
    let _server = RedisServer::builder()
        .binary("/nonexistent/redis-server")
        .start();
}

/// Runs `starts_the_binary_redis_server_names` again in a child process with
/// `REDIS_SERVER=/nonexistent`, so the environment of this process (shared by parallel tests) is
/// never changed.
#[test]
fn missing_binary_from_env_panics_with_install_hint() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "starts_the_binary_redis_server_names",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("REDIS_SERVER", "/nonexistent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    for hint in [
        "/nonexistent",
        "REDIS_SERVER",
        "scripts/ensure-redis.sh",
        "apt-get install redis-server",
    ] {
        assert!(text.contains(hint), "missing {hint:?} in:\n{text}");
    }
}

/// Starts a server with the binary `$REDIS_SERVER` names, or `redis-server` on `PATH` when unset;
/// `missing_binary_from_env_panics_with_install_hint` runs it again with a binary that is missing.
#[test]
fn starts_the_binary_redis_server_names() {
    let server = RedisServer::start();
    let pong: String = server.cmd(&["PING"]);
    assert_eq!(pong, "PONG");
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A cluster with a replica per master: a killed primary's replica takes over its slots with
/// the data it had replicated, `CLUSTER FAILOVER` hands a slot back, and a migrated slot's keys
/// move with it.
#[test]
fn cluster_with_replicas_fails_over_and_migrates() {
    let cluster = RedisCluster::with_replicas(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.primaries().len(), 3);
    let key = "kit:{failover}";
    let primary = cluster.node_for_key(key);
    let _: () = primary.cmd(&["SET", key, "v"]);
    let replica = cluster.replicas_of(primary)[0];
    let _: i64 = primary.cmd(&["WAIT", "1", "5000"]);

    let promoted = cluster.kill_primary(primary);
    assert_eq!(promoted.port(), replica.port());
    assert_eq!(cluster.node_for_key(key).port(), promoted.port());
    assert_eq!(promoted.cmd::<String>(&["GET", key]), "v");

    let other = cluster.primaries()[0];
    let other = if other.port() == promoted.port() {
        cluster.primaries()[1]
    } else {
        other
    };
    let stand_in = cluster.replicas_of(other)[0];
    cluster.fail_over_to(stand_in);
    assert!(
        cluster
            .primaries()
            .iter()
            .any(|p| p.port() == stand_in.port())
    );

    let slot = key_slot(key.as_bytes());
    cluster.migrate_slot(slot, stand_in);
    assert_eq!(cluster.node_for_key(key).port(), stand_in.port());
    assert_eq!(stand_in.cmd::<String>(&["GET", key]), "v");
    assert_eq!(promoted.cmd::<i64>(&["DBSIZE"]), 0);
}
