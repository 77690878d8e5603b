//! Every `.await` of every lock of the family is a place where the caller may give up (DESIGN
//! 3.2): a sweep of cancellation points across each operation's round trip leaves nothing held,
//! for the reentrant lock, the fair lock, and the read and write locks (and the semaphore, the
//! multi-lock and `exec`, below).
//!
//! The client talks to Redis through a proxy that delays every chunk by [`DELAY`] each way, so a
//! request is on the wire for a long while, measured once as the round trip. Each operation is
//! then cut short by `tokio::time::timeout` at every point of [`CUT_POINTS`] (fractions of that
//! round trip): before its request leaves, while the request travels, after Redis ran it but
//! before the reply arrives, and after it completed. Releases are also cut with the connections
//! reset right after, so a request already written is lost and only a release that goes on in
//! the background frees the lock.
//! Whatever the point, once the background work settles the lock must be free (a third client
//! takes it at once), hold no extra count, and leave no key without a TTL.
//!
//! The locks' sweeps run twice for the reentrant and the fair lock: with the client on the
//! library's own runtime (the default), and on the test's runtime
//! (`LockClientBuilder::background_runtime`), where the undos and background releases of the
//! cut operations run beside the test.

use std::time::Duration;

use lock_runtime::{LockClient, LockGuard};
use lock_tests::{
    RedisServer, TcpProxy,
    locks::{Family, eventually},
    unique_name,
};

/// Which runtime the client whose operations are cut runs its background work on.
#[derive(Debug, Clone, Copy)]
enum On {
    /// The library's own (the default).
    Library,
    /// The test's (`LockClientBuilder::background_runtime`).
    Test,
}

/// One-way delay of the proxy: a round trip takes about twice this.
const DELAY: Duration = Duration::from_millis(40);

/// Where an operation is cut, in percent of one round trip after it starts: 0 (never polled to
/// the wire), during the request's trip, around Redis running it (half way), during the reply's
/// trip, and after the reply.
const CUT_POINTS: [u32; 10] = [0, 5, 20, 35, 45, 55, 65, 80, 95, 150];

/// How long the background undo or release may take to settle once the caller gave up: a few
/// round trips through the proxy.
const SETTLE: Duration = Duration::from_secs(2);

struct Fixture {
    server: RedisServer,
    proxy: TcpProxy,
    /// Through the proxy: the client whose operations are cut short.
    slow: LockClient,
    /// Straight to Redis: checks that the lock is free.
    direct: LockClient,
    /// One request's round trip through the proxy.
    round_trip: Duration,
}

impl Fixture {
    /// A fixture for the lock `family`, warmed up by taking, re-entering and releasing it.
    async fn new(family: Family, on: On) -> Self {
        Self::warmed_up(on, |slow, name| async move {
            let outer = family.acquire(&slow, &name).await.expect("warm-up");
            outer
                .scope(async { family.acquire(&slow, &name).await?.unlock().await })
                .await
                .expect("warm-up re-entry");
            outer.unlock().await.expect("warm-up unlock");
        })
        .await
    }

    /// A fixture whose slow client, on the runtime `on` says, ran `warm_up` (on a fresh name)
    /// before the proxy's delay began.
    async fn warmed_up<F>(on: On, warm_up: impl FnOnce(LockClient, String) -> F) -> Self
    where
        F: Future<Output = ()>,
    {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(server.port()).await;
        let slow = LockClient::builder().url(proxy.url());
        let slow = match on {
            On::Library => slow,
            On::Test => slow.background_runtime(tokio::runtime::Handle::current()),
        };
        let slow = slow.build().await.expect("connect through the proxy");
        let direct = LockClient::connect(&server.url()).await.expect("connect");
        // Warm up before the delay: connections open, and every script the operations send
        // cached in Redis (a cold `EVALSHA` is answered `NOSCRIPT` and runs one round trip
        // later, which would put every cut before the request runs).
        let name = unique_name("warm-up");
        warm_up(slow.clone(), name.clone()).await;
        proxy.set_delay(DELAY);
        let started = std::time::Instant::now();
        slow.lock(&name).is_locked().await.expect("one round trip");
        let round_trip = started.elapsed();
        assert!(
            round_trip >= DELAY * 2,
            "one request took {round_trip:?}: the proxy does not delay, so no cut would fall in flight"
        );
        Self {
            server,
            proxy,
            slow,
            direct,
            round_trip,
        }
    }

    /// `percent` of a round trip.
    fn at(&self, percent: u32) -> Duration {
        self.round_trip * percent / 100
    }

    fn is_held(&self, family: Family, name: &str) -> bool {
        self.server.cmd::<i64>(&["EXISTS", &family.key(name)]) == 1
    }

    fn owners(&self, family: Family, name: &str) -> Vec<String> {
        self.server.cmd(&["HGETALL", &family.key(name)])
    }

    /// Waits for the lock to be free, then checks another client takes it at once and that
    /// nothing of it is left behind.
    ///
    /// A request the caller gave up on may still be on the wire, behind the proxy's delay, and
    /// take the lock when it lands; its undo, sent after it on the same connection, lands after
    /// it and gives the lock back. So first let a few round trips pass: what must hold is that
    /// nothing *stays* held.
    async fn assert_free(&self, family: Family, name: &str, what: &str) {
        tokio::time::sleep(self.round_trip * 3).await;
        assert!(
            eventually(SETTLE, || !self.is_held(family, name)).await,
            "{what}: the lock stayed held ({:?}) after the caller gave up",
            self.owners(family, name)
        );
        let guard = family
            .try_acquire(&self.direct, name, Duration::from_millis(200), None)
            .await
            .unwrap_or_else(|err| panic!("{what}: another client cannot take the lock: {err}"));
        guard.unlock().await.expect("unlock");
        if self.is_held(family, name) {
            panic!(
                "{what}: the lock was taken again after it was freed: {:?} (slow client {}, direct client {})",
                self.owners(family, name),
                self.slow.id(),
                self.direct.id()
            );
        }
        family.assert_released(&self.server, name);
    }
}

/// The outcome of an operation cut short after `cut`: its output if it finished first.
async fn cut_short<T>(cut: Duration, operation: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(cut, operation).await.ok()
}

/// The lock that makes a waiter of `family` wait: the same lock, or the write lock for a reader.
fn blocker(family: Family) -> Family {
    match family {
        Family::Read => Family::Write,
        other => other,
    }
}

async fn an_acquire_cut_short_anywhere_leaves_nothing_held(family: Family, on: On) {
    let f = Fixture::new(family, on).await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-acquire");
        let acquiring = family.try_acquire(&f.slow, &name, Duration::from_secs(5), None);
        if let Some(acquired) = cut_short(f.at(cut), acquiring).await {
            acquired
                .expect("a free lock")
                .unlock()
                .await
                .expect("unlock");
        }
        f.assert_free(family, &name, &format!("acquire cut at {cut} %"))
            .await;
    }
}

async fn a_waiter_cut_short_anywhere_leaves_nothing_held(family: Family, on: On) {
    let f = Fixture::new(family, on).await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-waiter");
        let holder = blocker(family)
            .acquire(&f.direct, &name)
            .await
            .expect("holder");
        // Released while the waiter's request may be on the wire.
        let release_at = f.at(cut / 2);
        let releasing = async {
            tokio::time::sleep(release_at).await;
            holder.unlock().await.expect("holder unlock");
        };
        let waiting = cut_short(
            f.at(cut),
            family.try_acquire(&f.slow, &name, Duration::from_secs(5), None),
        );
        let (waited, ()) = tokio::join!(waiting, releasing);
        if let Some(acquired) = waited {
            acquired
                .expect("released meanwhile")
                .unlock()
                .await
                .expect("unlock");
        }
        f.assert_free(family, &name, &format!("waiter cut at {cut} %"))
            .await;
    }
}

async fn an_unlock_cut_short_anywhere_still_releases(family: Family, on: On) {
    let f = Fixture::new(family, on).await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-unlock");
        let guard = family.acquire(&f.slow, &name).await.expect("acquire");
        let _ = cut_short(f.at(cut), guard.unlock()).await;
        // Whatever was written is lost: only a release that goes on in the background, and
        // resends on a new connection, frees the lock now.
        f.proxy.drop_connections();
        f.assert_free(family, &name, &format!("unlock cut at {cut} %"))
            .await;
    }
}

async fn a_reentry_cut_short_anywhere_leaves_no_extra_hold(family: Family, on: On) {
    let f = Fixture::new(family, on).await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-reentry");
        let outer = family.acquire(&f.slow, &name).await.expect("acquire");
        let inner: Option<LockGuard> = outer
            .scope(async {
                cut_short(f.at(cut), family.acquire(&f.slow, &name))
                    .await
                    .map(|reentered| reentered.expect("re-entry"))
            })
            .await;
        if let Some(inner) = inner {
            inner.unlock().await.expect("inner unlock");
        }
        outer.unlock().await.expect("outer unlock");
        f.assert_free(family, &name, &format!("re-entry cut at {cut} %"))
            .await;
    }
}

/// The free permits of semaphore `name`, after its operations cut short settle: all of them.
async fn assert_permits_free(f: &Fixture, name: &str, total: u64, what: &str) {
    tokio::time::sleep(f.round_trip * 3).await;
    let semaphore = f.direct.semaphore(name);
    let mut free = 0;
    for _ in 0..(SETTLE.as_millis() / 10) {
        free = semaphore.available_permits().await.expect("count");
        if free == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        free, total,
        "{what}: permits stayed held after the caller gave up"
    );
    let queued: i64 = f
        .server
        .cmd(&["ZCARD", &format!("{{lock:{name}}}:sem:queue")]);
    assert_eq!(queued, 0, "{what}: a waiter stayed queued");
}

/// A fixture for the semaphore, warmed up by setting, taking and releasing permits.
async fn semaphore_fixture() -> Fixture {
    Fixture::warmed_up(On::Library, |slow, name| async move {
        let semaphore = slow.semaphore(name);
        semaphore.try_set_permits(1).await.expect("warm-up");
        let permit = semaphore.acquire(1).await.expect("warm-up");
        permit.release().await.expect("warm-up release");
        semaphore.available_permits().await.expect("warm-up count");
    })
    .await
}

/// Permits asked, or waited for, and the caller gives up at every point: all come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_acquire_or_wait_cut_short_anywhere_leaves_no_permit_held() {
    let f = semaphore_fixture().await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-permits");
        let semaphore = f.slow.semaphore(&name);
        f.direct
            .semaphore(&name)
            .try_set_permits(2)
            .await
            .expect("set");
        let acquiring = semaphore.try_acquire(2, Duration::from_secs(5), None);
        if let Some(permit) = cut_short(f.at(cut), acquiring).await {
            permit.expect("free").release().await.expect("release");
        }
        assert_permits_free(&f, &name, 2, &format!("acquire cut at {cut} %")).await;

        let holder = f.direct.semaphore(&name).acquire(2).await.expect("holder");
        let releasing = async {
            tokio::time::sleep(f.at(cut / 2)).await;
            holder.release().await.expect("holder release");
        };
        let waiting = cut_short(
            f.at(cut),
            semaphore.try_acquire(1, Duration::from_secs(5), None),
        );
        let (waited, ()) = tokio::join!(waiting, releasing);
        if let Some(permit) = waited {
            permit
                .expect("released meanwhile")
                .release()
                .await
                .expect("release");
        }
        assert_permits_free(&f, &name, 2, &format!("waiter cut at {cut} %")).await;
    }
}

/// A release cut short anywhere, its connections then reset, still frees the permits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_release_cut_short_anywhere_still_releases() {
    let f = semaphore_fixture().await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-permit-release");
        f.direct
            .semaphore(&name)
            .try_set_permits(1)
            .await
            .expect("set");
        let permit = f.slow.semaphore(&name).acquire(1).await.expect("acquire");
        let _ = cut_short(f.at(cut), permit.release()).await;
        f.proxy.drop_connections();
        assert_permits_free(&f, &name, 1, &format!("release cut at {cut} %")).await;
    }
}

/// Whether the semaphore `name` is whole (its total, every permit free) or gone (no key of it
/// but its recent requests and its notes of ended acquisitions, which carry a TTL): never in
/// part. Returns whether it is whole.
async fn whole_or_gone(f: &Fixture, name: &str, what: &str) -> bool {
    let info = f.direct.semaphore(name).info().await.expect("info");
    let left: Vec<String> = f
        .server
        .keys(&format!("{{lock:{name}}}:sem*"))
        .into_iter()
        .filter(|key| !key.ends_with(":requests") && !key.ends_with(":lost"))
        .collect();
    match info.total_permits() {
        Some(total) => {
            assert_eq!(info.available_permits(), total, "{what}: {info:?}");
            true
        }
        None => {
            assert!(left.is_empty(), "{what}: deleted in part, left {left:?}");
            false
        }
    }
}

/// `delete_if_unused` cut short at every point (DESIGN 3.2): one atomic script, sent or not.
/// An unused semaphore ends whole or gone, never in part; one in use is not deleted, neither
/// then nor once its holder leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_delete_cut_short_anywhere_is_all_or_nothing() {
    let f = semaphore_fixture().await;
    // Its script cached in Redis, so that every cut falls on a request that runs.
    let warm_up = f.slow.semaphore(unique_name("warm-up-delete"));
    assert!(warm_up.delete_if_unused().await.expect("warm-up"));
    for cut in CUT_POINTS {
        let name = unique_name("cut-delete");
        let (direct, slow) = (f.direct.semaphore(&name), f.slow.semaphore(&name));
        direct.try_set_permits(2).await.expect("set");
        let answered = cut_short(f.at(cut), slow.delete_if_unused()).await;
        tokio::time::sleep(f.round_trip * 3).await;
        let whole = whole_or_gone(&f, &name, &format!("unused, cut at {cut} %")).await;
        if let Some(deleted) = answered {
            assert!(
                deleted.expect("answered") && !whole,
                "cut at {cut} %: answered, not deleted"
            );
        }

        direct.try_set_permits(2).await.expect("set");
        let held = direct.acquire(1).await.expect("free");
        let _ = cut_short(f.at(cut), slow.delete_if_unused()).await;
        tokio::time::sleep(f.round_trip * 3).await;
        held.release().await.expect("release");
        tokio::time::sleep(f.round_trip * 3).await;
        assert!(
            whole_or_gone(&f, &name, &format!("in use, cut at {cut} %")).await,
            "cut at {cut} %: deleted though in use when it ran"
        );
    }
}

/// A multi-lock of two locks, acquired or waited for while one member is held, and released,
/// each cut short at every point: both members end up free. Its members are taken one after the
/// other, so the cuts fall on the first member's request, between the two, and on the second's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_lock_cut_short_anywhere_leaves_no_member_held() {
    let f = Fixture::new(Family::Reentrant, On::Library).await;
    let wait = Duration::from_secs(5);
    for cut in CUT_POINTS {
        let names = [unique_name("cut-multi-a"), unique_name("cut-multi-b")];
        let multi = f.slow.multi_lock(names.clone());
        // Twice a round trip: both members' requests are on the wire in turn.
        if let Some(taken) = cut_short(f.at(cut * 2), multi.try_acquire(wait, None)).await {
            taken.expect("free").unlock().await.expect("unlock");
        }
        for name in &names {
            f.assert_free(
                Family::Reentrant,
                name,
                &format!("multi-lock acquire cut at {cut} %"),
            )
            .await;
        }

        let holder = f.direct.lock(&names[1]).acquire().await.expect("holder");
        let releasing = async {
            tokio::time::sleep(f.at(cut)).await;
            holder.unlock().await.expect("holder unlock");
        };
        let waiting = cut_short(f.at(cut * 2), multi.try_acquire(wait, None));
        let (waited, ()) = tokio::join!(waiting, releasing);
        if let Some(taken) = waited {
            taken
                .expect("released meanwhile")
                .unlock()
                .await
                .expect("unlock");
        }
        for name in &names {
            f.assert_free(
                Family::Reentrant,
                name,
                &format!("multi-lock wait cut at {cut} %"),
            )
            .await;
        }

        let held = multi.acquire().await.expect("acquire");
        let _ = cut_short(f.at(cut), held.unlock()).await;
        f.proxy.drop_connections();
        for name in &names {
            f.assert_free(
                Family::Reentrant,
                name,
                &format!("multi-lock unlock cut at {cut} %"),
            )
            .await;
        }
    }
}

/// A lock-checked write cut short at every point: the lock stays held by its guard (exec takes
/// nothing), and its commands ran all or none (one script), never half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_cut_short_anywhere_runs_all_or_nothing_and_holds_nothing_more() {
    let f = Fixture::warmed_up(On::Library, |slow, name| async move {
        let guard = slow.lock(&name).acquire().await.expect("warm-up");
        let mut pipe = redis::pipe();
        pipe.get(format!("{}:data", guard.hash_tag()));
        guard.exec::<()>(&pipe).await.expect("warm-up exec");
        guard.unlock().await.expect("warm-up unlock");
    })
    .await;
    for cut in CUT_POINTS {
        let name = unique_name("cut-exec");
        let guard = f.slow.lock(&name).acquire().await.expect("acquire");
        let (first, second) = (
            format!("{}:first", guard.hash_tag()),
            format!("{}:second", guard.hash_tag()),
        );
        let mut pipe = redis::pipe();
        pipe.set(&first, 1).ignore().set(&second, 2).ignore();
        let _ = cut_short(f.at(cut), guard.exec::<()>(&pipe)).await;
        tokio::time::sleep(f.round_trip * 3).await;
        let written: (Option<i64>, Option<i64>) = (
            f.server.cmd(&["GET", &first]),
            f.server.cmd(&["GET", &second]),
        );
        assert!(
            matches!(written, (None, None) | (Some(1), Some(2))),
            "exec cut at {cut} %: half of it ran: {written:?}"
        );
        guard.unlock().await.expect("still held, released");
        let _: i64 = f.server.cmd(&["DEL", &first, &second]);
        f.assert_free(Family::Reentrant, &name, &format!("exec cut at {cut} %"))
            .await;
    }
}

/// One test per operation and lock of the family (`cancellation::read::an_unlock_…`), so each
/// runs, and fails, on its own.
macro_rules! sweep {
    ($($module:ident => $family:expr, $on:expr),+ $(,)?) => {
        $(
            mod $module {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn an_acquire_cut_short_anywhere_leaves_nothing_held() {
                    super::an_acquire_cut_short_anywhere_leaves_nothing_held($family, $on).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn a_waiter_cut_short_anywhere_leaves_nothing_held() {
                    super::a_waiter_cut_short_anywhere_leaves_nothing_held($family, $on).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn an_unlock_cut_short_anywhere_still_releases() {
                    super::an_unlock_cut_short_anywhere_still_releases($family, $on).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn a_reentry_cut_short_anywhere_leaves_no_extra_hold() {
                    super::a_reentry_cut_short_anywhere_leaves_no_extra_hold($family, $on).await;
                }
            }
        )+
    };
}

sweep! {
    reentrant => Family::Reentrant, On::Library,
    fair => Family::Fair, On::Library,
    read => Family::Read, On::Library,
    write => Family::Write, On::Library,
    reentrant_on_the_tests_runtime => Family::Reentrant, On::Test,
    fair_on_the_tests_runtime => Family::Fair, On::Test,
}
