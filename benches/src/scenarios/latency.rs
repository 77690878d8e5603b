//! Scenario 1: uncontended acquire + release latency against the two-round-trip floor.
//!
//! One task acquires a lock nobody else wants and releases it, in a loop. The reference is the
//! physical floor of any lock that takes one request to acquire and one to release: two
//! sequential `EVALSHA` calls of the trivial script `return 1` on one multiplexed connection,
//! from the same process and runtime. The series are interleaved one operation at a time (floor,
//! ours, peers, in an order shuffled every iteration) so that a noisy moment of the machine hits
//! them all alike. Beside them runs the Redisson-style reference ([`crate::redisson`]) through a
//! plain redis-rs connection: what the lock most users compare with costs on the same path, so
//! the report can tell the part of our distance to the floor that any script lock of its kind
//! pays (Redis running a script rather than `return 1`) from the part that is ours.
//!
//! # The floor of a pub/sub hand-off
//!
//! After the series, the scenario measures what any hand-off through pub/sub costs at the least,
//! the reference of the contended hand-offs of scenario 3: an `EVALSHA` of a script that only
//! publishes (a release that does nothing else), sent on a multiplexed connection, until a plain
//! redis-rs subscriber receives the message. The subscriber runs on an OS thread of its own with
//! a current-thread runtime, as lock-runtime's hub runs on its background runtime's thread, so
//! the figure includes waking that thread; it does not include waking a task on another runtime,
//! which a lock's waiter adds. Both ends are in this process, so one `Instant` clock times them.
//! The deliveries are sequential: each waits for the one before to arrive.
//!
//! Sent one right after the other, they find Redis and the subscriber's thread awake. A
//! contended hand-off does not: through the holder's critical section Redis, the releasing
//! process's threads and the waiter's sleep, and so may the CPUs they run on. So the same
//! deliveries are measured again, each after a pause as long as scenario 3's critical section:
//! the floor of a hand-off after idling, which the report shows beside the first.

use std::{
    thread::JoinHandle,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use lock_tests::unique_name;
use redis::aio::{MultiplexedConnection, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use crate::{
    BenchResult,
    contenders::{
        ClientRuntime, Contender, ContenderSettings, Implementation, multiplexed_connection,
    },
    progress::Progress,
    redis_stats::{Admin, client_usec, requests_usec},
    redisson::{RedissonReference, SCRIPT_COMMANDS},
    results::{
        IdleDelivery, LatencyResult, LatencySeries, Percentiles, WorkerLatency, WorkerSeries,
        log_buckets, new_histogram, record,
    },
    util::{fmt_ns, saturating_ns},
};

/// Sizes of scenario 1.
#[derive(Debug, Clone, Copy)]
pub struct LatencyParams {
    /// Measured iterations per series.
    pub iterations: u64,
    /// Unmeasured iterations per series first.
    pub warm_up: u64,
    /// Iterations per series of the pass that reads Redis's own time per operation.
    pub calibration: u64,
    /// Deliveries of the pub/sub floor measured again, each after a pause of
    /// [`idle_pause`](Self::idle_pause).
    pub idle_iterations: u64,
    /// The pause before each of those: scenario 3's critical section, through which Redis and
    /// every thread on a hand-off's path sleep.
    pub idle_pause: Duration,
}

/// Two sequential round trips of a trivial script: the floor of an acquire + release.
pub struct Floor {
    connection: MultiplexedConnection,
    sha: String,
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor")
            .field("sha", &self.sha)
            .finish_non_exhaustive()
    }
}

impl Floor {
    /// Connects and loads the script `return 1`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn connect(url: &str) -> BenchResult<Self> {
        let mut connection = multiplexed_connection(url).await?;
        let sha = load_script(&mut connection, "return 1").await?;
        Ok(Self { connection, sha })
    }

    /// Two sequential `EVALSHA` calls.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn two_round_trips(&mut self) -> BenchResult<()> {
        for _ in 0..2 {
            let _: i64 = redis::cmd("EVALSHA")
                .arg(&self.sha)
                .arg(0)
                .query_async(&mut self.connection)
                .await?;
        }
        Ok(())
    }
}

/// Loads `script` into Redis's script cache and returns its SHA1, for `EVALSHA`.
async fn load_script(connection: &mut MultiplexedConnection, script: &str) -> BenchResult<String> {
    Ok(redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(connection)
        .await?)
}

/// The script of the pub/sub floor: a release that does nothing but publish. Returns the number
/// of subscribers the message reached.
const PUBLISH_SCRIPT: &str = "return redis.call('publish', KEYS[1], ARGV[1])";

/// A message as the subscriber received it: its sequence number (`None` if the payload was not
/// one) and the instant it came out of the subscription.
type Delivery = (Option<u64>, Instant);

/// The floor of a pub/sub hand-off: a script that publishes, and a subscriber on another thread.
struct PubSubFloor {
    connection: MultiplexedConnection,
    sha: String,
    channel: String,
    /// What the subscriber received; dropping it stops the subscriber.
    delivered: mpsc::UnboundedReceiver<Delivery>,
    /// The subscriber's thread.
    subscriber: JoinHandle<()>,
    /// Messages published so far: the next one's sequence number is one more.
    published: u64,
}

impl PubSubFloor {
    /// Starts the subscriber of a fresh channel, returns once it is subscribed, and loads the
    /// script.
    async fn connect(url: &str) -> BenchResult<Self> {
        let channel = unique_name("pubsub-floor");
        let (delivered, subscriber) = spawn_subscriber(url, &channel).await?;
        let mut connection = multiplexed_connection(url).await?;
        let sha = load_script(&mut connection, PUBLISH_SCRIPT).await?;
        Ok(Self {
            connection,
            sha,
            channel,
            delivered,
            subscriber,
            published: 0,
        })
    }

    /// Publishes one message through the script and returns the nanoseconds from sending the
    /// `EVALSHA` to the subscriber receiving the message.
    async fn once(&mut self) -> BenchResult<u64> {
        self.published += 1;
        let start = Instant::now();
        let reached: u64 = redis::cmd("EVALSHA")
            .arg(&self.sha)
            .arg(1)
            .arg(&self.channel)
            .arg(self.published)
            .query_async(&mut self.connection)
            .await?;
        // Checked before waiting: a message that reached nobody would never arrive.
        if reached != 1 {
            return Err(format!("a pub/sub floor message reached {reached} subscribers").into());
        }
        let (number, received) = self
            .delivered
            .recv()
            .await
            .ok_or("the pub/sub floor's subscriber stopped")?;
        if number != Some(self.published) {
            return Err(format!(
                "the pub/sub floor's subscriber received message {number:?}, not {}",
                self.published
            )
            .into());
        }
        Ok(saturating_ns(received.saturating_duration_since(start)))
    }

    /// Stops the subscriber and waits for its thread to end, its connection closed with it.
    async fn close(self) -> BenchResult<()> {
        let Self {
            delivered,
            subscriber,
            ..
        } = self;
        drop(delivered);
        tokio::task::spawn_blocking(move || subscriber.join())
            .await?
            .map_err(|_| "the pub/sub floor's subscriber thread panicked")?;
        Ok(())
    }
}

/// Starts a plain redis-rs subscriber of `channel` on an OS thread of its own, with a
/// current-thread runtime, and returns once it is subscribed: what it receives, and its thread.
async fn spawn_subscriber(
    url: &str,
    channel: &str,
) -> BenchResult<(mpsc::UnboundedReceiver<Delivery>, JoinHandle<()>)> {
    let client = redis::Client::open(url)?;
    let channel = channel.to_owned();
    let (subscribed, ready) = oneshot::channel();
    let (deliver, delivered) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("pubsub-floor".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(listen(client, channel, subscribed, deliver)),
                Err(err) => {
                    let _ = subscribed.send(Err(err.into()));
                }
            }
        })?;
    ready
        .await
        .map_err(|_| "the pub/sub floor's subscriber ended before it subscribed")??;
    Ok((delivered, thread))
}

/// The subscriber's work: subscribes to `channel`, says so (or why not) on `subscribed`, then
/// hands each message to `deliver` with the instant it came out of the subscription, until the
/// receiving end is dropped or the subscription ends.
async fn listen(
    client: redis::Client,
    channel: String,
    subscribed: oneshot::Sender<BenchResult<()>>,
    deliver: mpsc::UnboundedSender<Delivery>,
) {
    let mut messages = match subscribe(&client, &channel).await {
        Ok(messages) => messages,
        Err(err) => {
            let _ = subscribed.send(Err(err));
            return;
        }
    };
    if subscribed.send(Ok(())).is_err() {
        return;
    }
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = deliver.closed() => None,
        };
        let Some(message) = message else {
            return;
        };
        let received = Instant::now();
        if deliver
            .send((message.get_payload().ok(), received))
            .is_err()
        {
            return;
        }
    }
}

/// A pub/sub connection subscribed to `channel` (the subscription confirmed), as its messages.
async fn subscribe(client: &redis::Client, channel: &str) -> BenchResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}

/// Measures the floor of a pub/sub hand-off: `params.iterations` sequential deliveries, after
/// `params.warm_up` unmeasured ones; then `params.idle_iterations` more, each after a pause of
/// `params.idle_pause`.
async fn pubsub_delivery(
    url: &str,
    params: LatencyParams,
) -> BenchResult<(Percentiles, IdleDelivery)> {
    let mut floor = PubSubFloor::connect(url).await?;
    for _ in 0..params.warm_up {
        floor.once().await?;
    }
    let mut histogram = new_histogram();
    for _ in 0..params.iterations {
        record(&mut histogram, floor.once().await?);
    }
    let mut idle = new_histogram();
    for _ in 0..params.idle_iterations {
        tokio::time::sleep(params.idle_pause).await;
        record(&mut idle, floor.once().await?);
    }
    floor.close().await?;
    let none = "no pub/sub delivery was recorded";
    let idle = IdleDelivery {
        pause_us: saturating_ns(params.idle_pause) / 1_000,
        delivery: Percentiles::of(&idle).ok_or(none)?,
    };
    Ok((Percentiles::of(&histogram).ok_or(none)?, idle))
}

enum Series {
    Floor(Floor),
    Reference {
        reference: RedissonReference,
        name: String,
        owner: String,
    },
    Lock {
        contender: Contender,
        name: String,
    },
}

impl Series {
    async fn once(&mut self) -> BenchResult<()> {
        match self {
            Series::Floor(floor) => floor.two_round_trips().await,
            Series::Reference {
                reference,
                name,
                owner,
            } => {
                reference.acquire(name, owner).await?;
                reference.release(name, owner).await
            }
            Series::Lock { contender, name } => {
                let held = contender.acquire(name).await?;
                contender.release(held).await
            }
        }
    }

    /// Its label in the report, and the implementation it measures (none for the floor and
    /// the reference).
    fn label(&self) -> (String, Option<Implementation>) {
        match self {
            Series::Floor(_) => ("floor".to_owned(), None),
            Series::Reference { .. } => (REFERENCE_LABEL.to_owned(), None),
            Series::Lock { contender, .. } => (
                contender.implementation().name().to_owned(),
                Some(contender.implementation()),
            ),
        }
    }

    /// Microseconds Redis spent on the requests of one operation, from `INFO commandstats`
    /// microseconds over `operations` operations.
    fn redis_us_per_op(
        &self,
        usec: &std::collections::BTreeMap<String, u64>,
        operations: u64,
    ) -> f64 {
        let spent = match self {
            Series::Floor(_) => requests_usec(usec, &[]),
            Series::Reference { .. } => requests_usec(usec, SCRIPT_COMMANDS),
            Series::Lock { contender, .. } => client_usec(usec, Some(contender.implementation())),
        };
        spent as f64 / operations.max(1) as f64
    }
}

/// The label of the Redisson-style reference's series.
pub const REFERENCE_LABEL: &str = "redisson-style";

/// Runs scenario 1 for `implementations`.
///
/// # Errors
///
/// When Redis or an implementation fails.
pub async fn run(
    url: &str,
    implementations: &[Implementation],
    spin: &ContenderSettings,
    params: LatencyParams,
    progress: &Progress,
) -> BenchResult<LatencyResult> {
    let mut series = floor_and_reference(url, "latency-reference").await?;
    for &implementation in implementations {
        series.push(Series::Lock {
            contender: Contender::connect(implementation, url, spin).await?,
            name: unique_name(&format!("latency-{implementation}")),
        });
    }
    let histograms = interleave(&mut series, params).await?;
    let from_worker = tokio::spawn(from_worker(url.to_owned(), *spin, params))
        .await
        .map_err(|err| format!("the pass from a worker task failed: {err}"))??;
    let (pubsub_delivery, idle_delivery) = pubsub_delivery(url, params).await?;

    // Redis's own time per operation: each series alone between RESETSTAT and INFO.
    let mut admin = Admin::connect(url).await?;
    let mut redis_us = Vec::new();
    for one in &mut series {
        admin.reset_stats().await?;
        for _ in 0..params.calibration {
            one.once().await?;
        }
        let usec = admin.command_usec().await?;
        redis_us.push(one.redis_us_per_op(&usec, params.calibration));
    }

    let mut all =
        series
            .iter()
            .zip(&histograms)
            .zip(redis_us)
            .map(|((one, histogram), redis_us_per_op)| {
                let (label, implementation) = one.label();
                let latency = Percentiles::of(histogram).ok_or("no latency sample was recorded")?;
                Ok::<_, crate::BenchError>(LatencySeries {
                    label,
                    implementation,
                    latency,
                    redis_us_per_op,
                    buckets: log_buckets(histogram, 10_000, 1.03),
                })
            });
    let floor = all.next().ok_or("no floor series")??;
    let reference = all.next().ok_or("no reference series")??;
    let series: Vec<LatencySeries> = all.collect::<Result<_, _>>()?;
    let result = LatencyResult {
        iterations: params.iterations,
        calibration: params.calibration,
        floor,
        reference: Some(reference),
        series,
        pubsub_delivery: Some(pubsub_delivery),
        pubsub_delivery_idle: Some(idle_delivery),
        from_worker: Some(from_worker),
    };
    let mut line = format!("floor p50 {}", fmt_ns(result.floor.latency.p50_ns as f64));
    for one in result.reference.iter().chain(&result.series) {
        line += &format!(
            ", {} p50 {} ({:.2}×)",
            one.label,
            fmt_ns(one.latency.p50_ns as f64),
            result.p50_over_floor(one)
        );
    }
    line += &format!(
        "; pub/sub delivery p50 {} ({:.2} round trips), p99 {}; after {} µs idle p50 {} ({:.2} \
         round trips)",
        fmt_ns(pubsub_delivery.p50_ns as f64),
        pubsub_delivery.p50_ns as f64 / result.round_trip_ns(),
        fmt_ns(pubsub_delivery.p99_ns as f64),
        idle_delivery.pause_us,
        fmt_ns(idle_delivery.delivery.p50_ns as f64),
        idle_delivery.delivery.p50_ns as f64 / result.round_trip_ns()
    );
    progress.note(&line);
    if let Some(worker) = &result.from_worker {
        let mut line = "from a worker task:".to_owned();
        for one in &worker.series {
            line += &format!(
                " {} p50 {} ({:.2}×)",
                one.label,
                fmt_ns(one.latency.p50_ns as f64),
                worker.p50_over_floor(one)
            );
        }
        progress.note(&line);
    }
    Ok(result)
}

/// The first two series of a pass: the floor, and the Redisson-style reference on a lock named
/// after `name`.
async fn floor_and_reference(url: &str, name: &str) -> BenchResult<Vec<Series>> {
    let reference = RedissonReference::connect(url, &unique_name(name)).await?;
    let owner = reference.owner(0);
    Ok(vec![
        Series::Floor(Floor::connect(url).await?),
        Series::Reference {
            reference,
            name: unique_name(name),
            owner,
        },
    ])
}

/// Warms every series up, then runs `params.iterations` operations of each, interleaved at the
/// finest grain: one operation of each series in turn, so that a noisy moment of the machine
/// hits every series alike, in an order shuffled every time. A series follows each of the
/// others as often: what one leaves behind (a thread of its client still awake, or parked and
/// slow to wake) favours no series over another, as a fixed cycle did (lock-runtime's `fair`
/// always ran right after `ours`, whose client thread was still awake, and `ours` after series
/// that use no such thread). Returns each series' latencies.
async fn interleave(
    series: &mut [Series],
    params: LatencyParams,
) -> BenchResult<Vec<Histogram<u64>>> {
    for one in series.iter_mut() {
        for _ in 0..params.warm_up {
            one.once().await?;
        }
    }
    let mut histograms: Vec<Histogram<u64>> = series.iter().map(|_| new_histogram()).collect();
    let mut order: Vec<usize> = (0..series.len()).collect();
    for _ in 0..params.iterations {
        fastrand::shuffle(&mut order);
        for &index in &order {
            let start = Instant::now();
            series[index].once().await?;
            record(&mut histograms[index], saturating_ns(start.elapsed()));
        }
    }
    Ok(histograms)
}

/// The floor, the reference and `ours` on each runtime a client can run on, measured as the
/// main pass is, from a task on the runtime's worker threads (where a service's handlers run)
/// instead of the thread that blocks on the runtime: there a connection driven on the same
/// runtime hands each reply to the caller's task without waking another thread, which a
/// client on the library's own thread cannot. Each series connects from this task, so the
/// connections' own tasks are spawned from a worker too.
async fn from_worker(
    url: String,
    spin: ContenderSettings,
    params: LatencyParams,
) -> BenchResult<WorkerLatency> {
    let url = url.as_str();
    let mut series = floor_and_reference(url, "worker-reference").await?;
    let mut labels = vec!["floor".to_owned(), REFERENCE_LABEL.to_owned()];
    for client_runtime in [ClientRuntime::Library, ClientRuntime::Application] {
        let settings = ContenderSettings {
            client_runtime,
            ..spin
        };
        series.push(Series::Lock {
            contender: Contender::connect(Implementation::Ours, url, &settings).await?,
            name: unique_name(&format!("worker-ours-{}", client_runtime.name())),
        });
        labels.push(format!("ours ({} runtime)", client_runtime.name()));
    }
    let histograms = interleave(&mut series, params).await?;
    let series = labels
        .into_iter()
        .zip(&histograms)
        .map(|(label, histogram)| {
            let latency = Percentiles::of(histogram).ok_or("no latency sample was recorded")?;
            Ok::<_, crate::BenchError>(WorkerSeries { label, latency })
        })
        .collect::<Result<_, _>>()?;
    Ok(WorkerLatency { series })
}
