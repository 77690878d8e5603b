//! Short network blips (DESIGN 3.2): an operation recovers within about one response timeout of
//! the network coming back, a guard never trusts more lease than Redis granted, a release once
//! started finishes even when its caller stops waiting, and a request still queued on a
//! connection the client retired cannot take the lock for an owner that gave up.
//!
//! Every client here goes through a [`TcpProxy`]. Its settings are the defaults (DESIGN 3.2),
//! except where a test is about the response timeout or needs a connection retired by it: those
//! use a 300 ms response timeout, and say why.
//! Each test first takes and releases the lock once, so Redis has the scripts cached: the fault
//! then hits the lock's own request, not the `NOSCRIPT` round trip of a cold server (a cold
//! `EVALSHA` does nothing, which would hide what a late or lost request does). One test flushes
//! the scripts on purpose, after that.

use std::time::{Duration, Instant};

use lock_runtime::{LockClient, LockGuard};
use lock_tests::{
    RedisServer, TcpProxy,
    late::assert_resend_answers,
    locks::{
        Family, assert_released, await_one_subscription, eventually, is_held, lock_key, take_once,
    },
    unique_name,
};

/// The response timeout of [`impatient_client_through`]'s clients.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);

/// A client through `proxy` with the default settings.
async fn client_through(proxy: &TcpProxy) -> LockClient {
    LockClient::connect(&proxy.url()).await.expect("connect")
}

/// A client through `proxy` that gives up on an unanswered command after [`RESPONSE_TIMEOUT`]
/// (other settings at their defaults: a 5 s connect timeout), for the tests about that setting
/// (recovering within about one response timeout of a blip) and those whose fault needs a
/// connection the client retired after a response timeout (at the default 3 s they would wait
/// it out several times over).
async fn impatient_client_through(proxy: &TcpProxy) -> LockClient {
    LockClient::builder()
        .url(proxy.url())
        .response_timeout(RESPONSE_TIMEOUT)
        .build()
        .await
        .expect("connect")
}

/// What is wrong with a guard obtained through a blip that healed `since_heal` ago, if
/// anything: it came back too late, its lease is already known lost, or it trusts more lease
/// than the key has left in Redis. `PTTL` is read before `remaining_lease()`, so the comparison
/// leans towards the guard.
fn blip_problems(
    server: &RedisServer,
    name: &str,
    guard: &LockGuard,
    since_heal: Duration,
) -> Vec<String> {
    let pttl: i64 = server.cmd(&["PTTL", &lock_key(name)]);
    let remaining = guard.remaining_lease();
    let mut problems = Vec::new();
    if since_heal >= Duration::from_millis(1_500) {
        problems.push(format!(
            "try_acquire returned {since_heal:?} after the network healed; it must recover within \
             about a response timeout ({RESPONSE_TIMEOUT:?}), not a connect timeout (5 s) later"
        ));
    }
    if guard.is_lease_lost() {
        problems.push(format!(
            "the guard was handed out with its lease already lost (remaining_lease {remaining:?})"
        ));
    }
    let slack = Duration::from_millis(50);
    let redis_left = Duration::from_millis(u64::try_from(pttl).unwrap_or(0));
    if remaining > redis_left + slack {
        problems.push(format!(
            "the guard trusts {remaining:?} of lease but Redis expires the key in {pttl} ms: \
             its deadline must not be later than the key's expiry"
        ));
    }
    problems
}

/// The server's replies are lost for 0.9 s while `try_acquire(10 s, Some(4 s))` is in flight on
/// a free lock; requests still reach Redis and run. The first attempt takes the lock, its reply
/// never comes; after the response timeout the client resends on a new connection, whose
/// handshake replies are lost too, so that connection never becomes ready. A connection that
/// lost a reply never answers in step again (like a flow a NAT forgot), so only the client's
/// timeouts can get it out.
///
/// Required: `try_acquire` returns within 1.5 s of the network healing, with a guard whose lease
/// is not lost and whose deadline is not later than the key's expiry in Redis. Before the core rewrite (issue 8), the new
/// connection waits out its 5 s connect timeout: the guard comes back ~4.6 s after healing, its
/// deadline counted from a send ~5 s earlier, so it is handed out already lost
/// (`remaining_lease() == 0`), while Redis holds the lock afresh for 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_cost_about_a_response_timeout_and_no_lease() {
    acquire_through_a_blip(ReplyFault::Lost).await;
}

/// What happens to Redis's replies for 0.9 s in [`acquire_through_a_blip`].
#[derive(Debug, Clone, Copy)]
enum ReplyFault {
    /// Thrown away (`TcpProxy::drop_replies`).
    Lost,
    /// Held, then delivered (`TcpProxy::hold_replies`).
    Late,
}

/// `try_acquire(10 s, Some(4 s))` of a free lock while Redis's replies suffer `fault` for 0.9 s;
/// then the guard is checked against [`blip_problems`].
async fn acquire_through_a_blip(fault: ReplyFault) {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    // About the response timeout: recovery within about one of it, and a resend (of an
    // acquisition whose reply is late) only after it; 300 ms, so that it falls within the blip.
    let client = impatient_client_through(&proxy).await;
    let name = unique_name("reply-blip");
    // The scripts are cached in Redis before the fault.
    take_once(&client, &name).await;
    let set_fault = |on| match fault {
        ReplyFault::Lost => proxy.drop_replies(on),
        ReplyFault::Late => proxy.hold_replies(on),
    };

    set_fault(true);
    let lock = client.lock(&name);
    let acquiring = tokio::spawn(async move {
        lock.try_acquire(Duration::from_secs(10), Some(Duration::from_secs(4)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(900)).await;
    set_fault(false);
    let healed = Instant::now();
    let guard = tokio::time::timeout(Duration::from_secs(12), acquiring)
        .await
        .expect("try_acquire returns within its 10 s wait")
        .expect("join")
        .expect("the lock is free: try_acquire succeeds once the replies come through");
    let since_heal = healed.elapsed();
    println!("{fault:?} replies: try_acquire returned {since_heal:?} after the network healed");

    let problems = blip_problems(&server, &name, &guard, since_heal);
    assert!(
        problems.is_empty(),
        "after 0.9 s of {fault:?} replies:\n{}",
        problems.join("\n")
    );
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// The server's replies are late by 0.9 s (held, then delivered) while `try_acquire(10 s,
/// Some(4 s))` is in flight on a free lock. The first attempt takes the lock at once and sets
/// its 4 s TTL; the client times out and resends, and the resend finds its own hold.
///
/// Required: the guard's deadline is never later than the key's expiry in Redis (DESIGN 3.2: it
/// counts from the send of the request whose execution set the TTL, or the resend re-arms the
/// TTL). Before the core rewrite (issue 8), the resend does not touch the TTL but the guard counts its lease from the resend,
/// ~0.3 s after the TTL was set: it trusts ~270 ms more than Redis grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_never_leave_the_guard_trusting_more_than_redis_grants() {
    acquire_through_a_blip(ReplyFault::Late).await;
}

/// A release once started always finishes, whoever stops waiting for it (DESIGN 3.0, 3.2).
/// The holder (fixed lease 8 s) calls `unlock()` while the network is down and gives up after
/// 700 ms (`tokio::time::timeout`). The partition then ends with its connections reset (a
/// firewall or NAT that dropped the flows), so the bytes queued in them never reach Redis: only
/// a release that goes on in the background, on a new connection, frees the lock.
///
/// Required: the lock is gone from Redis within 1.5 s of the network healing. Before the core rewrite (issue 8), the release
/// dies with the caller's future and the lock stays held until its lease runs out (8 s).
/// (Without the reset, the held request would reach Redis at healing and release the lock by
/// luck, which is why the reset is part of the fault.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_unlock_still_releases_the_lock_once_the_network_heals() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = client_through(&proxy).await;
    let name = unique_name("cancelled-unlock");
    // The scripts are cached in Redis before the fault.
    take_once(&client, &name).await;
    let lease = Duration::from_secs(8);
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(lease))
        .await
        .expect("acquire");

    proxy.blackhole(true);
    let unlocked = tokio::time::timeout(Duration::from_millis(700), guard.unlock()).await;
    assert!(
        unlocked.is_err(),
        "unlock() cannot be confirmed while the network is down: {unlocked:?}"
    );
    // The partition ends with its connections reset; give the reset time to land before the
    // blackhole lifts, so nothing queued in the old connections gets through.
    proxy.drop_connections();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.blackhole(false);
    let healed = Instant::now();

    let released = eventually(Duration::from_millis(1_500), || !is_held(&server, &name)).await;
    let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
    assert!(
        released,
        "the lock is still held {:?} after the network healed (pttl {pttl} ms of the {lease:?} \
         lease): the cancelled unlock did not go on in the background",
        healed.elapsed()
    );
    assert_released(&server, &name);
}

/// The same cancelled unlock without the reset, but right after Redis lost its script cache (a
/// restart, a failover, `SCRIPT FLUSH`): the blackhole holds the release's `EVALSHA` and
/// delivers it at healing, where Redis answers `NOSCRIPT`. Only a release that goes on after its
/// caller gave up can send the script again.
///
/// Required: the lock is gone from Redis within 1.5 s of the network healing. Before the core rewrite (issue 8), nobody
/// resends and the lock stays held until its 8 s lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_unlock_still_releases_the_lock_after_redis_lost_its_scripts() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = client_through(&proxy).await;
    let name = unique_name("cancelled-unlock-noscript");
    // The scripts are cached in Redis before the fault.
    take_once(&client, &name).await;
    let lease = Duration::from_secs(8);
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(lease))
        .await
        .expect("acquire");
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    if server.version().redis_7_or_newer() {
        let _: () = server.cmd(&["FUNCTION", "FLUSH"]);
    }

    proxy.blackhole(true);
    let unlocked = tokio::time::timeout(Duration::from_millis(700), guard.unlock()).await;
    assert!(
        unlocked.is_err(),
        "unlock() cannot be confirmed while the network is down: {unlocked:?}"
    );
    proxy.blackhole(false);
    let healed = Instant::now();

    let released = eventually(Duration::from_millis(1_500), || !is_held(&server, &name)).await;
    let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
    assert!(
        released,
        "the lock is still held {:?} after the network healed (pttl {pttl} ms of the {lease:?} \
         lease): the cancelled unlock's NOSCRIPT was never followed by the script",
        healed.elapsed()
    );
    assert_released(&server, &name);
}

/// How the waiter of [`a_stuck_request_after_the_waiter_gave_up`] gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GiveUp {
    /// Its `try_acquire(2.5 s, None)` wait ends (`Timeout`).
    WaitEnds,
    /// Its future is dropped (the task aborted) as soon as its retry is stuck, while that
    /// request is unanswered.
    Dropped,
}

/// A request still queued on a retired connection cannot take the lock for an owner that gave up
/// (DESIGN 3.2). Another client holds the lock (fixed lease 10 s); our waiter sleeps on the
/// unlock channel. Every connection our client has open is then held by the proxy (requests
/// read, not forwarded) and its pub/sub connection is killed: the hub reconnects on a new
/// connection, resubscribes and wakes the waiter (DESIGN 3.3), whose retry gets stuck on the
/// held command connection; after the response timeout the client retires that connection and
/// goes on on a new one. The waiter gives up (`give_up`), the holder releases, and only then
/// the stuck request reaches Redis.
///
/// Required: that late request does not take the lock: no lock key stays, and a third client
/// acquires at once.
async fn a_stuck_request_after_the_waiter_gave_up(give_up: GiveUp) {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    // The stuck request must sit on a connection the client retired after a response timeout:
    // 300 ms rather than 3 s, for run time only. What the late request may do does not depend
    // on it (a copy can land ~15 minutes late whatever the client's timeouts).
    let waiting = impatient_client_through(&proxy).await;
    let holding = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("stuck-request");
    // The scripts are cached in Redis before the fault.
    take_once(&waiting, &name).await;

    let holder = holding
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_secs(10)))
        .await
        .expect("holder");
    let lock = waiting.lock(&name);
    let waiter =
        tokio::spawn(async move { lock.try_acquire(Duration::from_millis(2_500), None).await });
    await_one_subscription(&server, &name).await;
    // Let the retry that follows the confirmed subscription come back, so the waiter sleeps.
    tokio::time::sleep(Duration::from_millis(200)).await;

    proxy.hold_connections();
    assert_eq!(
        server.client_kill("TYPE pubsub"),
        1,
        "the waiting client's pub/sub connection"
    );
    assert!(
        eventually(Duration::from_secs(3), || proxy.held_bytes() > 0).await,
        "set-up: after its pub/sub connection came back, the waiter's retry should be stuck on \
         the held command connection, but nothing was sent on it"
    );
    match give_up {
        GiveUp::WaitEnds => {
            let gave_up = tokio::time::timeout(Duration::from_secs(8), waiter)
                .await
                .expect("the waiter's 2.5 s wait ends")
                .expect("join");
            assert!(
                gave_up.is_err(),
                "the lock stayed held by the other client for the whole wait, yet the waiter got it"
            );
        }
        GiveUp::Dropped => {
            waiter.abort();
            assert!(
                waiter.await.expect_err("aborted").is_cancelled(),
                "the waiter was dropped while waiting"
            );
            // The stuck request outlives every response timeout: whatever the client sends
            // after the drop on the held connection times out and goes out on a new one.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    holder.unlock().await.expect("holder unlock");
    proxy.release_held();
    assert!(
        eventually(Duration::from_secs(3), || proxy.held_bytes() == 0).await,
        "the held request was delivered"
    );
    // Time for Redis to run what was delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if is_held(&server, &name) {
        let owners: Vec<String> = server.cmd(&["HKEYS", &lock_key(&name)]);
        let pttl: i64 = server.cmd(&["PTTL", &lock_key(&name)]);
        panic!(
            "the stuck request of a waiter that gave up ({give_up:?}) took the lock after the \
             holder released it: owners {owners:?} (our client id {}), pttl {pttl} ms",
            waiting.id()
        );
    }
    let third = LockClient::connect(&server.url()).await.expect("connect");
    let guard = third
        .lock(&name)
        .try_acquire(Duration::from_millis(500), None)
        .await
        .expect("nobody holds the lock: a third client gets it at once");
    guard.unlock().await.expect("unlock");
    assert_released(&server, &name);
}

/// [`a_stuck_request_after_the_waiter_gave_up`], the waiter's 2.5 s wait ending. Before the core rewrite (issue 8), the stuck
/// request takes the free lock under the waiter's owner id with a 30 s watchdog lease that
/// nobody renews or releases: the lock is stuck for 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_on_a_retired_connection_cannot_take_the_lock_after_the_wait_ended() {
    a_stuck_request_after_the_waiter_gave_up(GiveUp::WaitEnds).await;
}

/// [`a_stuck_request_after_the_waiter_gave_up`], the waiter's future dropped while its retry is
/// stuck, and the stuck request delivered a second later. Before the core rewrite (issue 8), the drop sends an undo release;
/// it times out on the held connection, is resent on a new one, finds nothing to release (the
/// acquire has not run yet) and memoises that answer, so the late acquire takes the lock for
/// 30 s and the late copy of the undo only replays the memo. (Delivered at once, the undo
/// queued behind the acquire on the same connection would release it: the delay is what makes
/// the connection a retired one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_on_a_retired_connection_cannot_take_the_lock_after_the_waiter_was_dropped()
{
    a_stuck_request_after_the_waiter_gave_up(GiveUp::Dropped).await;
}

/// How the hold of a release whose reply is lost ended before its resend lands, in
/// [`a_resent_unlock_answers_what_its_first_copy_did`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldEnd {
    /// The first copy released it.
    Released,
    /// It was gone before the first copy ran (as a lease that ran out with the lock's TTL
    /// leaves it).
    Lost,
    /// A read hold the first copy released beside another client's, which still holds the
    /// lock when the resend lands.
    ReleasedBeside,
    /// A read hold beside another client's, whose lease ended before the first copy ran: that
    /// copy drops it (noted lost) and finds nothing to release.
    LostBeside,
}

impl HoldEnd {
    /// Whether another client's read hold shares the lock.
    fn beside(self) -> bool {
        matches!(self, Self::ReleasedBeside | Self::LostBeside)
    }
}

/// An unlock whose first copy runs in Redis but whose reply is lost is resent after the
/// response timeout (default settings). Meanwhile another client takes the lock and releases it,
/// or, for the read holds, holds it beside until the resend is answered. The resend answers what
/// the first copy did, from the lock's fencing state and its notes of lost holds, with no memo:
/// `Ok` if that copy released the hold, `NotHeld` if it was already gone (the other client's
/// take noted the lock's period lost, or the first copy noted the hold it dropped). Without the
/// notes the resend would answer released for a lost hold; without the state's count past a
/// released period (or, beside another hold, the period still on), not held for a released one.
async fn a_resent_unlock_answers_what_its_first_copy_did(family: Family, end: HoldEnd) {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let client = client_through(&proxy).await;
    let other = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("resent-unlock");
    let wait = Duration::from_secs(1);
    // The scripts are cached in Redis before the fault.
    for client in [&client, &other] {
        let warm_up = family
            .try_acquire(client, &name, wait, None)
            .await
            .expect("warm-up");
        warm_up.unlock().await.expect("warm-up unlock");
    }
    let guard = family
        .try_acquire(&client, &name, wait, None)
        .await
        .expect("free");
    let beside = if end.beside() {
        Some(
            family
                .try_acquire(&other, &name, wait, None)
                .await
                .expect("a read hold beside"),
        )
    } else {
        None
    };
    match end {
        HoldEnd::Lost => {
            let _: i64 = server.cmd(&["DEL", &family.key(&name)]);
        }
        HoldEnd::LostBeside => {
            // This client's hold, by its owner id (the client's id first): not the first in
            // the leases' order, as two holds taken within one millisecond tie there.
            let owners = family.owners(&client, &name).await.expect("owners");
            let own = format!("{}:", client.id());
            let ours = owners
                .iter()
                .find(|owner| owner.starts_with(&own))
                .expect("this client's hold");
            let leases = format!("{}:leases", family.key(&name));
            let ended: i64 = server.cmd(&["ZADD", &leases, "XX", "CH", "1", ours]);
            assert_eq!(ended, 1, "the first hold's lease ends");
        }
        HoldEnd::Released | HoldEnd::ReleasedBeside => {}
    }
    let left = usize::from(end.beside());

    proxy.drop_replies(true);
    let unlocking = tokio::spawn(guard.unlock());
    let first_copy_ran = eventually(Duration::from_secs(2), || {
        proxy.dropped_bytes() > 0 && family.hold_counts(&server, &name).len() == left
    })
    .await;
    assert!(first_copy_ran, "the unlock's first copy never ran");
    if beside.is_none() {
        let next = family
            .try_acquire(&other, &name, wait, None)
            .await
            .expect("the lock is free for the next owner");
        next.unlock().await.expect("the next owner's unlock");
    }
    proxy.drop_replies(false);

    let released = matches!(end, HoldEnd::Released | HoldEnd::ReleasedBeside);
    assert_resend_answers(unlocking, released, &format!("{family:?}, {end:?}")).await;
    if let Some(beside) = beside {
        beside.unlock().await.expect("the read hold beside");
    }
    family.assert_released(&server, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_unlock_whose_first_copy_released_answers_ok() {
    a_resent_unlock_answers_what_its_first_copy_did(Family::Reentrant, HoldEnd::Released).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_unlock_whose_hold_was_lost_answers_not_held() {
    a_resent_unlock_answers_what_its_first_copy_did(Family::Reentrant, HoldEnd::Lost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_fair_unlock_whose_first_copy_released_answers_ok() {
    a_resent_unlock_answers_what_its_first_copy_did(Family::Fair, HoldEnd::Released).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_fair_unlock_whose_hold_was_lost_answers_not_held() {
    a_resent_unlock_answers_what_its_first_copy_did(Family::Fair, HoldEnd::Lost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_write_unlock_answers_what_its_first_copy_did() {
    for end in [HoldEnd::Released, HoldEnd::Lost] {
        a_resent_unlock_answers_what_its_first_copy_did(Family::Write, end).await;
    }
}

/// The read holds' own cases beside another client's read hold, and those of a lone one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_read_unlock_answers_what_its_first_copy_did() {
    for end in [
        HoldEnd::Released,
        HoldEnd::Lost,
        HoldEnd::ReleasedBeside,
        HoldEnd::LostBeside,
    ] {
        a_resent_unlock_answers_what_its_first_copy_did(Family::Read, end).await;
    }
}
