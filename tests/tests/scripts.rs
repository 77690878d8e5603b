//! The Lua scripts' resend contract, driven directly: a request resent after a timeout or a
//! reconnect must not change the outcome (Redisson issues 7367, 4822, 4178 and 4871).

use lock_tests::{RedisServer, locks::lock_key, unique_name};

const ACQUIRE: &str = include_str!("../../lock-runtime/src/scripts/acquire.lua");
const RELEASE: &str = include_str!("../../lock-runtime/src/scripts/release.lua");

struct Keys {
    lock: String,
    fence: String,
    channel: String,
}

fn keys(name: &str) -> Keys {
    let lock = lock_key(name);
    Keys {
        fence: format!("{lock}:fence"),
        channel: format!("{lock}:unlock"),
        lock,
    }
}

fn acquire_fresh(server: &RedisServer, keys: &Keys, owner: &str) -> (i64, i64) {
    server.cmd(&[
        "EVAL",
        ACQUIRE,
        "2",
        &keys.lock,
        &keys.fence,
        owner,
        "10000",
        "fresh",
    ])
}

fn reenter(server: &RedisServer, keys: &Keys, owner: &str, memo: &str) -> (i64, i64) {
    server.cmd(&[
        "EVAL",
        ACQUIRE,
        "3",
        &keys.lock,
        &keys.fence,
        memo,
        owner,
        "0",
        "reenter",
        "10000",
    ])
}

fn release(server: &RedisServer, keys: &Keys, owner: &str, memo: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        RELEASE,
        "3",
        &keys.lock,
        &keys.channel,
        memo,
        owner,
        "unlock",
        "10000",
        "publish",
    ])
}

fn holds(server: &RedisServer, keys: &Keys, owner: &str) -> Option<i64> {
    server.cmd(&["HGET", &keys.lock, owner])
}

#[test]
fn a_resent_fresh_acquisition_counts_once_and_returns_the_same_token() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-acquire"));

    let first = acquire_fresh(&server, &keys, "client:1");
    let resent = acquire_fresh(&server, &keys, "client:1");

    assert_eq!(first, (1, 1));
    assert_eq!(resent, first, "the resend answers like the first attempt");
    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(1),
        "one hold, not two"
    );
    assert_eq!(
        release(
            &server,
            &keys,
            "client:1",
            &format!("{}:memo:r1", keys.lock)
        ),
        1
    );
    let exists: i64 = server.cmd(&["EXISTS", &keys.lock]);
    assert_eq!(exists, 0, "a single release frees it");
}

#[test]
fn another_owner_is_refused_with_the_remaining_ttl() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("other-owner"));

    acquire_fresh(&server, &keys, "client:1");
    let (status, ttl) = acquire_fresh(&server, &keys, "client:2");

    assert_eq!(status, 0);
    assert!(ttl > 9_000 && ttl <= 10_000, "remaining TTL {ttl}");
    assert_eq!(holds(&server, &keys, "client:2"), None);
}

#[test]
fn a_resent_reentry_counts_once() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-reentry"));
    let memo = format!("{}:memo:r2", keys.lock);

    let (_, token) = acquire_fresh(&server, &keys, "client:1");
    assert_eq!(reenter(&server, &keys, "client:1", &memo), (2, token));
    assert_eq!(reenter(&server, &keys, "client:1", &memo), (2, token));

    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(2),
        "two holds, not three"
    );
    let fence: i64 = server.cmd(&["GET", &keys.fence]);
    assert_eq!(fence, token, "re-entry does not move the fencing counter");
}

#[test]
fn a_reentry_into_a_lost_lock_is_refused() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("lost-reentry"));

    let answer = reenter(
        &server,
        &keys,
        "client:1",
        &format!("{}:memo:r3", keys.lock),
    );

    assert_eq!(answer, (-2, 0));
    let exists: i64 = server.cmd(&["EXISTS", &keys.lock]);
    assert_eq!(exists, 0, "nothing taken");
}

#[test]
fn a_resent_release_reports_the_first_attempts_result_and_counts_once() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-release"));
    let memo = format!("{}:memo:r4", keys.lock);
    acquire_fresh(&server, &keys, "client:1");
    reenter(
        &server,
        &keys,
        "client:1",
        &format!("{}:memo:r5", keys.lock),
    );

    assert_eq!(
        release(&server, &keys, "client:1", &memo),
        2,
        "one hold left"
    );
    assert_eq!(
        release(&server, &keys, "client:1", &memo),
        2,
        "the resend says the same"
    );
    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(1),
        "decremented once"
    );

    let last = format!("{}:memo:r6", keys.lock);
    assert_eq!(release(&server, &keys, "client:1", &last), 1, "released");
    assert_eq!(
        release(&server, &keys, "client:1", &last),
        1,
        "not `not held`"
    );
    for memo in [&memo, &last] {
        let ttl: i64 = server.cmd(&["PTTL", memo]);
        assert!(ttl > 0, "memo {memo} expires");
    }
}
