//! What a new user and an on-call engineer read (issue 24): errors that say what they are, name
//! what was waited for, carry their cause on one line, and name the lock as its caller gave it;
//! `?` on a Redis error in a locked body; a semaphore's total told when it was set already.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, Mistake, PermitsTotal, distribute_lock, redis};
use lock_tests::{
    RedisServer,
    locks::{assert_released, assert_rw_released, await_queued, client_named},
    unique_name,
};

/// The one-line text of a timeout after `waited` of `what` `name`, up to the holder's part:
/// "timed out after 300 ms waiting for lock `name` (".
fn assert_timeout_head(err: &LockError, what: &str, name: &str) {
    let text = err.to_string();
    let waited = text
        .strip_prefix("timed out after ")
        .and_then(|rest| rest.split_once(" ms waiting for "))
        .unwrap_or_else(|| panic!("not a timeout after some milliseconds: {text}"));
    assert!(
        waited.0.chars().all(|c| c.is_ascii_digit()),
        "whole milliseconds: {text}"
    );
    assert!(
        waited.1.starts_with(&format!("{what} `{name}` (held by ")),
        "{text}"
    );
}

/// Every mistake of a call says which kind it is: an argument, the state the call is made in,
/// or the client's configuration; and only one of the kinds' query methods says yes. Each is a
/// `LockError::Config`, the variant DESIGN names for a caller's mistakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_mistakes_are_not_called_configuration() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("err-kinds");
    let kinds = |err: &LockError| {
        assert!(err.is_config(), "{err}");
        let configuration = err.mistake() == Some(Mistake::Configuration);
        [configuration, err.is_invalid_argument(), err.is_misuse()]
            .iter()
            .filter(|yes| **yes)
            .count()
    };

    let zero_lease = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::ZERO))
        .await
        .expect_err("a lease of 0");
    assert!(zero_lease.is_invalid_argument(), "{zero_lease}");
    assert!(
        zero_lease.to_string().starts_with("invalid argument: "),
        "{zero_lease}"
    );
    assert!(zero_lease.to_string().contains(&name), "{zero_lease}");
    assert!(
        zero_lease.to_string().contains("between 1ms and 365 days"),
        "{zero_lease}"
    );

    let never_set = client
        .semaphore(&name)
        .acquire(1)
        .await
        .expect_err("no permits set");
    assert!(never_set.is_misuse(), "{never_set}");
    assert!(never_set.to_string().starts_with("misuse: "), "{never_set}");

    let zero_count = client
        .count_down_latch(&name)
        .try_set_count(0)
        .await
        .expect_err("a count of 0");
    assert!(zero_count.is_invalid_argument(), "{zero_count}");

    let no_permits = client
        .semaphore(&name)
        .try_acquire(0, Duration::from_secs(1), None)
        .await
        .expect_err("zero permits");
    assert!(no_permits.is_invalid_argument(), "{no_permits}");

    // The client's configuration is still called so; the watchdog's range is 30 ms ..= a year.
    let short_watchdog = LockClient::builder()
        .url(server.url())
        .watchdog_timeout(Duration::from_millis(29))
        .build()
        .await
        .expect_err("under 30 ms");
    assert!(short_watchdog.is_config(), "{short_watchdog}");
    assert!(
        short_watchdog
            .to_string()
            .starts_with("invalid lock client configuration: "),
        "{short_watchdog}"
    );
    assert!(
        short_watchdog.to_string().contains("30ms"),
        "{short_watchdog}"
    );
    LockClient::builder()
        .url(server.url())
        .watchdog_timeout(Duration::from_millis(30))
        .build()
        .await
        .expect("30 ms is the shortest watchdog timeout");

    for err in [
        &zero_lease,
        &never_set,
        &zero_count,
        &no_permits,
        &short_watchdog,
    ] {
        assert_eq!(kinds(err), 1, "{err}");
    }
    assert_released(&server, &name);
}

/// A timeout counts the others waiting, not the caller, names what it waited for (a
/// semaphore is not a lock), and gives its times in one family of units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_counts_the_others_and_names_what_it_waited_for() {
    let server = RedisServer::start();
    let holding = client_named(&server, "orders-api@host-3").await;
    let waiting = client_named(&server, "reports@host-9").await;
    let name = unique_name("err-timeout");
    let guard = holding.lock(&name).acquire().await.expect("free");
    let wait = Duration::from_millis(300);

    let alone = waiting
        .lock(&name)
        .try_acquire(wait, None)
        .await
        .expect_err("held");
    assert_timeout_head(&alone, "lock", &name);
    let text = alone.to_string();
    assert!(text.contains("(held by orders-api@host-3 for "), "{text}");
    assert!(text.ends_with(" ms, no other caller waiting)"), "{text}");

    let other = {
        let lock = waiting.lock(&name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await })
    };
    await_queued(&server, &name, 1).await;
    let behind = waiting
        .lock(&name)
        .try_acquire(wait, None)
        .await
        .expect_err("held");
    assert!(
        behind.to_string().ends_with(", 1 other caller waiting)"),
        "{behind}"
    );
    guard.unlock().await.expect("unlock");
    let next = other.await.expect("join").expect("served at the release");
    next.unlock().await.expect("unlock");
    assert_released(&server, &name);

    let pool = unique_name("err-timeout-sem");
    holding
        .semaphore(&pool)
        .try_set_permits(1)
        .await
        .expect("set");
    let permit = holding.semaphore(&pool).acquire(1).await.expect("free");
    let err = waiting
        .semaphore(&pool)
        .try_acquire(1, wait, None)
        .await
        .expect_err("none free");
    assert_timeout_head(&err, "semaphore", &pool);
    permit.release().await.expect("release");

    let doc = unique_name("err-timeout-rw");
    let write = holding
        .read_write_lock(&doc)
        .write()
        .acquire()
        .await
        .expect("free");
    let err = waiting
        .read_write_lock(&doc)
        .read()
        .try_acquire(wait, None)
        .await
        .expect_err("written");
    assert_timeout_head(&err, "read lock", &doc);
    write.unlock().await.expect("unlock");
    assert_rw_released(&server, &doc);
}

/// An unreachable Redis: one line tells where and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_says_why_in_its_message() {
    let err = LockClient::connect("redis://127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_redis(), "{err}");
    let text = err.to_string();
    assert!(text.contains("redis://127.0.0.1:1"), "{text}");
    assert!(
        text.to_lowercase().contains("connection refused"),
        "the cause is not in the message: {text}"
    );
}

/// Redis code in a locked body, through the `redis` crate lock-runtime re-exports: its errors
/// return with `?` as `LockError::Redis`, and the lock is released.
#[distribute_lock(key = "err-counter:{id}", client = locks)]
async fn bump(locks: &LockClient, url: &str, id: &str) -> Result<i64, LockError> {
    let store = redis::Client::open(url)?;
    let mut connection = store.get_multiplexed_async_connection().await?;
    let value = redis::cmd("INCR")
        .arg(format!("err-data:{id}"))
        .query_async(&mut connection)
        .await?;
    Ok(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_error_returns_with_the_question_mark() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let id = unique_name("bump");
    assert_eq!(bump(&client, &server.url(), &id).await.expect("counted"), 1);
    let _: () = server.cmd(&["SET", &format!("err-data:{id}"), "not a number"]);
    let err = bump(&client, &server.url(), &id)
        .await
        .expect_err("INCR of a string");
    assert!(err.is_redis(), "{err}");
    let text = err.to_string();
    assert!(text.contains("running a command"), "{text}");
    assert!(text.contains("not an integer"), "the cause: {text}");
    assert_released(&server, &format!("err-counter:{id}"));
}

/// `lock_runtime::exec` after the lease ran out names the lock as its caller gave it, not its
/// Redis key; for the write lock too (whose key is `{lock:name}:rw`).
#[distribute_lock(key = "item:{id}", lease = "200ms", on_lease_lost = "continue", client = locks)]
async fn late_write(locks: &LockClient, id: &str) -> Result<(), LockError> {
    // Past the fixed lease: this test is about a write after the lease ran out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut pipe = redis::pipe();
    pipe.set(format!("{{lock:item:{id}}}:data"), "late")
        .ignore();
    lock_runtime::exec(&pipe).await
}

#[distribute_lock(key = "doc:{id}", mode = "write", lease = "200ms", on_lease_lost = "continue", client = locks)]
async fn late_edit(locks: &LockClient, id: &str) -> Result<(), LockError> {
    // Past the fixed lease, as above.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut pipe = redis::pipe();
    pipe.set(format!("{{lock:doc:{id}}}:data"), "late").ignore();
    lock_runtime::exec(&pipe).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_after_the_lease_names_the_lock_not_its_key() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let id = unique_name("late");

    let err = late_write(&client, &id).await.expect_err("lease ran out");
    assert!(
        matches!(&err, LockError::LeaseLost { name } if *name == format!("item:{id}")),
        "{err:?}"
    );
    let err = late_edit(&client, &id).await.expect_err("lease ran out");
    assert!(
        matches!(&err, LockError::LeaseLost { name } if *name == format!("doc:{id}")),
        "{err:?}"
    );
    let written: i64 = server.cmd(&[
        "EXISTS",
        &format!("{{lock:item:{id}}}:data"),
        &format!("{{lock:doc:{id}}}:data"),
    ]);
    assert_eq!(written, 0, "a write after the lease landed");
    assert_released(&server, &format!("item:{id}"));
    assert_rw_released(&server, &format!("doc:{id}"));
}

/// `set_permits_once` tells the total a semaphore already has, where `try_set_permits` could
/// only say `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_permits_again_tells_the_total() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let pool = client.semaphore(unique_name("err-total"));
    assert_eq!(
        pool.set_permits_once(5).await.expect("set"),
        PermitsTotal::Set
    );
    assert_eq!(
        pool.set_permits_once(7).await.expect("set already"),
        PermitsTotal::AlreadySet { total: 5 }
    );
    pool.add_permits(2).await.expect("add");
    assert_eq!(
        pool.set_permits_once(3).await.expect("set already"),
        PermitsTotal::AlreadySet { total: 7 }
    );
    assert!(!pool.try_set_permits(9).await.expect("set already"));
    assert_eq!(pool.available_permits().await.expect("count"), 7);
}
