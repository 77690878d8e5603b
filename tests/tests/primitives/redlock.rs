//! Redlock (DESIGN 4.1): one lock over independent masters, held by a quorum; fencing tokens
//! that stay strictly increasing although each master counts on its own; waiting through each
//! master's hub; nothing left held when an acquisition fails or is cancelled.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use lock_runtime::{LockClient, LockError, Redlock, distribute_lock};
use lock_tests::{
    RedisServer, TcpProxy, Workers,
    locks::{
        assert_released, client_with_watchdog, command_calls, eventually, fence_key, lock_key,
        queue_len, redlock_on_every_master,
    },
    start_masters, unique_name,
};

/// A client of each of `masters` whose watchdog timeout is `watchdog`.
async fn clients_with_watchdog(masters: &[RedisServer], watchdog: Duration) -> Vec<LockClient> {
    let mut clients = Vec::new();
    for master in masters {
        clients.push(client_with_watchdog(master, watchdog).await);
    }
    clients
}

/// A client of each of `masters`, with a short watchdog timeout (3 s).
async fn clients(masters: &[RedisServer]) -> Vec<LockClient> {
    clients_with_watchdog(masters, Duration::from_secs(3)).await
}

async fn redlock(masters: &[RedisServer]) -> Redlock {
    redlock_of(masters, Duration::from_secs(3)).await
}

/// A Redlock over new clients of `masters` whose watchdog timeout is `watchdog`.
async fn redlock_of(masters: &[RedisServer], watchdog: Duration) -> Redlock {
    Redlock::new(clients_with_watchdog(masters, watchdog).await).expect("a Redlock")
}

fn held_on(master: &RedisServer, name: &str) -> bool {
    master.cmd::<i64>(&["EXISTS", &lock_key(name)]) == 1
}

/// Waits until no master holds `name` (releases and undos run in the background) and nothing
/// of it lingers without a TTL.
async fn assert_released_everywhere(masters: &[RedisServer], name: &str) {
    let released = eventually(Duration::from_secs(5), || {
        masters.iter().all(|master| !held_on(master, name))
    })
    .await;
    assert!(released, "lock {name} is still held on some master");
    for master in masters {
        assert_released(master, name);
    }
}

const LEASE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redlock_holds_the_lock_on_every_master_it_can_and_excludes_another() {
    let masters = start_masters(3);
    let (ours, theirs) = (redlock(&masters).await, redlock(&masters).await);
    assert_eq!(ours.quorum(), 2);
    let name = unique_name("redlock-basic");

    let held = redlock_on_every_master(&ours, &name, Some(LEASE)).await;
    assert_eq!(held.masters_held(), 3);
    assert!(masters.iter().all(|master| held_on(master, &name)));
    assert!(held.remaining_lease() > LEASE / 2);
    assert!(ours.lock(&name).is_locked().await.expect("is_locked"));

    let err = theirs
        .lock(&name)
        .try_acquire(Duration::from_millis(300), Some(LEASE))
        .await
        .expect_err("held by the other Redlock");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("held by"), "names a holder: {err}");

    held.unlock().await.expect("unlock");
    assert_released_everywhere(&masters, &name).await;
    assert!(!ours.lock(&name).is_locked().await.expect("is_locked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error() {
    let masters = start_masters(1);
    let clients = clients(&masters).await;
    let err = Redlock::new(Vec::new()).expect_err("no clients");
    assert!(matches!(err, LockError::Config { .. }), "{err}");
    let twice = [clients[0].clone(), clients[0].clone()];
    let err = Redlock::new(twice).expect_err("the same client twice");
    assert!(err.to_string().contains("twice"), "{err}");
    let err = Redlock::builder(clients.clone())
        .node_timeout(Duration::ZERO)
        .build()
        .expect_err("a zero node timeout");
    assert!(matches!(err, LockError::Config { .. }), "{err}");
    let err = Redlock::builder(clients.clone())
        .retry_delay(Duration::MAX)
        .build()
        .expect_err("a retry delay past a year");
    assert!(matches!(err, LockError::Config { .. }), "{err}");

    let redlock = Redlock::new(clients).expect("one master");
    let err = redlock
        .lock("x")
        .try_acquire(Duration::ZERO, Some(Duration::ZERO))
        .await
        .expect_err("a zero lease");
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
    let err = redlock.lock("").acquire().await.expect_err("an empty name");
    assert!(matches!(err, LockError::InvalidName { .. }), "{err}");
    // Waits of any size are input.
    let held = redlock
        .lock("y")
        .try_acquire(Duration::MAX, Some(Duration::from_secs(1)))
        .await
        .expect("free");
    held.unlock().await.expect("unlock");
}

/// Mistakes that waiting cannot fix are errors at once, even for a caller that waits forever:
/// masters whose key holds something else (too many for a quorum), and a Redlock asked for
/// inside the scope of a plain lock of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waiting_cannot_fix_fails_at_once() {
    let masters = start_masters(3);
    let clients = clients(&masters).await;
    let redlock = Redlock::new(clients.clone()).expect("a Redlock");

    let name = unique_name("redlock-wrong-type");
    for master in &masters[1..] {
        let _: () = master.cmd(&["SET", &lock_key(&name), "not a lock"]);
    }
    let lock = redlock.lock(&name);
    let err = tokio::time::timeout(Duration::from_secs(5), lock.acquire())
        .await
        .expect("fails at once")
        .expect_err("a key that is not a lock");
    assert!(matches!(err, LockError::WrongType { .. }), "{err}");
    for master in &masters[1..] {
        let _: i64 = master.cmd(&["DEL", &lock_key(&name)]);
    }
    assert_released_everywhere(&masters, &name).await;

    let name = unique_name("redlock-plain-scope");
    let plain = clients[0].lock(&name).acquire().await.expect("free");
    let lock = redlock.lock(&name);
    let err = plain
        .scope(lock.acquire())
        .await
        .expect_err("a plain lock's scope is not a Redlock's");
    assert!(
        matches!(
            err,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{err}"
    );
    plain.unlock().await.expect("unlock");
    assert_released_everywhere(&masters, &name).await;
}

/// In the manner of redsync's tests: for every mask of masters made unavailable (the even ones
/// paused, the odd ones held by a foreign owner), one try succeeds exactly when a quorum is free,
/// holding the lock on a quorum of the free masters at least.
async fn succeeds_exactly_when_a_quorum_is_free(n: usize) {
    let masters = start_masters(n);
    let ours = Redlock::builder(clients(&masters).await)
        .node_timeout(Duration::from_millis(200))
        .build()
        .expect("a Redlock");
    let foreign = clients(&masters).await;
    let quorum = n / 2 + 1;
    for mask in 0..(1_usize << n) {
        let name = unique_name(&format!("redlock-mask-{n}-{mask}"));
        let unavailable: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        let paused: Vec<usize> = unavailable.iter().copied().filter(|i| i % 2 == 0).collect();
        let mut foreign_holds = Vec::new();
        for &i in &unavailable {
            if i % 2 == 0 {
                masters[i].pause();
            } else {
                let lock = foreign[i].lock(&name);
                let hold = lock.try_acquire(Duration::ZERO, Some(LEASE)).await;
                foreign_holds.push(hold.expect("free for the foreign owner"));
            }
        }
        let free = n - unavailable.len();
        let outcome = ours
            .lock(&name)
            .try_acquire(Duration::ZERO, Some(LEASE))
            .await;
        match outcome {
            Ok(guard) => {
                assert!(
                    free >= quorum,
                    "mask {mask:b}: taken with {free} of {n} free"
                );
                let held = guard.masters_held();
                assert!(
                    (quorum..=free).contains(&held),
                    "mask {mask:b}: held on {held}"
                );
                guard.unlock().await.expect("unlock");
            }
            Err(err) => {
                assert!(free < quorum, "mask {mask:b}: {err}");
                if n - paused.len() < quorum {
                    assert!(
                        matches!(err, LockError::NoQuorum { .. }),
                        "mask {mask:b}: {err}"
                    );
                } else {
                    assert!(err.is_timeout(), "mask {mask:b}: {err}");
                }
            }
        }
        for &i in &paused {
            masters[i].resume();
        }
        for hold in foreign_holds {
            hold.unlock().await.expect("foreign unlock");
        }
        assert_released_everywhere(&masters, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_every_mask() {
    succeeds_exactly_when_a_quorum_is_free(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_masters_every_mask() {
    succeeds_exactly_when_a_quorum_is_free(5).await;
}

/// Two independent Redlocks, three tasks each, take turns while one master after another is
/// killed and restarted empty (after the longest lease, as Redlock requires): never two holders
/// at once, and the fencing tokens, read in the order the holders came, strictly increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_redlocks_never_hold_at_once_while_masters_die_and_tokens_increase() {
    const HOLD_LEASE: Duration = Duration::from_secs(3);
    let masters = Arc::new(start_masters(3));
    let redlocks = [redlock(&masters).await, redlock(&masters).await];
    let name = unique_name("redlock-chaos");
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let with_a_master_down = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for redlock in &redlocks {
        for _ in 0..3 {
            let lock = redlock.lock(&name);
            let (inside, tokens, stop) = (inside.clone(), tokens.clone(), stop.clone());
            let down = with_a_master_down.clone();
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let guard = lock
                        .try_acquire(Duration::from_secs(20), Some(HOLD_LEASE))
                        .await
                        .expect("a quorum stays up");
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    tokens.lock().expect("tokens").push(guard.fencing_token());
                    if guard.masters_held() < 3 {
                        down.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, Ordering::SeqCst);
                    // A master that died under the hold cannot confirm; the others do.
                    let _ = guard.unlock().await;
                }
            }));
        }
    }
    for master in masters.iter() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        master.kill();
        tokio::time::sleep(HOLD_LEASE + Duration::from_millis(300)).await;
        master.restart();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("no task failed");
    }
    let tokens = tokens.lock().expect("tokens").clone();
    assert!(tokens.len() > 50, "only {} acquisitions", tokens.len());
    assert!(
        with_a_master_down.load(Ordering::SeqCst) > 10,
        "the lock was taken while masters were down"
    );
    for pair in tokens.windows(2) {
        assert!(pair[0] < pair[1], "tokens {} then {}", pair[0], pair[1]);
    }
    assert_released_everywhere(&masters, &name).await;
}

/// `master`'s clock (`TIME`), in microseconds.
fn server_time_us(master: &RedisServer) -> u64 {
    let time: Vec<u64> = master.cmd(&["TIME"]);
    time[0] * 1_000_000 + time[1]
}

/// Issue 20, item 3: two quorums in a row that share one master, whose fencing state was
/// created from its own clock almost a fence TTL ago (1 s left to live), while another master's
/// clock runs five minutes ahead (its state is there). The first quorum's token comes from the
/// master ahead and is raised on the shared one; the second quorum does not include the master
/// ahead, so its token is above the first only if the shared master kept the raised state.
/// Before the fix the raise kept the old state's TTL: it expired a second later, the shared
/// master restarted from its own clock, and the second token was five minutes below the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_increase_across_quorums_that_share_one_master_with_a_skewed_fence_state() {
    let masters = start_masters(3);
    let redlock = redlock(&masters).await;
    let name = unique_name("redlock-skew");
    let fence = fence_key(&name);
    let ahead = server_time_us(&masters[1]) + 5 * 60 * 1_000_000;
    let _: () = masters[1].cmd(&["SET", &fence, &ahead.to_string(), "PX", "600000"]);
    let shared_own = server_time_us(&masters[2]);
    let _: () = masters[2].cmd(&["SET", &fence, &shared_own.to_string(), "PX", "1000"]);
    let lock = redlock.lock(&name);

    // The first quorum: masters 1 and 2.
    masters[0].pause();
    let first = lock.try_acquire(Duration::from_secs(5), Some(LEASE)).await;
    masters[0].resume();
    let first = first.expect("masters 1 and 2 are a quorum");
    assert_eq!(first.masters_held(), 2);
    let first_token = first.fencing_token();
    assert!(first_token > ahead, "the token of the master ahead wins");
    first.unlock().await.expect("unlock");
    // Past the TTL the shared master's state had before it was raised.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The second quorum: masters 0 and 2, sharing only master 2 with the first.
    masters[1].pause();
    let second = lock.try_acquire(Duration::from_secs(5), Some(LEASE)).await;
    masters[1].resume();
    let second = second.expect("masters 0 and 2 are a quorum");
    assert_eq!(second.masters_held(), 2);
    assert!(
        second.fencing_token() > first_token,
        "tokens went back: {first_token} then {}",
        second.fencing_token()
    );
    second.unlock().await.expect("unlock");
    assert_released_everywhere(&masters, &name).await;
}

/// The Redlock raised master 1's fencing state to master 0's token (the quorum's, which is
/// ahead): master 1's release names that token from then on. The guard is held on masters 0
/// and 1 (master 2 paused while it is taken), master 1 loses its hold (as a lease that ran out
/// would) and its reply to the release is lost, so that release is resent (default settings):
/// it finds the state still at the quorum's token, no take since, and answers not held, as its
/// first copy did, and the unlock says the lease was lost. Named by master 1's own token, below
/// the state, the resend would answer released, and a quorum would confirm the release of a
/// lease that was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_resent_release_names_the_quorums_token() {
    let masters = start_masters(3);
    let proxy = TcpProxy::start(masters[1].port()).await;
    let mut clients = Vec::new();
    for url in [masters[0].url(), proxy.url(), masters[2].url()] {
        clients.push(LockClient::connect(&url).await.expect("connect"));
    }
    let redlock = Redlock::new(clients).expect("a Redlock");
    let name = unique_name("redlock-resent-release");
    let lock = redlock.lock(&name);
    // The scripts are loaded on every master before the fault.
    let warm = lock.try_acquire(Duration::from_secs(5), Some(LEASE)).await;
    warm.expect("free").unlock().await.expect("unlock");
    let ahead = server_time_us(&masters[0]) + 5 * 60 * 1_000_000;
    let _: () = masters[0].cmd(&["SET", &fence_key(&name), &ahead.to_string(), "PX", "600000"]);

    masters[2].pause();
    let guard = lock.try_acquire(Duration::from_secs(5), Some(LEASE)).await;
    masters[2].resume();
    let guard = guard.expect("masters 0 and 1 are a quorum");
    assert_eq!(guard.masters_held(), 2);
    assert!(guard.fencing_token() > ahead, "master 0's token wins");
    let _: i64 = masters[1].cmd(&["DEL", &lock_key(&name)]);
    proxy.drop_replies(true);
    let unlocking = tokio::spawn(guard.unlock());
    assert!(
        eventually(Duration::from_secs(2), || proxy.dropped_bytes() > 0).await,
        "master 1's reply was never dropped"
    );
    proxy.drop_replies(false);
    let unlocked = tokio::time::timeout(Duration::from_secs(10), unlocking)
        .await
        .expect("the resend is answered")
        .expect("join");
    let err = unlocked.expect_err("master 1 had lost its hold");
    assert!(err.is_not_held(), "{err}");
    assert_released_everywhere(&masters, &name).await;
}

/// A waiting Redlock is woken by the release on the masters (its requests stay queued there),
/// not by its timer: its clients' watchdog timeout is 30 s, so without the wake-up it would try
/// again only after 10 s, past its wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_redlock_is_woken_by_the_release() {
    let masters = start_masters(3);
    let (holder, waiter) = (
        redlock(&masters).await,
        redlock_of(&masters, Duration::from_secs(30)).await,
    );
    let name = unique_name("redlock-wake");
    let held = holder
        .lock(&name)
        .try_acquire(Duration::ZERO, Some(Duration::from_secs(60)))
        .await
        .expect("free");
    let waiting = {
        let lock = waiter.lock(&name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(4), None).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    held.unlock().await.expect("unlock");
    let guard = waiting
        .await
        .expect("join")
        .expect("woken by the release, within the wait");
    guard.unlock().await.expect("unlock");
    assert_released_everywhere(&masters, &name).await;
}

/// In watchdog mode each master's hold is renewed by its client; the lease survives the loss of
/// a minority and is lost with the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_lost_with_the_quorum_not_before() {
    let masters = start_masters(3);
    let redlock = redlock_of(&masters, Duration::from_secs(1)).await;
    let name = unique_name("redlock-watchdog");
    let guard = redlock.lock(&name).acquire().await.expect("free");
    masters[0].pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!guard.is_lease_lost(), "two of three masters still renew");
    assert!(held_on(&masters[1], &name) && held_on(&masters[2], &name));
    masters[1].pause();
    tokio::time::timeout(Duration::from_secs(5), guard.lease_lost())
        .await
        .expect("lost with the quorum");
    assert!(guard.is_lease_lost());
    // The local deadline keeps a drift margin: let the keys expire in Redis too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    masters[0].resume();
    masters[1].resume();
    let err = guard.unlock().await.expect_err("the quorum was lost");
    assert!(err.is_not_held(), "{err}");
    assert_released_everywhere(&masters, &name).await;
}

/// A Redlock over `masters`, each behind a proxy with its own delay (15, 30 and 45 ms each way),
/// so the phases of a round come one after the other; the proxies live as long as it is used.
async fn behind_delaying_proxies(masters: &[RedisServer]) -> (Redlock, Vec<TcpProxy>) {
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for (master, delay_ms) in masters.iter().zip([15, 30, 45]) {
        let proxy = TcpProxy::start(master.port()).await;
        clients.push(LockClient::connect(&proxy.url()).await.expect("connect"));
        proxy.set_delay(Duration::from_millis(delay_ms));
        proxies.push(proxy);
    }
    let redlock = Redlock::builder(clients)
        .node_timeout(Duration::from_secs(1))
        .build()
        .expect("a Redlock");
    (redlock, proxies)
}

/// An acquisition dropped at any point leaves nothing held: the cuts fall while tries, the wait
/// for the last master, fence raises or give-backs are in flight (the acquisition takes about
/// 155 ms behind the proxies; the last cuts let it end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquisition_cut_at_any_point_leaves_nothing_held() {
    let masters = start_masters(3);
    let (redlock, _proxies) = behind_delaying_proxies(&masters).await;
    let cuts = [0, 10, 25, 35, 50, 65, 80, 95, 110, 130, 150, 170, 200, 400];
    for cut in cuts {
        let name = unique_name(&format!("redlock-cut-{cut}"));
        let lock = redlock.lock(&name);
        let acquiring = lock.try_acquire(Duration::from_secs(5), Some(LEASE));
        if let Ok(taken) = tokio::time::timeout(Duration::from_millis(cut), acquiring).await {
            drop(taken.expect("free"));
        }
        assert_released_everywhere(&masters, &name).await;
    }
}

/// An acquisition dropped while it waits between rounds (queued on the masters, listening on
/// each hub), or while its next round is on the wire, leaves no place in any queue: the holder's
/// release then finds nobody to hand on to. Once settled, the waiter sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_acquisition_cut_leaves_no_place_in_any_queue() {
    let masters = start_masters(3);
    let (redlock, _proxies) = behind_delaying_proxies(&masters).await;
    let holder = redlock_of(&masters, Duration::from_secs(3)).await;
    for after_queued_ms in [0, 250, 800] {
        let name = unique_name(&format!("redlock-wait-cut-{after_queued_ms}"));
        let held = holder
            .lock(&name)
            .try_acquire(Duration::ZERO, Some(LEASE))
            .await
            .expect("free");
        let lock = redlock.lock(&name);
        let waiting =
            tokio::spawn(
                async move { lock.try_acquire(Duration::from_secs(30), Some(LEASE)).await },
            );
        let queued = eventually(Duration::from_secs(5), || {
            masters.iter().any(|master| queue_len(master, &name) > 0)
        })
        .await;
        assert!(queued, "the waiter queued on the masters");
        tokio::time::sleep(Duration::from_millis(after_queued_ms)).await;
        if after_queued_ms >= 800 {
            // Settled (queued, subscriptions confirmed): nothing changes, so nothing is sent
            // until the holder's TTL; waiting is not polling.
            let scripts = || -> u64 {
                let calls = masters
                    .iter()
                    .map(|m| command_calls(m, &["fcall", "evalsha", "eval"]));
                calls.sum()
            };
            let before = scripts();
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                scripts(),
                before,
                "the waiter tried again while nothing changed"
            );
        }
        assert!(
            !waiting.is_finished(),
            "held by the other Redlock, so still waiting"
        );
        waiting.abort();
        assert!(waiting.await.expect_err("aborted").is_cancelled());
        let left = eventually(Duration::from_secs(5), || {
            masters.iter().all(|master| queue_len(master, &name) == 0)
        })
        .await;
        assert!(left, "the cut waiter left every queue");
        held.unlock().await.expect("unlock");
        assert_released_everywhere(&masters, &name).await;
    }
}

/// An unlock dropped at any point still releases every master, in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_cut_at_any_point_still_releases() {
    let masters = start_masters(3);
    let (redlock, _proxies) = behind_delaying_proxies(&masters).await;
    for cut in [0, 10, 40, 70, 100] {
        let name = unique_name(&format!("redlock-unlock-cut-{cut}"));
        let held = redlock
            .lock(&name)
            .try_acquire(Duration::from_secs(5), Some(LEASE))
            .await
            .expect("free");
        let unlocking = held.unlock();
        if let Ok(released) = tokio::time::timeout(Duration::from_millis(cut), unlocking).await {
            released.expect("unlock");
        }
        assert_released_everywhere(&masters, &name).await;
    }
}

/// Inside a guard's scope the same lock re-enters, with the guard's token; outside, it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redlock_re_enters_within_its_scope() {
    let masters = start_masters(3);
    let redlock = redlock(&masters).await;
    let name = unique_name("redlock-reenter");
    let lock = redlock.lock(&name);
    let outer = lock.acquire().await.expect("free");
    let token = outer.fencing_token();
    // A master slow to answer (its functions loaded on first use, on a busy machine) may be
    // left out of the outer guard, a quorum being all it needs, and what it took there is
    // given back in the background: count the masters once that settled.
    let holding = || {
        masters
            .iter()
            .filter(|master| held_on(master, &name))
            .count()
    };
    let outer_holds = outer.masters_held();
    assert!(
        eventually(Duration::from_secs(2), || holding() == outer_holds).await,
        "the masters holding the lock are the outer guard's"
    );
    outer
        .scope(async {
            assert_eq!(lock_runtime::fencing_token(), Some(token));
            let inner = lock
                .try_acquire(Duration::ZERO, None)
                .await
                .expect("re-enters");
            assert_eq!(inner.fencing_token(), token);
            inner.unlock().await.expect("inner unlock");
        })
        .await;
    assert_eq!(holding(), outer_holds, "the outer hold remains");
    let err = lock
        .try_acquire(Duration::from_millis(200), None)
        .await
        .expect_err("outside the scope it waits");
    assert!(err.is_timeout(), "{err}");
    outer.unlock().await.expect("unlock");
    assert_released_everywhere(&masters, &name).await;
}

/// What [`increment`] fails with.
#[derive(Debug)]
enum CountError {
    Lock(LockError),
    Redis(redis::RedisError),
}

impl std::fmt::Display for CountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lock(err) => write!(f, "lock: {err}"),
            Self::Redis(err) => write!(f, "redis: {err}"),
        }
    }
}

impl From<LockError> for CountError {
    fn from(err: LockError) -> Self {
        Self::Lock(err)
    }
}

impl From<redis::RedisError> for CountError {
    fn from(err: redis::RedisError) -> Self {
        Self::Redis(err)
    }
}

/// Increments a counter kept on `store`, read and written apart (lost updates if two calls
/// overlap), under the Redlock's lock; returns the token the body saw.
#[distribute_lock(key = "{name}", client = redlock, wait = "20s", lease = "5s")]
async fn increment(redlock: &Redlock, name: &str, store: &RedisServer) -> Result<u64, CountError> {
    let counter = format!("{name}:count");
    let mut connection = store.async_connection().await;
    let count: u64 = redis::cmd("INCRBY")
        .arg(&counter)
        .arg(0)
        .query_async(&mut connection)
        .await?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    redis::cmd("SET")
        .arg(&counter)
        .arg(count + 1)
        .query_async::<()>(&mut connection)
        .await?;
    Ok(lock_runtime::fencing_token().expect("the body runs in the lock's scope"))
}

/// `client = redlock` in the attribute: two independent Redlocks, four tasks each, increment
/// one counter without losing an update, and each body sees a greater token than the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attribute_takes_a_redlock() {
    const CALLS: u64 = 10;
    let masters = Arc::new(start_masters(3));
    let store = Arc::new(RedisServer::start());
    let redlocks = [redlock(&masters).await, redlock(&masters).await];
    let name: Arc<str> = Arc::from(unique_name("redlock-attribute"));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for redlock in &redlocks {
        for _ in 0..4 {
            let (redlock, name, store) = (redlock.clone(), name.clone(), store.clone());
            let tokens = tokens.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..CALLS {
                    let token = increment(&redlock, &name, &store)
                        .await
                        .unwrap_or_else(|err| panic!("increment: {err}"));
                    tokens.lock().expect("tokens").push(token);
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("no task failed");
    }
    let count: u64 = store.cmd(&["GET", &format!("{name}:count")]);
    assert_eq!(
        count,
        8 * CALLS,
        "an update was lost: two bodies overlapped"
    );
    let mut tokens = tokens.lock().expect("tokens").clone();
    let calls = tokens.len();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), calls, "every call had its own token");
    assert_released_everywhere(&masters, &name).await;
}

/// Many tasks in three `lock-worker` processes, each process with its own Redlock over the same
/// three masters, do a non-atomic read-modify-write of a counter under the lock, while one
/// master is killed half-way: no update is lost, and each process saw every token above the
/// last one stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlocks_in_several_processes_keep_a_counter_exact() {
    const PROCESSES: u64 = 3;
    const TASKS: u64 = 4;
    const ITERATIONS: u64 = 15;
    let masters = start_masters(3);
    let store = RedisServer::start();
    let name = unique_name("redlock-processes");
    let mut workers = Workers::command(env!("CARGO_BIN_EXE_lock-worker"));
    for _ in 0..PROCESSES {
        let mut args = vec![
            "redlock-counter".to_owned(),
            store.url(),
            name.clone(),
            TASKS.to_string(),
            ITERATIONS.to_string(),
        ];
        args.extend(masters.iter().map(RedisServer::url));
        workers = workers.worker(args);
    }
    let workers = workers.spawn();
    let counter = format!("{name}:counter");
    let halfway = PROCESSES * TASKS * ITERATIONS / 2;
    let reached = eventually(Duration::from_secs(60), || {
        store.cmd::<Option<u64>>(&["GET", &counter]).unwrap_or(0) >= halfway
    })
    .await;
    assert!(reached, "the workers got half-way");
    masters[2].kill();
    let outputs = workers.wait_all_async(Duration::from_secs(120)).await;
    let mut acquired = 0;
    for output in &outputs {
        output.assert_success();
        assert_eq!(
            output.field("violations"),
            "0",
            "a token was not above the last"
        );
        acquired += output.field("acquired").parse::<u64>().expect("a count");
    }
    assert_eq!(acquired, PROCESSES * TASKS * ITERATIONS);
    let count: u64 = store.cmd(&["GET", &counter]);
    assert_eq!(
        count, acquired,
        "an update was lost: two holders overlapped"
    );
    assert_released_everywhere(&masters[..2], &name).await;
}
