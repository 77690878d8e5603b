//! A copy counts once, however late (DESIGN 3.2): a request the client sent on a connection it
//! then retired (the link stalled, the client timed out and resent on a fresh connection) can
//! still reach Redis long after, when its memo is gone. Every state change of a hold of the
//! reentrant lock, the fair lock and the read and write locks (the release of any hold, a
//! re-entry, the undo of a re-entry) must count once whenever such a copy lands.
//!
//! Each scenario runs for the four locks of the family at once, each on its own server and
//! [`TcpProxy`]: `hold_connections` keeps what the client sends on its open connections, the
//! client times out and resends on a new connection, and `release_held` delivers the first copy
//! once every memo of the lock has expired.
//!
//! Here only, the clients give up on a reply after 300 ms and resend for 1 s, so a memo (kept for
//! retry + response timeout: 13 s with the defaults) expires after 1.3 s and each test takes a
//! few seconds instead of about 20. What is tested does not depend on them: the late copy lands
//! after the memo expired, whatever the settings (the issue reproduces with the defaults too).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use lock_runtime::{LockClient, LockGuard};
use lock_tests::{
    RedisServer, TcpProxy,
    late::{RESPONSE_TIMEOUT, RETRY_TIMEOUT, deliver_held, quick_client_through},
    locks::{Family, eventually, for_each_family, lock_key},
    unique_name,
};

/// How long a memo lives for the kit's quick clients: retry + response timeout.
const MEMO_TTL: Duration = RESPONSE_TIMEOUT.saturating_add(RETRY_TIMEOUT);

/// One lock of `family` on a server of its own, with a client through a proxy.
struct Setup {
    family: Family,
    server: RedisServer,
    proxy: TcpProxy,
    client: LockClient,
    name: String,
}

impl Setup {
    /// Starts the server and the proxy, connects, and takes the lock, re-enters it and lets both
    /// go once, so Redis has the acquire, re-entry and release scripts cached: a late copy of an
    /// `EVALSHA` of a script Redis does not have would do nothing, and hide what it does.
    async fn new(family: Family, prefix: &str) -> Self {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(server.port()).await;
        let client = quick_client_through(&proxy).await;
        let setup = Self {
            family,
            name: unique_name(prefix),
            server,
            proxy,
            client,
        };
        let outer = setup.acquire().await;
        let inner = outer.scope(setup.acquire()).await;
        inner.unlock().await.expect("warm-up: re-entry unlock");
        outer.unlock().await.expect("warm-up: unlock");
        setup
    }

    /// Acquires the lock (a re-entry inside a scope that holds it).
    async fn acquire(&self) -> LockGuard {
        self.family
            .acquire(&self.client, &self.name)
            .await
            .unwrap_or_else(|err| panic!("{:?}: acquiring: {err}", self.family))
    }

    /// Holds what the client sends on its open connections from now on, then runs `request`,
    /// which must therefore time out once and be resent on a new connection.
    async fn stalled<T>(&self, what: &str, request: impl Future<Output = T>) -> T {
        self.proxy.hold_connections();
        let start = Instant::now();
        let output = request.await;
        assert!(
            start.elapsed() >= RESPONSE_TIMEOUT,
            "{:?}: set-up: the {what} came back in {:?}, so its request was not held",
            self.family,
            start.elapsed()
        );
        output
    }

    /// The keys of the lock that expire within the memo TTL: the memos of its requests.
    fn memos(&self) -> Vec<String> {
        let memo_ms = i64::try_from(MEMO_TTL.as_millis()).expect("a short TTL");
        self.server
            .keys(&format!("{}*", lock_key(&self.name)))
            .into_iter()
            .filter(|key| {
                let pttl: i64 = self.server.cmd(&["PTTL", key]);
                pttl > 0 && pttl <= memo_ms
            })
            .collect()
    }

    /// Checks a request is held, waits until every memo of the lock has expired, then delivers
    /// what was held and gives Redis time to run it.
    async fn deliver_late(&self) {
        let family = self.family;
        assert!(
            eventually(MEMO_TTL * 3, || self.memos().is_empty()).await,
            "{family:?}: set-up: the memos outlived their TTL: {:?}",
            self.memos()
        );
        deliver_held(&self.proxy, &format!("{family:?}'s request")).await;
    }

    /// Panics unless the lock is held by one owner with `holds` holds.
    fn assert_holds(&self, holds: i64, what: &str) {
        let counts = self.family.hold_counts(&self.server, &self.name);
        assert_eq!(
            counts,
            vec![holds],
            "{:?}: {what}: expected one owner with {holds} hold(s) in Redis",
            self.family
        );
    }

    /// Releases `guard`, which must still hold the lock.
    async fn unlock(&self, guard: LockGuard, what: &str) {
        assert!(
            !guard.is_lease_lost(),
            "{:?}: the {what} guard's lease is lost",
            self.family
        );
        guard
            .unlock()
            .await
            .unwrap_or_else(|err| panic!("{:?}: {what} unlock: {err}", self.family));
    }

    /// Panics unless the lock is released and nothing of it is left behind.
    fn assert_released(&self) {
        self.family.assert_released(&self.server, &self.name);
    }
}

/// The case: a lock held with a re-entry (two holds). The re-entry's `unlock()` is sent
/// on a connection that stalls; the client times out and resends on a fresh one (two holds to
/// one). The first copy reaches Redis once the memo expired.
///
/// Required: it changes nothing: the outer guard still holds the lock (one hold), its lease is
/// not lost, and its own release frees the lock. Before the fix the late copy counted again: one
/// hold to none, the lock deleted and passed on while the outer guard believed it held it.
async fn late_copy_of_a_reentry_release(family: Family) {
    let setup = Setup::new(family, "late-inner-release").await;
    let outer = setup.acquire().await;
    outer
        .scope(async {
            let inner = setup.acquire().await;
            setup
                .stalled("re-entry's release", setup.unlock(inner, "re-entry"))
                .await;
        })
        .await;
    setup.assert_holds(1, "after the re-entry's release");

    setup.deliver_late().await;

    setup.assert_holds(1, "after the late copy of the re-entry's release");
    setup.unlock(outer, "outer").await;
    setup.assert_released();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_reentry_release_frees_nothing() {
    for_each_family(Family::ALL, late_copy_of_a_reentry_release).await;
}

/// The outer guard released while a re-entry guard that escaped its scope still holds the lock
/// (two holds to one); the outer release's first copy stalls and lands after its memo expired.
///
/// Required: it changes nothing: the re-entry guard still holds the lock, and its release frees
/// it. Before the fix the late copy took the re-entry's hold away.
async fn late_copy_of_the_outer_release(family: Family) {
    let setup = Setup::new(family, "late-outer-release").await;
    let outer = setup.acquire().await;
    let inner = outer.scope(setup.acquire()).await;
    setup
        .stalled("outer release", setup.unlock(outer, "outer"))
        .await;
    setup.assert_holds(1, "after the outer release");

    setup.deliver_late().await;

    setup.assert_holds(1, "after the late copy of the outer release");
    setup.unlock(inner, "escaped re-entry").await;
    setup.assert_released();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_the_outer_release_takes_no_reentry_hold() {
    for_each_family(Family::ALL, late_copy_of_the_outer_release).await;
}

/// A re-entry's request stalls; the client times out and resends on a fresh connection, which
/// counts it (two holds). The first copy lands once any memo expired.
///
/// Required: no phantom hold: still two holds, and once the re-entry guard and the outer guard
/// are released the lock is free. Before the fix the late copy counted a third hold, which no
/// guard gives back: the lock stayed held until its lease ran out.
async fn late_copy_of_a_reentry(family: Family) {
    let setup = Setup::new(family, "late-reentry").await;
    let outer = setup.acquire().await;
    outer
        .scope(async {
            let inner = setup.stalled("re-entry", setup.acquire()).await;
            setup.assert_holds(2, "after the re-entry");

            setup.deliver_late().await;

            setup.assert_holds(2, "after the late copy of the re-entry");
            setup.unlock(inner, "re-entry").await;
        })
        .await;
    setup.unlock(outer, "outer").await;
    setup.assert_released();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_reentry_adds_no_hold() {
    for_each_family(Family::ALL, late_copy_of_a_reentry).await;
}

/// A re-entry whose caller gives up while its request is stalled: the request, and the undo
/// the client sends after it on the same connection, are held; the client resends the undo on
/// a fresh connection. Both first copies land late, the re-entry's first.
///
/// Required: neither counts (the outer guard's one hold is left, and its release frees the
/// lock), and no key of the lock but its fencing state outlives the memo TTL: what makes the
/// late copies count nothing lives in the lock's own hash. Before the fix the undo left a memo
/// key per request for 15 minutes (`abandoned_ttl`).
async fn late_copies_of_an_undone_reentry(family: Family) {
    let setup = Setup::new(family, "late-undo").await;
    let outer = setup.acquire().await;
    outer
        .scope(async {
            setup.proxy.hold_connections();
            let gave_up = tokio::time::timeout(RESPONSE_TIMEOUT / 3, setup.acquire()).await;
            assert!(
                gave_up.is_err(),
                "{family:?}: the re-entry returned though its request was held"
            );
        })
        .await;
    // The undo goes out after the dropped re-entry, on the held connection, then on a new one.
    tokio::time::sleep(RESPONSE_TIMEOUT * 3).await;
    setup.assert_holds(1, "after the undo");

    setup.deliver_late().await;

    setup.assert_holds(1, "after the late copies of the re-entry and its undo");
    setup.unlock(outer, "outer").await;
    setup.assert_released();
    let fence = format!("{}:fence", family.key(&setup.name));
    let memo_ms = i64::try_from(MEMO_TTL.as_millis()).expect("a short TTL");
    for key in setup.server.keys(&format!("{}*", lock_key(&setup.name))) {
        let pttl: i64 = setup.server.cmd(&["PTTL", &key]);
        assert!(
            key == fence || pttl <= memo_ms,
            "{family:?}: key {key} outlives the memo TTL ({MEMO_TTL:?}): pttl {pttl} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_copies_of_an_undone_reentry_count_nothing_and_leave_no_lasting_key() {
    for_each_family(Family::ALL, late_copies_of_an_undone_reentry).await;
}

/// A re-entry whose caller gives up after it was resent, while Redis is out of reach: its first
/// copy is held on the retired connection, and new connections are refused for longer than the
/// client's retry timeout, so every attempt of the undo fails. Then Redis is reachable again and
/// the first copy lands.
///
/// Required: the undo is tried again until it lands, so nothing of the re-entry stays: the
/// outer guard holds one hold, and its release frees the lock. Before the fix the undo gave up
/// after its retry timeout and the late copy added a hold no guard gives back: the lock stayed
/// held after the outer release, until its lease ran out.
async fn late_copy_of_a_reentry_whose_undo_could_not_land(family: Family) {
    let setup = Setup::new(family, "undo-retried").await;
    let outer = setup.acquire().await;
    outer
        .scope(async {
            setup.proxy.hold_connections();
            setup.proxy.refuse(true);
            let gave_up = tokio::time::timeout(RESPONSE_TIMEOUT * 3 / 2, setup.acquire()).await;
            assert!(
                gave_up.is_err(),
                "{family:?}: the re-entry returned though Redis was out of reach"
            );
        })
        .await;
    // The undo's attempts fail for the whole retry timeout, and more.
    tokio::time::sleep(RETRY_TIMEOUT + RESPONSE_TIMEOUT * 2).await;
    setup.proxy.refuse(false);
    deliver_held(&setup.proxy, &format!("{family:?}'s re-entry")).await;

    let one_hold = eventually(Duration::from_secs(5), || {
        family.hold_counts(&setup.server, &setup.name) == [1]
    })
    .await;
    assert!(
        one_hold,
        "{family:?}: expected the outer hold alone once the undo landed, Redis counts {:?}",
        family.hold_counts(&setup.server, &setup.name)
    );
    setup.unlock(outer, "outer").await;
    setup.assert_released();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_that_cannot_reach_redis_is_tried_again_until_it_lands() {
    for_each_family(
        Family::ALL,
        late_copy_of_a_reentry_whose_undo_could_not_land,
    )
    .await;
}
