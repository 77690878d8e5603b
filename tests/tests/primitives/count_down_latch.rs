//! The count-down latch (DESIGN 4.1): every waiter, in every process, released together when the
//! count reaches zero, woken by the message and not by its timer; a latch that goes away
//! (expired, deleted) releases its waiters; misuse is an error; every key has a TTL; a waiter
//! that gives up leaves nothing behind.
//!
//! Several `LockClient`s in one test stand for several processes (each has its own pub/sub
//! connection and hub); the claim about processes runs the `lock-worker` binary.

use std::{
    task::Poll,
    time::{Duration, Instant},
};

use lock_runtime::{CountDownLatch, LockClient, LockError};
use lock_tests::{
    RedisServer, Workers,
    late::{deliver_after_the_memos, first_copy_held, quick_client_through},
    locks::{
        assert_no_key_without_ttl, await_no_subscriptions, await_subscribers, client_with_watchdog,
        connect, eventually, latch_channel, latch_count, latch_key,
    },
    unique_name,
};

use crate::WORKER;

/// Well under the renew interval of a default client (10 s), and of the long-watchdog clients
/// below (200 s): a waiter released within this was woken by the count-down's message.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A waiter not released by then waits for its timer (200 s for a slow-rechecking client,
/// below): the test fails then rather than wait for it.
const GIVE_UP: Duration = Duration::from_secs(10);

/// A client whose waiters look at a latch again only every 200 s (a third of its watchdog
/// timeout) unless a message or the latch key's TTL wakes them first.
async fn slow_rechecking_client(server: &RedisServer) -> LockClient {
    client_with_watchdog(server, Duration::from_secs(600)).await
}

/// Spawns a task that waits for `latch` and returns how long after `since` it was released.
fn spawn_waiter(
    latch: CountDownLatch,
    since: Instant,
) -> tokio::task::JoinHandle<Result<Duration, LockError>> {
    tokio::spawn(async move {
        latch.wait().await?;
        Ok(since.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_in_several_processes_are_released_together_at_zero() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-processes");
    let latch = client.count_down_latch(&name);
    let (processes, count) = (3, 3);
    assert!(latch.try_set_count(count).await.expect("set"));

    let mut workers = (0..processes)
        .fold(Workers::command(WORKER), |workers, _| {
            workers.worker(["latch-wait", &server.url(), &name])
        })
        .spawn();
    for i in 0..processes {
        assert!(
            workers.wait_for_stdout(i, "waiting", Duration::from_secs(20)),
            "worker {i} did not start: {}",
            workers.stdout_so_far(i)
        );
    }
    // Every process's hub subscribed: each waiter found the latch above zero.
    await_subscribers(&server, &latch_channel(&name), processes as i64).await;

    for _ in 1..count {
        latch.count_down().await.expect("count down");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..processes {
        assert!(
            !workers.stdout_so_far(i).contains("released"),
            "worker {i} was released at a count of 1"
        );
    }

    latch.count_down().await.expect("the last count-down");
    let opened = Instant::now();
    let outputs = workers.wait_all_async(Duration::from_secs(20)).await;
    let waited = opened.elapsed();
    for output in &outputs {
        assert!(
            output.status.success() && output.stdout.contains("released"),
            "worker: {:?}\n{}\n{}",
            output.status,
            output.stdout,
            output.stderr
        );
    }
    assert!(
        waited < PROMPTLY,
        "the {processes} processes were released {waited:?} after the last count-down"
    );
    assert_eq!(latch_count(&server, &name), 0);
    assert_no_key_without_ttl(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_several_clients_in_one_process_are_released_together() {
    let server = RedisServer::start();
    let name = unique_name("latch-clients");
    let (clients, tasks_per_client) = (3, 4);
    let mut connected = Vec::new();
    for _ in 0..clients {
        connected.push(connect(&server).await);
    }
    let latch = connected[0].count_down_latch(&name);
    assert!(latch.try_set_count(2).await.expect("set"));

    let start = Instant::now();
    let waiters: Vec<_> = connected
        .iter()
        .flat_map(|client| {
            (0..tasks_per_client).map(|_| spawn_waiter(client.count_down_latch(&name), start))
        })
        .collect();
    await_subscribers(&server, &latch_channel(&name), clients as i64).await;

    latch.count_down().await.expect("count down");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        waiters.iter().all(|waiter| !waiter.is_finished()),
        "a waiter was released at a count of 1"
    );

    let opened = start.elapsed();
    connected[1]
        .count_down_latch(&name)
        .count_down()
        .await
        .expect("the last count-down, from another client");
    for waiter in waiters {
        let released = waiter.await.expect("join").expect("wait");
        assert!(
            released >= opened && released - opened < PROMPTLY,
            "a waiter was released {:?} after the last count-down",
            released.saturating_sub(opened)
        );
    }
    await_no_subscriptions(&server).await;
}

/// The renew interval of the waiter's client is 200 s: a wake within a second is the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_down_to_zero_wakes_waiters_at_once_not_by_their_timer() {
    let server = RedisServer::start();
    let waiting = slow_rechecking_client(&server).await;
    let counting = connect(&server).await;
    let name = unique_name("latch-message");
    let latch = counting.count_down_latch(&name);
    assert!(latch.try_set_count(1).await.expect("set"));

    let start = Instant::now();
    let waiter = spawn_waiter(waiting.count_down_latch(&name), start);
    await_subscribers(&server, &latch_channel(&name), 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "released at a count of 1");

    let opened = start.elapsed();
    latch.count_down().await.expect("count down");
    let released = tokio::time::timeout(GIVE_UP, waiter)
        .await
        .expect("released within GIVE_UP")
        .expect("join")
        .expect("wait");
    assert!(
        released - opened < Duration::from_secs(1),
        "released {:?} after the count-down; the renew interval is 200 s",
        released - opened
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_is_false_on_time_and_true_at_zero() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let latch = client.count_down_latch(unique_name("latch-timeout"));

    assert!(
        latch.wait_timeout(Duration::MAX).await.expect("wait"),
        "a latch that does not exist is open"
    );
    latch.try_set_count(1).await.expect("set");
    assert!(!latch.wait_timeout(Duration::ZERO).await.expect("one look"));

    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    assert!(!latch.wait_timeout(timeout).await.expect("wait"));
    let waited = start.elapsed();
    assert!(
        waited >= timeout && waited < timeout + Duration::from_millis(500),
        "wait_timeout({timeout:?}) returned after {waited:?}"
    );

    let waiter = {
        let latch = latch.clone();
        tokio::spawn(async move { latch.wait_timeout(Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    latch.count_down().await.expect("count down");
    assert!(
        tokio::time::timeout(PROMPTLY, waiter)
            .await
            .expect("released promptly")
            .expect("join")
            .expect("wait"),
        "reached zero in time"
    );
}

/// A latch deleted behind its waiters' backs (an operator's `DEL`) is open: a waiter sees it
/// within one renew interval of its client (300 ms here), without any message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_latch_releases_its_waiters_within_one_renew_interval() {
    let server = RedisServer::start();
    let client = client_with_watchdog(&server, Duration::from_millis(900)).await;
    let name = unique_name("latch-deleted");
    let latch = client.count_down_latch(&name);
    latch.try_set_count(5).await.expect("set");

    let start = Instant::now();
    let waiter = spawn_waiter(latch.clone(), start);
    await_subscribers(&server, &latch_channel(&name), 1).await;
    let deleted = start.elapsed();
    let _: i64 = server.cmd(&["DEL", &latch_key(&name)]);
    let released = tokio::time::timeout(GIVE_UP, waiter)
        .await
        .expect("released within GIVE_UP")
        .expect("join")
        .expect("wait");
    assert!(
        released - deleted < Duration::from_millis(300) + Duration::from_millis(500),
        "released {:?} after the DEL; the renew interval is 300 ms",
        released - deleted
    );
}

/// A waiter never sleeps past the latch key's TTL: at its expiry the latch is open, even for a
/// client that otherwise looks again only every 200 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_latch_releases_its_waiters_at_the_expiry() {
    let server = RedisServer::start();
    let client = slow_rechecking_client(&server).await;
    let name = unique_name("latch-expired");
    let latch = client.count_down_latch(&name);
    latch.try_set_count(5).await.expect("set");
    let ttl = Duration::from_millis(500);
    let start = Instant::now();
    let _: i64 = server.cmd(&["PEXPIRE", &latch_key(&name), &ttl.as_millis().to_string()]);

    tokio::time::timeout(GIVE_UP, latch.wait())
        .await
        .expect("released within GIVE_UP")
        .expect("wait");
    let waited = start.elapsed();
    assert!(
        waited < ttl + Duration::from_millis(500),
        "released {waited:?} after the TTL of {ttl:?} was set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_set_count_sets_once_and_refuses_a_count_of_zero() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-set");
    let latch = client.count_down_latch(&name);

    for count in [0, u64::MAX] {
        let err = latch.try_set_count(count).await.expect_err("misuse");
        assert!(
            matches!(
                err,
                LockError::Config {
                    mistake: lock_runtime::Mistake::InvalidArgument,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&name), "{err}");
    }
    assert_eq!(
        server.keys(&format!("*{name}*")),
        Vec::<String>::new(),
        "nothing sent"
    );

    assert!(latch.try_set_count(2).await.expect("set"));
    assert!(!latch.try_set_count(7).await.expect("exists"));
    assert_eq!(latch_count(&server, &name), 2, "the first count stands");

    latch.count_down().await.expect("count down");
    latch.count_down().await.expect("count down");
    assert!(
        latch.try_set_count(1).await.expect("set again"),
        "a latch at zero is gone: it can be set again"
    );
    let largest = u64::try_from(i64::MAX).expect("fits");
    let big = client.count_down_latch(unique_name("latch-big"));
    assert!(big.try_set_count(largest).await.expect("set"));
    big.count_down().await.expect("count down");
    assert_eq!(big.count().await.expect("count"), largest - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_reports_the_count_and_zero_without_a_latch() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-count");
    let latch = client.count_down_latch(&name);

    assert_eq!(latch.count().await.expect("count"), 0);
    latch.try_set_count(3).await.expect("set");
    for expected in [2, 1, 0] {
        latch.count_down().await.expect("count down");
        assert_eq!(latch.count().await.expect("count"), expected);
    }
    let exists: i64 = server.cmd(&["EXISTS", &latch_key(&name)]);
    assert_eq!(exists, 0, "the count-down to zero deletes the latch");
}

/// The key expires `CountDownLatch::TTL` after it was set, and every count-down above zero
/// re-arms it; the record of the requests expires too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latch_key_has_a_ttl_rearmed_by_each_count_down() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-ttl");
    let latch = client.count_down_latch(&name);
    let key = latch_key(&name);
    let ttl_ms = i64::try_from(CountDownLatch::TTL.as_millis()).expect("fits");
    let pttl = || server.cmd::<i64>(&["PTTL", &key]);

    latch.try_set_count(3).await.expect("set");
    let set = pttl();
    assert!(
        set > ttl_ms - 60_000 && set <= ttl_ms,
        "pttl {set} ms after try_set_count"
    );
    let _: i64 = server.cmd(&["PEXPIRE", &key, "5000"]);
    latch.count_down().await.expect("count down");
    let rearmed = pttl();
    assert!(
        rearmed > ttl_ms - 60_000,
        "pttl {rearmed} ms after a count-down"
    );
    assert_no_key_without_ttl(&server, &name);
}

/// A waiter whose future is dropped takes nothing in Redis and leaves the channel; the latch is
/// as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_leaves_nothing_behind() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-cancel");
    let latch = client.count_down_latch(&name);
    latch.try_set_count(1).await.expect("set");
    let keys = || {
        let mut keys = server.keys(&format!("*{name}*"));
        keys.sort();
        keys
    };
    let before = keys();

    tokio::time::timeout(Duration::from_millis(300), latch.wait())
        .await
        .expect_err("still at 1: the wait is cut short");
    let waiter = tokio::spawn({
        let latch = latch.clone();
        async move { latch.wait().await }
    });
    await_subscribers(&server, &latch_channel(&name), 1).await;
    waiter.abort();
    assert!(waiter.await.expect_err("aborted").is_cancelled());

    await_no_subscriptions(&server).await;
    assert_eq!(keys(), before, "no key added");
    assert_eq!(latch_count(&server, &name), 1, "the count is untouched");
    latch.count_down().await.expect("count down");
    assert_no_key_without_ttl(&server, &name);
}

/// A count-down cut short after it started still counts down, once, in the background. Its
/// reply is held at the proxy until the future is dropped: without that, a reply quick enough
/// (the test's thread descheduled in the middle of its poll) made the first poll ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_down_cut_short_finishes_in_the_background() {
    let server = RedisServer::start();
    let proxy = lock_tests::TcpProxy::start(server.port()).await;
    let client = LockClient::connect(&proxy.url()).await.expect("connect");
    let name = unique_name("latch-cut");
    let latch = client.count_down_latch(&name);
    latch.try_set_count(3).await.expect("set");

    // Polled once (the request is on its way), then dropped.
    proxy.hold_replies(true);
    let mut counting = Box::pin(latch.count_down());
    let first = std::future::poll_fn(|cx| Poll::Ready(counting.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "no reply within one poll: {first:?}");
    drop(counting);
    proxy.hold_replies(false);
    assert!(
        eventually(Duration::from_secs(5), || latch_count(&server, &name) == 2).await,
        "the count-down finished in the background"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(latch_count(&server, &name), 2, "counted once");
}

/// A count-down on a latch that does not exist creates nothing and takes no count below zero;
/// it wakes the waiters of a latch deleted behind their backs, who see it open at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_down_on_a_missing_latch_is_harmless_and_wakes_its_waiters() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("latch-missing");
    let latch = client.count_down_latch(&name);

    latch.count_down().await.expect("nothing to count down");
    let exists: i64 = server.cmd(&["EXISTS", &latch_key(&name)]);
    assert_eq!(exists, 0, "no latch made");
    assert_eq!(latch.count().await.expect("count"), 0);
    assert!(
        latch.try_set_count(2).await.expect("set"),
        "a count-down before the set left nothing in the way"
    );

    let waiting = slow_rechecking_client(&server).await;
    let start = Instant::now();
    let waiter = spawn_waiter(waiting.count_down_latch(&name), start);
    await_subscribers(&server, &latch_channel(&name), 1).await;
    let _: i64 = server.cmd(&["DEL", &latch_key(&name)]);
    let counted = start.elapsed();
    latch
        .count_down()
        .await
        .expect("count down the deleted latch");
    let released = tokio::time::timeout(GIVE_UP, waiter)
        .await
        .expect("released within GIVE_UP")
        .expect("join")
        .expect("wait");
    assert!(
        released - counted < Duration::from_secs(1),
        "released {:?} after the count-down; the renew interval is 200 s",
        released - counted
    );
    assert_no_key_without_ttl(&server, &name);
}

/// Another program's key at the latch's name is reported and left untouched, by every
/// operation; a name the key scheme cannot hold is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_is_an_error_and_left_untouched() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    for (prefix, occupy) in [
        ("latch-hash", &["HSET", "field", "x"][..]),
        ("latch-text", &["SET", "not a count"][..]),
    ] {
        let name = unique_name(prefix);
        let key = latch_key(&name);
        let mut command = vec![occupy[0], &key];
        command.extend(&occupy[1..]);
        let _: redis::Value = server.cmd(&command);
        let dumped: Vec<u8> = server.cmd(&["DUMP", &key]);
        let latch = client.count_down_latch(&name);
        let errors = [
            latch.try_set_count(1).await.map(drop),
            latch.count_down().await,
            latch.count().await.map(drop),
            latch.wait().await,
        ];
        for outcome in errors {
            let err = outcome.expect_err("another program's key");
            assert!(matches!(err, LockError::WrongType { .. }), "{err}");
        }
        assert_eq!(
            server.cmd::<Vec<u8>>(&["DUMP", &key]),
            dumped,
            "left untouched"
        );
    }
    let err = client
        .count_down_latch("a{b}")
        .count()
        .await
        .expect_err("braces");
    assert!(matches!(err, LockError::InvalidName { .. }), "{err}");
}

/// The scripts answer a resent request (the same request id, recorded in the latch's
/// `requests` set) with what the first attempt did: a count-down resent after a lost reply
/// counts once, and a resent set still says it set the count. No memo key is written.
#[test]
fn a_resent_request_is_answered_from_its_record() {
    let server = RedisServer::start();
    let script = |file: &str| {
        lock_runtime::testing::scripts::count_down_latch()
            .into_iter()
            .find_map(|(name, source)| (name == file).then_some(source))
            .unwrap_or_else(|| panic!("the latch has no script {file}"))
    };
    let name = unique_name("latch-resend");
    let (key, channel) = (latch_key(&name), latch_channel(&name));
    let requests = format!("{key}:requests");
    let set = || -> i64 {
        server.cmd(&[
            "EVAL",
            script("try_set_count.lua"),
            "2",
            &key,
            &requests,
            "3",
            "60000",
            "client:r1",
            "900000",
        ])
    };
    assert_eq!(set(), 1);
    assert_eq!(set(), 1, "the resend says what the first attempt did");

    let count_down = |request: &str, horizon_ms: &str| -> i64 {
        server.cmd(&[
            "EVAL",
            script("count_down.lua"),
            "3",
            &key,
            &channel,
            &requests,
            "all",
            "publish",
            "60000",
            request,
            horizon_ms,
        ])
    };
    assert_eq!(count_down("client:r2", "900000"), 2);
    assert_eq!(
        count_down("client:r2", "900000"),
        2,
        "answered from the record"
    );
    assert_eq!(latch_count(&server, &name), 2, "counted down once");
    let mut keys = server.keys(&format!("*{name}*"));
    keys.sort();
    assert_eq!(
        keys,
        [key.clone(), requests.clone()],
        "the latch and its requests, no memo"
    );
    assert_no_key_without_ttl(&server, &name);

    // Each write keeps only the requests of the horizon (here 100 ms) and sets it as the TTL.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count_down("client:r3", "100"), 2);
    let recorded: Vec<String> = server.cmd(&["ZRANGE", &requests, "0", "-1"]);
    assert_eq!(recorded, ["client:r3"], "older requests trimmed");
    let ttl: i64 = server.cmd(&["PTTL", &requests]);
    assert!(ttl > 0 && ttl <= 100, "pttl {ttl}");
}

/// A count-down's first copy stuck on a retired connection lands after the client's memos are
/// gone (DESIGN 3.2: a copy counts once, however late). Three count-downs are in flight at once,
/// each resent on a fresh connection and answered:
///
/// - `same`: set to 3 and counted down to 2 before; the resend counts it to 1, and the late copy
///   must not count it again;
/// - `next`: set to 1; the resend opens it, a new latch of the same name is set to 2, and the
///   late copy must not count the new latch down;
/// - `unset`: no latch; the resend finds none (a count-down lost, as documented), a latch is set
///   to 1 afterwards, and the late copy must not count it down.
///
/// Before request ids were kept in the latch's own keys, the copies counted from their memos'
/// expiry on: `same` was left at 0, `next` at 1 and `unset` open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_count_down_counts_once() {
    let server = RedisServer::start();
    let proxy = lock_tests::TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;
    let [same, next, unset] = ["latch-late-same", "latch-late-next", "latch-late-unset"]
        .map(|prefix| client.count_down_latch(unique_name(prefix)));
    assert!(same.try_set_count(3).await.expect("set"));
    same.count_down().await.expect("count down");
    assert!(next.try_set_count(1).await.expect("set"));

    let counted = first_copy_held(&proxy, async {
        tokio::join!(same.count_down(), next.count_down(), unset.count_down())
    })
    .await;
    for (latch, outcome) in [(&same, counted.0), (&next, counted.1), (&unset, counted.2)] {
        outcome.unwrap_or_else(|err| panic!("count down {}: {err}", latch.name()));
    }
    assert_eq!(latch_count(&server, same.name()), 1, "`same` counted once");
    assert_eq!(latch_count(&server, next.name()), 0, "`next` opened");
    assert!(next.try_set_count(2).await.expect("set the next latch"));
    assert!(unset.try_set_count(1).await.expect("set"));

    deliver_after_the_memos(&server, &proxy, &[same.name(), next.name(), unset.name()]).await;
    assert_eq!(
        latch_count(&server, same.name()),
        1,
        "the late copy counted `same` down a second time"
    );
    assert_eq!(
        latch_count(&server, next.name()),
        2,
        "the late copy of the count-down that opened `next` counted the new latch down"
    );
    assert_eq!(
        latch_count(&server, unset.name()),
        1,
        "the late copy of a count-down that found no latch counted the latch set afterwards"
    );
    for latch in [&same, &next, &unset] {
        while latch.count().await.expect("count") > 0 {
            latch.count_down().await.expect("count down");
        }
        assert_no_key_without_ttl(&server, latch.name());
    }
}

/// A `try_set_count` whose first copy lands after the latch it set has opened, and after the
/// client's memos are gone, must not set the latch again: its waiters were released, and a latch
/// set again would hold whoever waits next until its TTL (24 hours). Before, it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_try_set_count_does_not_set_an_opened_latch_again() {
    let server = RedisServer::start();
    let proxy = lock_tests::TcpProxy::start(server.port()).await;
    let client = quick_client_through(&proxy).await;
    let name = unique_name("latch-late-set");
    let latch = client.count_down_latch(&name);
    // Warm-up: the client's connection is open and the script cached before the fault.
    assert_eq!(latch.count().await.expect("count"), 0);

    let set = first_copy_held(&proxy, latch.try_set_count(1)).await;
    assert!(
        set.expect("set"),
        "the resend answers what the first attempt did"
    );
    latch.count_down().await.expect("count down to zero");
    assert!(latch.wait_timeout(Duration::ZERO).await.expect("open"));

    deliver_after_the_memos(&server, &proxy, &[&name]).await;
    let exists: i64 = server.cmd(&["EXISTS", &latch_key(&name)]);
    assert_eq!(
        exists,
        0,
        "the late copy set the opened latch again, to {}",
        latch_count(&server, &name)
    );
    assert!(
        latch.try_set_count(2).await.expect("set"),
        "the next generation is set by its own call"
    );
    latch.count_down().await.expect("count down");
    latch.count_down().await.expect("count down");
    assert_no_key_without_ttl(&server, &name);
}
