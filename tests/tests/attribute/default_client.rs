//! The process-wide default client that `#[distribute_lock]` falls back on.

use std::time::Duration;

use lock_runtime::LockClient;
use lock_tests::{
    RedisServer, Workers,
    locks::{assert_released, last_token, lock_key},
    unique_name,
};

use crate::DEFAULT_CLIENT;

const WORKER: &str = env!("CARGO_BIN_EXE_lock-worker");

fn run_default_worker(name: &str, redis_url: &str) -> String {
    let outputs = Workers::command(WORKER)
        .env("REDIS_URL", redis_url)
        .worker(["default", name])
        .spawn()
        .wait_all(Duration::from_secs(20));
    assert!(outputs[0].status.success(), "{}", outputs[0].stderr);
    outputs[0].stdout.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_set_as_default_is_the_one_returned() {
    let _turn = DEFAULT_CLIENT.lock().await;
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    lock_runtime::set_default_client(client.clone());

    let default = lock_runtime::default_client()
        .await
        .expect("default client");

    assert_eq!(default.id(), client.id());
}

#[test]
fn without_a_default_client_redis_url_is_used() {
    let server = RedisServer::start();
    let name = unique_name("from-env");

    let stdout = run_default_worker(&name, &server.url());

    let token = stdout.trim().strip_prefix("token=").unwrap_or_default();
    let fence: u64 = server.cmd(&["GET", &format!("{}:fence", lock_key(&name))]);
    assert_eq!(
        token,
        last_token(fence).to_string(),
        "the worker took the lock on this server: {stdout}"
    );
    assert_released(&server, &name);
}

#[test]
fn without_a_default_client_or_redis_url_the_error_says_what_to_do() {
    let stdout = run_default_worker(&unique_name("no-default"), "");

    assert!(
        stdout.contains("error=misuse: no default lock client"),
        "{stdout}"
    );
    assert!(stdout.contains("set_default_client"), "{stdout}");
    assert!(stdout.contains("REDIS_URL"), "{stdout}");
}

#[test]
fn a_redis_url_that_does_not_parse_is_named_as_the_environments() {
    let stdout = run_default_worker(&unique_name("bad-env"), "redis//127.0.0.1:6379");

    assert!(stdout.contains("does not parse"), "{stdout}");
    assert!(stdout.contains("must start with `redis://`"), "{stdout}");
    assert!(stdout.contains("(the URL in REDIS_URL)"), "{stdout}");
}
