//! `#[distribute_lock]` on real Redis: every exit path releases the lock (checked by reading
//! Redis afterwards), the body runs exactly when it should (checked by counting runs), lease loss
//! is acted on, re-entry works, and calls joined in one task never overlap. With `fair = true` the
//! body runs under the fair lock, and callers are served in the order they queued.
//!
//! The functions take their client as a parameter (`client = client`) so that tests running in
//! parallel in one process never share the process-wide default client.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    RedisServer,
    locks::{
        assert_no_key_without_ttl, assert_released, await_queued, eventually, lock_key, queue_len,
    },
    unique_name,
};

#[derive(Debug, PartialEq)]
enum AppError {
    Refused(&'static str),
    Parse(String),
    Lock(String),
}

impl From<LockError> for AppError {
    fn from(err: LockError) -> Self {
        let kind = if err.is_timeout() {
            "timeout"
        } else if err.is_lease_lost() {
            "lease lost"
        } else {
            "other"
        };
        AppError::Lock(format!("{kind}: {err}"))
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(err: std::num::ParseIntError) -> Self {
        AppError::Parse(err.to_string())
    }
}

struct Fixture {
    server: RedisServer,
    client: LockClient,
    name: String,
    runs: AtomicUsize,
    finished: AtomicUsize,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        Self {
            server,
            client,
            name: unique_name(prefix),
            runs: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        }
    }

    fn is_held(&self) -> bool {
        self.server.cmd::<i64>(&["EXISTS", &lock_key(&self.name)]) == 1
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// The body does what `action` says, after checking it runs under its lock.
#[distribute_lock(key = "{f.name}", client = f.client, wait = "2s")]
async fn act(f: &Fixture, action: &str) -> Result<u64, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(f.is_held(), "the body runs under the lock");
    let token = lock_runtime::fencing_token().expect("a token inside the body");
    match action {
        "ok" => {}
        "err" => return Err(AppError::Refused("refused")),
        "question-mark" => {
            let parsed: u64 = "not a number".parse()?;
            return Ok(parsed);
        }
        "early-return" => {
            if token > 0 {
                return Ok(0);
            }
        }
        other => panic!("unknown action {other}"),
    }
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_runs_the_body_once_and_releases() {
    let f = Fixture::new("macro-ok").await;
    let first = act(&f, "ok").await.expect("ok");
    let second = act(&f, "ok").await.expect("ok");
    assert!(
        second > first,
        "fencing tokens increase: {first} then {second}"
    );
    assert_eq!((f.runs(), f.finished()), (2, 2));
    assert!(!f.is_held(), "released before the call returned");
    assert_released(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_is_returned_and_the_lock_released() {
    let f = Fixture::new("macro-err").await;
    assert_eq!(act(&f, "err").await, Err(AppError::Refused("refused")));
    assert_eq!(f.runs(), 1);
    assert!(!f.is_held());
    assert_released(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn question_mark_converts_the_error_and_releases() {
    let f = Fixture::new("macro-question-mark").await;
    let result = act(&f, "question-mark").await;
    assert!(matches!(result, Err(AppError::Parse(_))), "{result:?}");
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert!(!f.is_held());
    assert_released(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_return_releases() {
    let f = Fixture::new("macro-early-return").await;
    assert_eq!(act(&f, "early-return").await, Ok(0));
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert!(!f.is_held());
    assert_released(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_body_releases_the_lock() {
    let f = std::sync::Arc::new(Fixture::new("macro-panic").await);
    let task = tokio::spawn({
        let f = std::sync::Arc::clone(&f);
        async move { act(&f, "no such action").await }
    });
    let err = task.await.expect_err("the body panicked");
    assert!(err.is_panic());
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert!(eventually(Duration::from_secs(2), || !f.is_held()).await);
    assert_released(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client)]
async fn slow(f: &Fixture, duration: Duration) -> Result<(), LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(duration).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_by_a_timeout_releases_the_lock() {
    let f = Fixture::new("macro-cancelled").await;
    let outcome = tokio::time::timeout(
        Duration::from_millis(200),
        slow(&f, Duration::from_secs(30)),
    )
    .await;
    assert!(outcome.is_err(), "the timeout cancelled the call");
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert!(eventually(Duration::from_secs(2), || !f.is_held()).await);
    assert_released(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_times_out_without_running_the_body() {
    let f = Fixture::new("macro-timeout").await;
    let holder = f.client.lock(&f.name).acquire().await.expect("acquire");

    let started = Instant::now();
    let result = act(&f, "ok").await;
    let waited = started.elapsed();

    match result {
        Err(AppError::Lock(message)) => assert!(message.starts_with("timeout"), "{message}"),
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_secs(2),
        "waited {waited:?} of the 2 s"
    );
    assert_eq!(f.runs(), 0, "the body never ran");
    holder.unlock().await.expect("unlock");
    assert_released(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client, lease = "300ms", on_lease_lost = "abort")]
async fn outlives_its_lease_abort(f: &Fixture) -> Result<(), AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[distribute_lock(key = "{f.name}", client = f.client, lease = "300ms", on_lease_lost = "continue")]
async fn outlives_its_lease_continue(f: &Fixture) -> Result<&'static str, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok("finished without the lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_with_abort_stops_the_body_and_returns_lease_lost() {
    let f = Fixture::new("macro-abort").await;
    let started = Instant::now();
    let result = outlives_its_lease_abort(&f).await;
    let elapsed = started.elapsed();
    match result {
        Err(AppError::Lock(message)) => assert!(message.starts_with("lease lost"), "{message}"),
        other => panic!("expected lease lost, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(1),
        "stopped at the lease's end, not after {elapsed:?}"
    );
    assert_eq!((f.runs(), f.finished()), (1, 0), "the body was stopped");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.finished(), 0, "and stays stopped");
    assert_released(&f.server, &f.name);
}

/// What the subscriber of a test wrote: `tracing` events, one line each.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The body outlives its lease and is let finish; the release after it finds the lock gone
/// (`NotHeld`). That failure must be a `warn` event naming the lock, never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_with_continue_lets_the_body_finish_and_warns_of_the_failed_release() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    // The test's own future runs on this thread, and so does the attribute's release.
    let _logging = tracing::subscriber::set_default(subscriber);
    let f = Fixture::new("macro-continue").await;

    let result = outlives_its_lease_continue(&f).await;

    assert_eq!(result, Ok("finished without the lock"));
    assert_eq!((f.runs(), f.finished()), (1, 1));
    let lines = captured.lines();
    assert!(
        lines.iter().any(|line| line.contains("WARN")
            && line.contains("releasing the lock after the body failed")
            && line.contains(&f.name)),
        "no warning naming the lock about the failed release in {lines:#?}"
    );
    assert_released(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client, wait = "300ms")]
async fn outer(f: &Fixture) -> Result<(u64, u64), LockError> {
    let token = lock_runtime::fencing_token().expect("token");
    let inner = inner(f).await?;
    Ok((token, inner))
}

#[distribute_lock(key = "{f.name}", client = f.client, wait = "300ms")]
async fn inner(f: &Fixture) -> Result<u64, LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    let holds: Vec<i64> = f.server.cmd(&["HVALS", &lock_key(&f.name)]);
    assert_eq!(holds, vec![2], "the inner call re-entered the outer hold");
    Ok(lock_runtime::fencing_token().expect("token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_calls_with_the_same_key_reenter_without_deadlock() {
    let f = Fixture::new("macro-nested").await;
    let (outer_token, inner_token) = outer(&f).await.expect("re-entry instead of a timeout");
    assert_eq!(outer_token, inner_token, "re-entry keeps the token");
    assert_eq!(f.runs(), 1);
    assert_released(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client)]
async fn critical(
    f: &Fixture,
    inside: &AtomicUsize,
    overlaps: &AtomicUsize,
) -> Result<(), LockError> {
    if inside.fetch_add(1, Ordering::SeqCst) > 0 {
        overlaps.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    inside.fetch_sub(1, Ordering::SeqCst);
    f.runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_function_joined_twice_in_one_task_never_overlaps() {
    let f = Fixture::new("macro-joined").await;
    let (inside, overlaps) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (a, b, c) = tokio::join!(
        critical(&f, &inside, &overlaps),
        critical(&f, &inside, &overlaps),
        critical(&f, &inside, &overlaps),
    );
    a.and(b).and(c).expect("all ran");
    assert_eq!(f.runs(), 3);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two bodies ran at once");
    assert_released(&f.server, &f.name);
}

trait Shop {
    async fn buy(&self, f: &Fixture) -> Result<u64, LockError>;
}

struct Store;

impl Shop for Store {
    #[distribute_lock(key = "{f.name}", client = f.client, wait = "1s")]
    async fn buy(&self, f: &Fixture) -> Result<u64, LockError> {
        f.runs.fetch_add(1, Ordering::SeqCst);
        assert!(f.is_held(), "a trait impl method runs under the lock");
        Ok(lock_runtime::fencing_token().expect("token"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trait_impl_method_runs_under_the_lock() {
    let f = Fixture::new("macro-trait").await;
    let token = Store.buy(&f).await.expect("bought");
    let fence: u64 = f
        .server
        .cmd(&["GET", &format!("{}:fence", lock_key(&f.name))]);
    assert_eq!(token, fence, "the body saw this call's token");
    assert_eq!(f.runs(), 1);
    assert!(!f.is_held());
    assert_released(&f.server, &f.name);
}

/// Runs under the fair lock of `f.name`, which it checks before doing what `action` says: another
/// task's fair try finds the lock taken; from inside, the fair lock re-enters this call's hold and
/// the reentrant lock of the same name does not (a scope re-enters only its own kind of hold).
#[distribute_lock(key = "{f.name}", client = f.client, fair = true, wait = "2s")]
async fn fair_act(f: &Fixture, action: &str) -> Result<u64, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(f.is_held(), "the body runs under the lock");
    let token = lock_runtime::fencing_token().expect("a token inside the body");

    let elsewhere = f.client.fair_lock(&f.name);
    let elsewhere = tokio::spawn(async move { elsewhere.try_acquire(Duration::ZERO, None).await })
        .await
        .expect("join");
    assert!(
        elsewhere.as_ref().is_err_and(LockError::is_timeout),
        "another task took the fair lock while the body held it: {elsewhere:?}"
    );
    let reentry = f
        .client
        .fair_lock(&f.name)
        .try_acquire(Duration::ZERO, None)
        .await
        .expect("the fair lock re-enters the call's hold");
    assert_eq!(reentry.fencing_token(), token, "re-entry keeps the token");
    reentry.unlock().await.expect("unlock the re-entry");
    let reentrant = f
        .client
        .lock(&f.name)
        .try_acquire(Duration::ZERO, None)
        .await;
    assert!(
        reentrant.as_ref().is_err_and(LockError::is_timeout),
        "the reentrant lock re-entered the hold: it is not a fair one: {reentrant:?}"
    );

    match action {
        "ok" => {}
        "err" => return Err(AppError::Refused("refused")),
        other => panic!("unknown action {other}"),
    }
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_true_runs_the_body_under_the_fair_lock_and_releases() {
    let f = Fixture::new("macro-fair-ok").await;
    let first = fair_act(&f, "ok").await.expect("ok");
    assert!(!f.is_held(), "released before the call returned");
    let second = fair_act(&f, "ok").await.expect("ok");
    assert!(
        second > first,
        "fencing tokens increase: {first} then {second}"
    );
    assert_eq!((f.runs(), f.finished()), (2, 2));
    assert!(!f.is_held());
    assert!(
        eventually(Duration::from_secs(2), || queue_len(&f.server, &f.name)
            == 0)
        .await
    );
    assert_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_true_err_is_returned_and_the_lock_released() {
    let f = Fixture::new("macro-fair-err").await;
    assert_eq!(fair_act(&f, "err").await, Err(AppError::Refused("refused")));
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert!(!f.is_held());
    assert_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client, fair = true, wait = "20s")]
async fn fair_turn(
    f: &Fixture,
    position: usize,
    served: &Mutex<Vec<usize>>,
) -> Result<(), LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    served.lock().expect("order").push(position);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Callers queue one after another, in a known order, while the lock is held; the attribute must
/// serve them in that order. (Under the default lock they would not queue at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_true_serves_callers_in_the_order_they_queued() {
    let f = Arc::new(Fixture::new("macro-fair-fifo").await);
    let holder = f.client.fair_lock(&f.name).acquire().await.expect("holder");

    let served = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for position in 0..8 {
        let caller = {
            let (f, served) = (Arc::clone(&f), Arc::clone(&served));
            async move { fair_turn(&f, position, &served).await }
        };
        callers.push(tokio::spawn(caller));
        await_queued(&f.server, &f.name, position as i64 + 1).await;
    }
    assert_eq!(f.runs(), 0, "no body runs while the lock is held");
    holder.unlock().await.expect("unlock");
    for caller in callers {
        caller.await.expect("join").expect("served");
    }

    let order = served.lock().expect("order").clone();
    assert_eq!(order, (0..8).collect::<Vec<_>>(), "served out of turn");
    assert_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

#[distribute_lock(key = "{f.name}", client = f.client, fair = true)]
async fn fair_slow(f: &Fixture, duration: Duration) -> Result<(), LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(duration).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Two calls joined: one runs its body, the other queues behind it. Dropping both releases the
/// lock and empties the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_true_dropped_calls_release_the_lock_and_leave_the_queue() {
    let f = Fixture::new("macro-fair-dropped").await;
    let calls = async {
        tokio::join!(
            fair_slow(&f, Duration::from_secs(30)),
            fair_slow(&f, Duration::from_secs(30)),
        )
    };
    let running_and_queued = async {
        let both = || f.runs() == 1 && queue_len(&f.server, &f.name) == 1;
        assert!(
            eventually(Duration::from_secs(5), both).await,
            "expected one body running and one call queued"
        );
    };
    tokio::select! {
        outcome = calls => panic!("the calls returned: {outcome:?}"),
        () = running_and_queued => {}
    }

    let gone = || !f.is_held() && queue_len(&f.server, &f.name) == 0;
    assert!(
        eventually(Duration::from_secs(2), gone).await,
        "still held or queued"
    );
    assert_eq!((f.runs(), f.finished()), (1, 0));
    assert_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}
