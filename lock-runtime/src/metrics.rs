//! Metrics: how long callers wait for locks and hold them, and how often they time out, lose a
//! lease or are handed a lock. Recorded through the [`metrics`](https://docs.rs/metrics) facade
//! when the `metrics` cargo feature is on, so any exporter plugs in (Prometheus, StatsD,
//! OpenTelemetry, …); without the feature nothing is recorded and nothing is compiled in.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | [`WAIT_SECONDS`] `lock_wait_seconds` | histogram | `kind`, `lock`, `outcome` | time in a fresh acquisition, until `acquired`, `timeout`, `error`, or `cancelled` (the caller dropped it) |
//! | [`HOLD_SECONDS`] `lock_hold_seconds` | histogram | `kind`, `lock` | from the guard's making to its release (`unlock()` or drop) |
//! | [`ACQUISITIONS`] `lock_acquisitions_total` | counter | `kind`, `lock` | fresh acquisitions |
//! | [`TIMEOUTS`] `lock_timeouts_total` | counter | `kind`, `lock` | acquisitions whose wait ran out |
//! | [`HANDOFFS`] `lock_handoffs_total` | counter | `kind`, `lock` | acquisitions made right after a release woke the waiter or handed it the lock |
//! | [`RENEWALS`] `lock_renewals_total` | counter | `kind`, `lock` | lease renewals by the watchdog |
//! | [`LEASE_LOSSES`] `lock_lease_losses_total` | counter | `kind`, `lock` | leases known lost while held |
//! | [`HELD`] `lock_held` | gauge | `kind`, `lock` | holds now: guards made and not yet released (a hold whose lease was lost counts until its guard is released or dropped) |
//! | [`WAITING`] `lock_waiting` | gauge | `kind`, `lock` | callers in a fresh acquisition now: waiting for the lock, or in their first try |
//!
//! - `kind` is the primitive: `lock`, `fair_lock`, `read_lock`, `write_lock`, `semaphore`,
//!   `multi_lock` or `redlock`.
//! - `lock` is a label chosen by the caller, never the lock's name: names such as `stock:42`
//!   are unbounded, and every distinct label value is a series the exporter keeps forever.
//!   `#[distribute_lock]` labels with the key's template (`stock:{product_id}`, or the
//!   templates of `keys = [...]` joined by `,`); a handle takes one with `metrics_label`
//!   ([`Lock::metrics_label`](crate::Lock::metrics_label)); a handle given none is
//!   [`UNLABELED`].
//! - Re-entries are not measured: they neither wait nor take anything new. A multi-lock and a
//!   Redlock are measured as a whole (wait, acquisitions, timeouts, holds), not member by
//!   member. A lease counts as lost when the runtime learns of it: the watchdog finds the hold
//!   gone, or the lease's deadline passes while someone awaits `lease_lost()` (the attribute
//!   always does).
//! - The gauges say what the histograms cannot while it lasts: a lock held for an hour shows
//!   in `lock_held` the whole hour, and in `lock_hold_seconds` only once released. They count
//!   what this process holds and waits for; sum them over the processes (Prometheus:
//!   `sum by (lock) (lock_held)`). A series appears at its first acquisition.
//!
//! # Prometheus
//!
//! With the `metrics-exporter-prometheus` crate, which serves every series on an HTTP
//! endpoint for Prometheus to scrape:
//!
//! ```ignore
//! // Cargo.toml: lock-runtime = { version = "…", features = ["metrics"] }
//! //             metrics-exporter-prometheus = "0.17"
//! metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .with_http_listener(([0, 0, 0, 0], 9000))
//!     .install()?;
//! lock_runtime::metrics::describe_metrics();
//!
//! let guard = client.lock("stock:42").metrics_label("stock").acquire().await?;
//! ```
//!
//! `curl localhost:9000/metrics` then shows, among others:
//!
//! ```text
//! lock_acquisitions_total{kind="lock",lock="stock"} 1
//! lock_wait_seconds{kind="lock",lock="stock",outcome="acquired",quantile="0.99"} 0.000412
//! ```
//!
//! and a p99 of the time spent waiting, per lock label, is
//! `histogram_quantile(0.99, sum by (lock, le) (rate(lock_wait_seconds_bucket[5m])))` once the
//! exporter is set to publish buckets (`set_buckets`).

/// Histogram of the time spent in a fresh acquisition, in seconds, by `kind`, `lock` and
/// `outcome` (`acquired`, `timeout`, `error`, `cancelled`).
pub const WAIT_SECONDS: &str = "lock_wait_seconds";
/// Histogram of the time a hold was kept, in seconds, from the guard's making to its release.
pub const HOLD_SECONDS: &str = "lock_hold_seconds";
/// Counter of fresh acquisitions (re-entries are not counted).
pub const ACQUISITIONS: &str = "lock_acquisitions_total";
/// Counter of acquisitions that gave up when their wait ran out ([`LockError::Timeout`](crate::LockError::Timeout)).
pub const TIMEOUTS: &str = "lock_timeouts_total";
/// Counter of acquisitions made right after a release woke the waiter (or handed it the lock):
/// the lock passed from one holder to a waiter, rather than being found free.
pub const HANDOFFS: &str = "lock_handoffs_total";
/// Counter of lease renewals made by the watchdog.
pub const RENEWALS: &str = "lock_renewals_total";
/// Counter of leases known lost while held (see `LockGuard::lease_lost`).
pub const LEASE_LOSSES: &str = "lock_lease_losses_total";
/// Gauge of the holds made and not yet released, in this process: it goes up when an
/// acquisition hands out its guard and down when the release starts (`unlock()`, drop).
pub const HELD: &str = "lock_held";
/// Gauge of the callers in a fresh acquisition, in this process: it goes up when an acquisition
/// starts and down when it ends, however it ends (acquired, timed out, failed, cancelled).
pub const WAITING: &str = "lock_waiting";
/// The `lock` label of a handle given none.
pub const UNLABELED: &str = "unlabeled";

/// Describes every metric (unit and help text) to the installed recorder, for exporters that
/// publish descriptions (Prometheus's `# HELP`). Optional: call it once, after installing the
/// recorder.
#[cfg(feature = "metrics")]
pub fn describe_metrics() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

    describe_histogram!(
        WAIT_SECONDS,
        Unit::Seconds,
        "Time spent in a fresh lock acquisition, by outcome"
    );
    describe_histogram!(HOLD_SECONDS, Unit::Seconds, "Time a lock was held");
    describe_counter!(ACQUISITIONS, "Fresh lock acquisitions");
    describe_counter!(TIMEOUTS, "Lock acquisitions that timed out");
    describe_counter!(
        HANDOFFS,
        "Lock acquisitions made right after a release woke the waiter"
    );
    describe_counter!(RENEWALS, "Lease renewals by the watchdog");
    describe_counter!(LEASE_LOSSES, "Leases known lost while held");
    describe_gauge!(HELD, "Lock holds made and not yet released");
    describe_gauge!(WAITING, "Callers in a fresh lock acquisition");
}
