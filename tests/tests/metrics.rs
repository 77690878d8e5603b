//! The runtime's metrics (cargo feature `metrics`), read back through metrics-util's debugging
//! recorder: what each primitive records, under which labels, for which outcome.
//!
//! The recorder is global to the process. A snapshot drains it, so every snapshot is added into
//! one shared tally, and each test reads only the series of its own labels: the tests may share
//! a process (`cargo test`) without taking each other's values. They also check that nothing
//! recorded an unlabeled series, which only holds in a process of this file's tests alone: so
//! this is a binary of its own, not a module of `operations`.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use lock_runtime::{LockClient, LockError, Redlock, distribute_lock, metrics};
use lock_tests::{
    RedisServer,
    locks::{assert_released, client_with_watchdog, eventually},
    start_masters, unique_name,
};
use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};

/// One series: metric name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// Every value recorded so far, by series: counters summed, gauges summed (a snapshot drains
/// a gauge too, so the sum of what it drained is its value), histogram values kept.
#[derive(Default)]
struct Tally {
    counters: HashMap<Series, u64>,
    gauges: HashMap<Series, f64>,
    histograms: HashMap<Series, Vec<f64>>,
}

/// The process's recorder (installed on first use) and the tally of what it drained.
fn recorded() -> &'static (Snapshotter, Mutex<Tally>) {
    static RECORDED: OnceLock<(Snapshotter, Mutex<Tally>)> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the first recorder of this process");
        metrics::describe_metrics();
        (snapshotter, Mutex::new(Tally::default()))
    })
}

fn series(key: &CompositeKey) -> Series {
    let mut labels: Vec<(String, String)> = key
        .key()
        .labels()
        .map(|label| (label.key().to_owned(), label.value().to_owned()))
        .collect();
    labels.sort();
    (key.key().name().to_owned(), labels)
}

/// What was recorded for one `lock` label.
struct Readings {
    label: String,
}

impl Readings {
    /// Starts recording (installs the recorder if needed) for a label unique to the test.
    fn new(prefix: &str) -> Self {
        recorded();
        Self {
            label: unique_name(prefix),
        }
    }

    /// Drains the recorder into the tally, then runs `read` on it.
    fn read<T>(&self, read: impl FnOnce(&Tally) -> T) -> T {
        let (snapshotter, tally) = recorded();
        let mut tally = tally.lock().expect("tally");
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let series = series(&key);
            match (key.kind(), value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *tally.counters.entry(series).or_default() += n;
                }
                (MetricKind::Gauge, DebugValue::Gauge(by)) => {
                    *tally.gauges.entry(series).or_default() += by.into_inner();
                }
                (MetricKind::Histogram, DebugValue::Histogram(values)) => tally
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(values.into_iter().map(|value| value.into_inner())),
                _ => {}
            }
        }
        read(&tally)
    }

    /// The labels of a series of this test: `kind`, this label, and `extra`.
    fn labels(&self, kind: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = [("kind", kind), ("lock", self.label.as_str())]
            .iter()
            .chain(extra)
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        labels.sort();
        labels
    }

    /// The counter `name` of `kind` under this label.
    fn counter(&self, name: &str, kind: &str) -> u64 {
        let series = (name.to_owned(), self.labels(kind, &[]));
        self.read(|tally| tally.counters.get(&series).copied().unwrap_or_default())
    }

    /// The gauge `name` of `kind` under this label.
    fn gauge(&self, name: &str, kind: &str) -> f64 {
        let series = (name.to_owned(), self.labels(kind, &[]));
        self.read(|tally| tally.gauges.get(&series).copied().unwrap_or_default())
    }

    /// The gauges `lock_held` and `lock_waiting` of `kind` under this label.
    fn held_and_waiting(&self, kind: &str) -> (f64, f64) {
        (
            self.gauge(metrics::HELD, kind),
            self.gauge(metrics::WAITING, kind),
        )
    }

    /// The wait times of `kind` under this label that ended in `outcome`.
    fn waits(&self, kind: &str, outcome: &str) -> Vec<f64> {
        let series = (
            metrics::WAIT_SECONDS.to_owned(),
            self.labels(kind, &[("outcome", outcome)]),
        );
        self.read(|tally| tally.histograms.get(&series).cloned().unwrap_or_default())
    }

    /// The hold times of `kind` under this label.
    fn holds(&self, kind: &str) -> Vec<f64> {
        let series = (metrics::HOLD_SECONDS.to_owned(), self.labels(kind, &[]));
        self.read(|tally| tally.histograms.get(&series).cloned().unwrap_or_default())
    }

    /// Every series recorded under this label, by name and `kind`.
    fn kinds(&self) -> Vec<(String, String)> {
        self.read(|tally| {
            let mut kinds: Vec<(String, String)> = tally
                .counters
                .keys()
                .chain(tally.gauges.keys())
                .chain(tally.histograms.keys())
                .filter(|(_, labels)| labels.contains(&("lock".to_owned(), self.label.clone())))
                .map(|(name, labels)| {
                    let kind = labels.iter().find(|(key, _)| key == "kind");
                    (
                        name.clone(),
                        kind.map(|(_, kind)| kind.clone()).unwrap_or_default(),
                    )
                })
                .collect();
            kinds.sort();
            kinds.dedup();
            kinds
        })
    }
}

/// The series recorded without a label. Every handle of this file is labeled, so any such
/// series comes from a member of a multi-lock or a Redlock measured on its own.
fn unlabeled_series() -> Vec<Series> {
    let readings = Readings {
        label: metrics::UNLABELED.to_owned(),
    };
    readings.read(|tally| {
        tally
            .counters
            .keys()
            .chain(tally.gauges.keys())
            .chain(tally.histograms.keys())
            .filter(|(_, labels)| labels.iter().any(|(_, value)| value == metrics::UNLABELED))
            .cloned()
            .collect()
    })
}

/// Waits until `condition` holds, for values the background runtime records.
async fn until(condition: impl FnMut() -> bool) {
    assert!(
        eventually(Duration::from_secs(5), condition).await,
        "not recorded in time"
    );
}

/// One holder, then a waiter woken by its release (a hand-off), then a caller that times out,
/// then one that gives up (its future dropped): each ends under its outcome, and both holds are
/// timed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locks_waits_holds_and_outcomes_are_recorded_under_its_label() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let readings = Readings::new("metrics-lock");
    let name = unique_name("metrics-lock");
    let lock = client.lock(&name).metrics_label(readings.label.clone());

    let held = lock.acquire().await.expect("free");
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await.expect("handed").unlock().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let timed_out = lock.try_acquire(Duration::from_millis(50), None).await;
    assert!(timed_out.expect_err("held").is_timeout());
    let gave_up = tokio::time::timeout(Duration::from_millis(50), lock.acquire()).await;
    assert!(gave_up.is_err(), "still held");
    held.unlock().await.expect("unlock");
    waiter.await.expect("join").expect("waiter's unlock");

    assert_eq!(readings.counter(metrics::ACQUISITIONS, "lock"), 2);
    assert_eq!(readings.counter(metrics::HANDOFFS, "lock"), 1);
    assert_eq!(readings.counter(metrics::TIMEOUTS, "lock"), 1);
    let acquired = readings.waits("lock", "acquired");
    assert_eq!(acquired.len(), 2, "{acquired:?}");
    assert!(
        acquired.iter().any(|wait| *wait >= 0.3),
        "the waiter's wait spans the hold: {acquired:?}"
    );
    assert_eq!(readings.waits("lock", "timeout").len(), 1);
    assert_eq!(readings.waits("lock", "cancelled").len(), 1);
    assert!(readings.waits("lock", "error").is_empty());
    let holds = readings.holds("lock");
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert!(
        holds.iter().any(|hold| *hold >= 0.3),
        "the first hold lasted the whole scene: {holds:?}"
    );
    assert_released(&server, &name);
}

/// The gauges follow what is held and waited for now: a hold counts until its release starts
/// (by `unlock()` or by drop), a caller in `acquire` until its acquisition ends, however it
/// ends (acquired, timed out, cancelled). A re-entry neither waits nor holds anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gauges_count_what_is_held_and_waited_for_now() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let readings = Readings::new("metrics-gauges");
    let name = unique_name("metrics-gauges");
    let lock = client.lock(&name).metrics_label(readings.label.clone());
    assert_eq!(readings.held_and_waiting("lock"), (0.0, 0.0));

    let held = lock.acquire().await.expect("free");
    assert_eq!(readings.held_and_waiting("lock"), (1.0, 0.0));
    held.scope(async { lock.acquire().await.expect("re-entry").unlock().await })
        .await
        .expect("inner unlock");
    assert_eq!(readings.held_and_waiting("lock"), (1.0, 0.0), "a re-entry");

    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await }
    });
    until(|| readings.held_and_waiting("lock") == (1.0, 1.0)).await;
    let timed_out = lock.try_acquire(Duration::from_millis(50), None).await;
    assert!(timed_out.expect_err("held").is_timeout());
    let gave_up = tokio::time::timeout(Duration::from_millis(50), lock.acquire()).await;
    assert!(gave_up.is_err(), "still held");
    assert_eq!(
        readings.held_and_waiting("lock"),
        (1.0, 1.0),
        "a timeout and a cancellation end their waits"
    );

    held.unlock().await.expect("unlock");
    let handed = waiter.await.expect("join").expect("handed over");
    assert_eq!(readings.held_and_waiting("lock"), (1.0, 0.0));
    drop(handed);
    assert_eq!(
        readings.held_and_waiting("lock"),
        (0.0, 0.0),
        "a dropped guard"
    );
    client.flush().await;
    assert_released(&server, &name);
}

/// A re-entry neither waits nor takes anything new: it is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentry_is_not_counted() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let readings = Readings::new("metrics-reentry");
    let name = unique_name("metrics-reentry");
    let lock = client.lock(&name).metrics_label(readings.label.clone());
    let outer = lock.acquire().await.expect("outer");
    outer
        .scope(async { lock.acquire().await.expect("re-entry").unlock().await })
        .await
        .expect("inner unlock");
    outer.unlock().await.expect("outer unlock");
    assert_eq!(readings.counter(metrics::ACQUISITIONS, "lock"), 1);
    assert_eq!(readings.holds("lock").len(), 1);
}

/// The watchdog's renewals are counted, and so is the loss it finds when the lock is
/// force-unlocked under its holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_and_a_lost_lease_are_counted() {
    let server = RedisServer::start();
    let client = client_with_watchdog(&server, Duration::from_millis(300)).await;
    let readings = Readings::new("metrics-lease");
    let name = unique_name("metrics-lease");
    let lock = client.lock(&name).metrics_label(readings.label.clone());
    let guard = lock.acquire().await.expect("free");
    until(|| readings.counter(metrics::RENEWALS, "lock") >= 2).await;
    assert_eq!(readings.counter(metrics::LEASE_LOSSES, "lock"), 0);
    assert!(lock.force_unlock().await.expect("force"));
    tokio::time::timeout(Duration::from_secs(2), guard.lease_lost())
        .await
        .expect("the watchdog finds the lock gone");
    assert_eq!(readings.counter(metrics::LEASE_LOSSES, "lock"), 1);
    assert!(guard.unlock().await.expect_err("lost").is_not_held());
}

/// A fixed lease that runs out under a caller awaiting `lease_lost()` counts as lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_lease_running_out_counts_as_lost() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let readings = Readings::new("metrics-fixed");
    let name = unique_name("metrics-fixed");
    let lock = client.lock(&name).metrics_label(readings.label.clone());
    let guard = lock
        .try_acquire(Duration::ZERO, Some(Duration::from_millis(200)))
        .await
        .expect("free");
    guard.lease_lost().await;
    assert_eq!(readings.counter(metrics::LEASE_LOSSES, "lock"), 1);
    assert_eq!(readings.counter(metrics::RENEWALS, "lock"), 0);
    drop(guard);
}

/// Every primitive records under its own `kind`: the fair lock, the read and write locks, the
/// semaphore, the multi-lock (as a whole: its members record nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_primitive_records_under_its_kind() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let readings = Readings::new("metrics-kinds");
    let label = readings.label.clone();
    let name = unique_name("metrics-kinds");

    let fair = client.fair_lock(format!("{name}:fair"));
    drop(
        fair.metrics_label(label.clone())
            .acquire()
            .await
            .expect("fair"),
    );
    let rw = client
        .read_write_lock(format!("{name}:rw"))
        .metrics_label(label.clone());
    rw.read()
        .acquire()
        .await
        .expect("read")
        .unlock()
        .await
        .expect("r");
    rw.write()
        .acquire()
        .await
        .expect("write")
        .unlock()
        .await
        .expect("w");
    let semaphore = client
        .semaphore(format!("{name}:sem"))
        .metrics_label(label.clone());
    assert!(semaphore.try_set_permits(2).await.expect("set"));
    semaphore
        .acquire(2)
        .await
        .expect("permits")
        .release()
        .await
        .expect("p");
    let multi = client
        .multi_lock([format!("{name}:a"), format!("{name}:b")])
        .metrics_label(label.clone());
    multi
        .acquire()
        .await
        .expect("multi")
        .unlock()
        .await
        .expect("m");

    for kind in [
        "fair_lock",
        "read_lock",
        "write_lock",
        "semaphore",
        "multi_lock",
    ] {
        assert_eq!(readings.counter(metrics::ACQUISITIONS, kind), 1, "{kind}");
        assert_eq!(readings.waits(kind, "acquired").len(), 1, "{kind}");
        until(|| readings.holds(kind).len() == 1).await;
        assert_eq!(readings.held_and_waiting(kind), (0.0, 0.0), "{kind}");
    }
    let kinds = readings.kinds();
    assert!(
        kinds.iter().all(|(_, kind)| kind != "lock"),
        "the multi-lock's members are not measured one by one: {kinds:?}"
    );
    assert_eq!(unlabeled_series(), Vec::<Series>::new());
}

/// A Redlock is measured as a whole: one acquisition and one hold, not one per master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redlock_is_measured_as_a_whole() {
    let masters = start_masters(3);
    let mut clients = Vec::new();
    for master in &masters {
        clients.push(LockClient::connect(&master.url()).await.expect("connect"));
    }
    let redlock = Redlock::new(clients).expect("redlock");
    let readings = Readings::new("metrics-redlock");
    let lock = redlock
        .lock(unique_name("metrics-redlock"))
        .metrics_label(readings.label.clone());
    lock.acquire()
        .await
        .expect("quorum")
        .unlock()
        .await
        .expect("unlock");

    assert_eq!(readings.counter(metrics::ACQUISITIONS, "redlock"), 1);
    assert_eq!(readings.holds("redlock").len(), 1);
    assert_eq!(readings.held_and_waiting("redlock"), (0.0, 0.0));
    let kinds = readings.kinds();
    assert!(kinds.iter().all(|(_, kind)| kind == "redlock"), "{kinds:?}");
    assert_eq!(unlabeled_series(), Vec::<Series>::new());
}

/// A client whose `lock` label is the template of the attribute that uses it.
struct Store {
    locks: LockClient,
}

impl Store {
    #[distribute_lock(key = "metrics-item:{id}", client = self.locks)]
    async fn touch(&self, id: u64) -> Result<u64, LockError> {
        Ok(id)
    }

    #[distribute_lock(keys = ["metrics-from:{from}", "metrics-to:{to}"], client = self.locks)]
    async fn transfer(&self, from: u64, to: u64) -> Result<(), LockError> {
        let _ = (from, to);
        Ok(())
    }
}

/// Runs `calls` and reads the counter `name` of `kind` under `label` before and after: the
/// attribute's labels are fixed templates, so the test cannot pick a unique one and reads the
/// difference instead.
async fn counted<F: Future<Output = ()>>(label: &str, kind: &str, calls: F) -> u64 {
    let readings = Readings {
        label: label.to_owned(),
    };
    recorded();
    let before = readings.counter(metrics::ACQUISITIONS, kind);
    calls.await;
    readings.counter(metrics::ACQUISITIONS, kind) - before
}

/// The attribute labels by the key's template, never by the formatted name: three items, one
/// series; a multi-lock by its templates joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attribute_labels_by_its_template() {
    let server = RedisServer::start();
    let store = Store {
        locks: LockClient::connect(&server.url()).await.expect("connect"),
    };
    let touched = counted("metrics-item:{id}", "lock", async {
        for id in 1..=3 {
            assert_eq!(store.touch(id).await.expect("touch"), id);
        }
    })
    .await;
    assert_eq!(touched, 3);
    let moved = counted("metrics-from:{from},metrics-to:{to}", "multi_lock", async {
        store.transfer(1, 2).await.expect("transfer");
    })
    .await;
    assert_eq!(moved, 1);
    let formatted = recorded()
        .1
        .lock()
        .expect("tally")
        .counters
        .keys()
        .any(|(_, labels)| {
            labels
                .iter()
                .any(|(key, value)| key == "lock" && value.starts_with("metrics-item:1"))
        });
    assert!(!formatted, "a formatted name became a label");
    for id in 1..=3 {
        assert_released(&server, &format!("metrics-item:{id}"));
    }
}
