//! `#[distribute_lock]` on real Redis: every exit path releases the lock (checked by reading
//! Redis afterwards), the body runs exactly when it should (checked by counting runs), lease loss
//! is acted on, re-entry works, and calls joined in one task never overlap. With `fair = true` the
//! body runs under the fair lock, and callers are served in the order they queued. With
//! `mode = "read"` / `"write"` it runs under a side of the read-write lock: readers overlap, a
//! writer excludes them, a write may call a read of the same key (a downgrade), and a read calling
//! a write is refused at once (an upgrade would wait for itself). With `keys = [...]` it runs under
//! a multi-lock of every formatted key: all of them held while the body runs, all released on
//! every exit, none left held when one cannot be had, and callers naming the same keys in opposite
//! orders neither deadlock nor overlap.
//!
//! The functions take their client as a parameter (`client = client`) so that tests running in
//! parallel in one process never share the process-wide default client.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    RedisServer,
    locks::{
        assert_no_key_without_ttl, assert_released, assert_rw_released, await_queued, eventually,
        lock_key, queue_len, rw_key,
    },
    logs::capture_warnings,
    unique_name,
};
use tokio::sync::{Barrier, Notify};

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

    /// Whether anyone holds the read-write lock of `name`, to read or to write.
    fn is_rw_held(&self) -> bool {
        self.server.cmd::<i64>(&["EXISTS", &rw_key(&self.name)]) == 1
    }

    /// Whether the read-write lock of `name` has a write hold.
    fn is_write_held(&self) -> bool {
        self.server
            .cmd::<i64>(&["HEXISTS", &rw_key(&self.name), "writer"])
            == 1
    }

    /// How many holds, read or write, the read-write lock of `name` has.
    fn rw_holds(&self) -> usize {
        lock_tests::locks::rw_holds(&self.server, &self.name)
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

/// The body outlives its lease and is let finish; the release after it finds the lock gone
/// (`NotHeld`). That failure must be a `warn` event naming the lock, never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_with_continue_lets_the_body_finish_and_warns_of_the_failed_release() {
    // The test's own future runs on this thread, and so does the attribute's release.
    let (_logging, captured) = capture_warnings();
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
    let holds = lock_tests::locks::hold_counts(&f.server, &f.name);
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

/// What another task gets when it tries, without waiting, for the read or the write lock of
/// `f.name`; whatever it gets it gives back at once. (Another task is another scope: it neither
/// re-enters nor downgrades this one's holds.)
async fn try_elsewhere(f: &Fixture, write: bool) -> Result<(), LockError> {
    let rw = f.client.read_write_lock(&f.name);
    tokio::spawn(async move {
        let guard = if write {
            rw.write().try_acquire(Duration::ZERO, None).await?
        } else {
            rw.read().try_acquire(Duration::ZERO, None).await?
        };
        guard.unlock().await
    })
    .await
    .expect("join")
}

/// Runs under a read hold of `f.name`, which it checks (another task may read too, but not write)
/// before doing what `action` says.
#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "2s")]
async fn read_act(f: &Fixture, action: &str) -> Result<u64, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(
        f.is_rw_held() && !f.is_write_held(),
        "the body runs under a read hold"
    );
    let token = lock_runtime::fencing_token().expect("a token inside the body");
    try_elsewhere(f, false)
        .await
        .expect("another task reads alongside");
    let write = try_elsewhere(f, true).await;
    assert!(
        write.as_ref().is_err_and(LockError::is_timeout),
        "another task wrote while the body read: {write:?}"
    );
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

/// Runs under the write hold of `f.name`, which it checks (another task can neither read nor
/// write) before doing what `action` says.
#[distribute_lock(key = "{f.name}", client = f.client, mode = "write", wait = "2s")]
async fn write_act(f: &Fixture, action: &str) -> Result<u64, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(f.is_write_held(), "the body runs under the write hold");
    let token = lock_runtime::fencing_token().expect("a token inside the body");
    for write in [false, true] {
        let elsewhere = try_elsewhere(f, write).await;
        assert!(
            elsewhere.as_ref().is_err_and(LockError::is_timeout),
            "another task took the lock (write: {write}) while the body wrote: {elsewhere:?}"
        );
    }
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
async fn mode_read_and_write_run_the_body_under_their_lock_and_release() {
    let f = Fixture::new("macro-mode-ok").await;
    let written = write_act(&f, "ok").await.expect("write");
    assert!(!f.is_rw_held(), "released before the call returned");
    let read = read_act(&f, "ok").await.expect("read");
    assert!(!f.is_rw_held(), "released before the call returned");
    let rewritten = write_act(&f, "ok").await.expect("write");
    assert_eq!(read, written, "a read carries the last write's token");
    assert!(
        rewritten > written,
        "a write takes a fresh token: {written} then {rewritten}"
    );
    assert_eq!((f.runs(), f.finished()), (3, 3));
    assert!(
        !f.is_held(),
        "the reentrant lock of the name was never taken"
    );
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_err_question_mark_and_early_return_release_the_lock() {
    let f = Fixture::new("macro-mode-exits").await;
    let f = &f;
    for mode in ["read", "write"] {
        let call = |action| async move {
            match mode {
                "read" => read_act(f, action).await,
                _ => write_act(f, action).await,
            }
        };
        assert_eq!(call("err").await, Err(AppError::Refused("refused")));
        assert!(!f.is_rw_held(), "{mode}: held after an Err");
        let result = call("question-mark").await;
        assert!(matches!(result, Err(AppError::Parse(_))), "{result:?}");
        assert!(!f.is_rw_held(), "{mode}: held after a `?`");
        assert_eq!(call("early-return").await, Ok(0));
        assert!(!f.is_rw_held(), "{mode}: held after an early return");
    }
    assert_eq!((f.runs(), f.finished()), (6, 0));
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// Both callers meet at `barrier` inside their bodies (which only two bodies running at the same
/// time can do), count the read holds in Redis there, and meet again before leaving.
#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "2s")]
async fn read_together(f: &Fixture, barrier: &Barrier) -> Result<usize, LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    let meet = || tokio::time::timeout(Duration::from_secs(5), barrier.wait());
    assert!(
        meet().await.is_ok(),
        "the other reader never got in while this one read"
    );
    let holds = f.rw_holds();
    assert!(meet().await.is_ok(), "the other reader left early");
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(holds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_read_calls_run_at_the_same_time() {
    let f = Fixture::new("macro-mode-readers").await;
    let barrier = Barrier::new(2);
    let (a, b) = tokio::join!(read_together(&f, &barrier), read_together(&f, &barrier));
    assert_eq!(
        (a.expect("read"), b.expect("read")),
        (2, 2),
        "two read holds while both bodies ran"
    );
    assert_eq!((f.runs(), f.finished()), (2, 2));
    assert_rw_released(&f.server, &f.name);
}

/// Whether a writer's body is running, and the signal that lets it finish.
#[derive(Default)]
struct WriterGate {
    writing: AtomicBool,
    release: Notify,
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "write", wait = "2s")]
async fn write_until_released(f: &Fixture, gate: &WriterGate) -> Result<(), LockError> {
    gate.writing.store(true, Ordering::SeqCst);
    gate.release.notified().await;
    gate.writing.store(false, Ordering::SeqCst);
    Ok(())
}

/// Returns whether a writer's body was running while this read body ran.
#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "10s")]
async fn read_beside(f: &Fixture, gate: &WriterGate) -> Result<bool, LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    Ok(gate.writing.load(Ordering::SeqCst))
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "200ms")]
async fn read_briefly(f: &Fixture) -> Result<(), LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_write_excludes_a_concurrent_read() {
    let f = Arc::new(Fixture::new("macro-mode-writer").await);
    let gate = Arc::new(WriterGate::default());
    let writer = tokio::spawn({
        let (f, gate) = (Arc::clone(&f), Arc::clone(&gate));
        async move { write_until_released(&f, &gate).await }
    });
    assert!(
        eventually(Duration::from_secs(5), || gate
            .writing
            .load(Ordering::SeqCst))
        .await,
        "the writer's body never ran"
    );

    let err = read_briefly(&f).await.expect_err("a writer holds the lock");
    assert!(err.is_timeout(), "{err}");
    let reader = tokio::spawn({
        let (f, gate) = (Arc::clone(&f), Arc::clone(&gate));
        async move { read_beside(&f, &gate).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.runs(), 0, "a read body ran while the writer's did");

    gate.release.notify_one();
    writer.await.expect("join").expect("write");
    let overlapped = reader
        .await
        .expect("join")
        .expect("the reader gets in after");
    assert!(!overlapped, "the read body ran while the write body did");
    assert_eq!(f.runs(), 1);
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// Takes the write lock and calls a read of the same key: a downgrade, granted at once (a short
/// `wait` on the read makes a refusal show as a timeout).
#[distribute_lock(key = "{f.name}", client = f.client, mode = "write", wait = "2s")]
async fn write_then_read(f: &Fixture) -> Result<(u64, u64), LockError> {
    let token = lock_runtime::fencing_token().expect("token");
    let read = read_inside(f).await?;
    assert!(f.is_write_held(), "the write hold outlives the inner read");
    Ok((token, read))
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "200ms")]
async fn read_inside(f: &Fixture) -> Result<u64, LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(f.is_write_held(), "the read runs under the write hold");
    assert_eq!(
        f.rw_holds(),
        2,
        "the write hold, and the read hold granted alongside it"
    );
    Ok(lock_runtime::fencing_token().expect("token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_write_calling_mode_read_downgrades() {
    let f = Fixture::new("macro-mode-downgrade").await;
    let (write, read) = write_then_read(&f)
        .await
        .expect("a downgrade, not a timeout");
    assert_eq!(read, write, "the read carries the write's token");
    assert_eq!(f.runs(), 1);
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// Takes the read lock and calls a write of the same key: an upgrade, refused at once.
#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "2s")]
async fn read_then_write(f: &Fixture) -> Result<(), LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    write_inside(f).await
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "write", wait = "10s")]
async fn write_inside(f: &Fixture) -> Result<(), LockError> {
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_read_calling_mode_write_is_refused_at_once() {
    let f = Fixture::new("macro-mode-upgrade").await;
    let started = Instant::now();
    let err = read_then_write(&f)
        .await
        .expect_err("an upgrade is refused");
    let elapsed = started.elapsed();
    assert!(matches!(err, LockError::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("upgrade"), "{err}");
    assert!(
        elapsed < Duration::from_secs(1),
        "refused at once, not after {elapsed:?} of the 10 s wait"
    );
    assert_eq!((f.runs(), f.finished()), (1, 0), "the write body never ran");
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// The lock name `keys = ["{f.name}:{account}", ..]` formats for `account`.
fn account(f: &Fixture, account: &str) -> String {
    format!("{}:{account}", f.name)
}

/// Whether the lock of `account` is held, by anyone.
fn is_account_held(f: &Fixture, name: &str) -> bool {
    f.server
        .cmd::<i64>(&["EXISTS", &lock_key(&account(f, name))])
        == 1
}

/// Runs under the multi-lock of both accounts, which it checks before doing what `action` says.
#[distribute_lock(keys = ["{f.name}:{from}", "{f.name}:{to}"], client = f.client, wait = "2s")]
async fn transfer_act(f: &Fixture, from: &str, to: &str, action: &str) -> Result<u64, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    assert!(
        is_account_held(f, from) && is_account_held(f, to),
        "the body runs under the lock of every key"
    );
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
async fn keys_hold_every_key_while_the_body_runs_and_release_them_all() {
    let f = Fixture::new("macro-keys-ok").await;
    let token = transfer_act(&f, "b", "a", "ok").await.expect("ok");
    let fence: u64 = f
        .server
        .cmd(&["GET", &format!("{}:fence", lock_key(&account(&f, "b")))]);
    assert_eq!(
        token, fence,
        "the body sees the token of the last member in name order"
    );
    for name in ["a", "b"] {
        assert!(!is_account_held(&f, name), "{name} held after the call");
        assert_released(&f.server, &account(&f, name));
    }
    assert!(!f.is_held(), "no lock of the bare name was taken");
    assert_eq!((f.runs(), f.finished()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_err_question_mark_and_early_return_release_every_key() {
    let f = Fixture::new("macro-keys-exits").await;
    assert_eq!(
        transfer_act(&f, "a", "b", "err").await,
        Err(AppError::Refused("refused"))
    );
    assert!(
        !is_account_held(&f, "a") && !is_account_held(&f, "b"),
        "held after an Err"
    );
    let result = transfer_act(&f, "a", "b", "question-mark").await;
    assert!(matches!(result, Err(AppError::Parse(_))), "{result:?}");
    assert!(
        !is_account_held(&f, "a") && !is_account_held(&f, "b"),
        "held after a `?`"
    );
    assert_eq!(transfer_act(&f, "a", "b", "early-return").await, Ok(0));
    assert!(
        !is_account_held(&f, "a") && !is_account_held(&f, "b"),
        "held after an early return"
    );
    assert_eq!((f.runs(), f.finished()), (3, 0));
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// One key held elsewhere: the call waits its 2 s, returns the timeout naming that key without
/// running the body, and leaves the other key (taken first, in name order) free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_one_key_held_elsewhere_time_out_without_running_the_body_or_holding_any() {
    let f = Fixture::new("macro-keys-timeout").await;
    let busy = account(&f, "b");
    let holder = f.client.lock(&busy).acquire().await.expect("acquire");

    let started = Instant::now();
    let result = transfer_act(&f, "a", "b", "ok").await;
    let waited = started.elapsed();

    match result {
        Err(AppError::Lock(message)) => {
            assert!(message.starts_with("timeout"), "{message}");
            assert!(message.contains(&busy), "names the key held: {message}");
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_secs(2),
        "waited {waited:?} of the 2 s"
    );
    assert_eq!(f.runs(), 0, "the body never ran");
    assert!(
        eventually(Duration::from_secs(2), || !is_account_held(&f, "a")).await,
        "the key taken before the busy one was kept"
    );
    assert_released(&f.server, &account(&f, "a"));
    holder.unlock().await.expect("unlock");
    assert_released(&f.server, &busy);
}

/// One transfer at a time over the same two accounts, whichever way round: `inside` is set for
/// the whole body, and finding it set counts an overlap.
#[distribute_lock(keys = ["{f.name}:{from}", "{f.name}:{to}"], client = client, wait = "10s")]
async fn transfer(
    client: &LockClient,
    f: &Fixture,
    from: &str,
    to: &str,
    inside: &AtomicBool,
    overlaps: &AtomicUsize,
) -> Result<(), LockError> {
    if inside.swap(true, Ordering::SeqCst) {
        overlaps.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    inside.store(false, Ordering::SeqCst);
    f.runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Four callers on two clients, two naming the accounts `(a, b)` and two `(b, a)`, each making
/// many transfers as fast as it can: each takes the keys in name order whatever order it names
/// them in, so none holds one key while waiting for the other (a deadlock would surface as a
/// timeout), and no two bodies ever run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_opposite_orders_never_deadlock_and_never_overlap() {
    const ROUNDS: usize = 25;
    let f = Arc::new(Fixture::new("macro-keys-opposite").await);
    let other = LockClient::connect(&f.server.url()).await.expect("connect");
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));

    let mut callers = Vec::new();
    for (client, (from, to)) in [
        (f.client.clone(), ("a", "b")),
        (f.client.clone(), ("b", "a")),
        (other.clone(), ("a", "b")),
        (other, ("b", "a")),
    ] {
        let (f, inside, overlaps) = (Arc::clone(&f), Arc::clone(&inside), Arc::clone(&overlaps));
        callers.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                transfer(&client, &f, from, to, &inside, &overlaps).await?;
            }
            Ok::<(), LockError>(())
        }));
    }
    let all = async {
        for caller in callers {
            caller.await.expect("join").expect("every transfer ran");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the transfers deadlocked");

    assert_eq!(f.runs(), 4 * ROUNDS);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two transfers ran at once"
    );
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
    assert_no_key_without_ttl(&f.server, &f.name);
}

/// Calls a `key` function on one of its keys: the body's scope holds every member, so the inner
/// call re-enters it instead of waiting for itself.
#[distribute_lock(keys = ["{f.name}:{from}", "{f.name}:{to}"], client = f.client, wait = "300ms")]
async fn transfer_then_deposit(f: &Fixture, from: &str, to: &str) -> Result<u64, LockError> {
    deposit(f, from).await
}

#[distribute_lock(key = "{f.name}:{into}", client = f.client, wait = "300ms")]
async fn deposit(f: &Fixture, into: &str) -> Result<u64, LockError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    let holds = lock_tests::locks::hold_counts(&f.server, &account(f, into));
    assert_eq!(
        holds,
        vec![2],
        "the inner call re-entered the member's hold"
    );
    Ok(lock_runtime::fencing_token().expect("token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_call_inside_a_keys_call_reenters_its_member() {
    let f = Fixture::new("macro-keys-nested").await;
    let token = transfer_then_deposit(&f, "b", "a")
        .await
        .expect("re-entry instead of a timeout");
    let fence: u64 = f
        .server
        .cmd(&["GET", &format!("{}:fence", lock_key(&account(&f, "b")))]);
    assert_eq!(token, fence, "re-entry keeps the member's token");
    assert_eq!(f.runs(), 1);
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
}

#[distribute_lock(
    keys = ["{f.name}:{from}", "{f.name}:{to}"],
    client = f.client,
    lease = "300ms",
    on_lease_lost = "abort"
)]
async fn transfer_outlives_its_lease_abort(
    f: &Fixture,
    from: &str,
    to: &str,
) -> Result<(), AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[distribute_lock(
    keys = ["{f.name}:{from}", "{f.name}:{to}"],
    client = f.client,
    lease = "300ms",
    on_lease_lost = "continue"
)]
async fn transfer_outlives_its_lease_continue(
    f: &Fixture,
    from: &str,
    to: &str,
) -> Result<&'static str, AppError> {
    f.runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    f.finished.fetch_add(1, Ordering::SeqCst);
    Ok("finished without the locks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_lease_lost_with_abort_stops_the_body_and_names_a_key() {
    let f = Fixture::new("macro-keys-abort").await;
    let started = Instant::now();
    let result = transfer_outlives_its_lease_abort(&f, "a", "b").await;
    let elapsed = started.elapsed();
    match result {
        Err(AppError::Lock(message)) => {
            assert!(message.starts_with("lease lost"), "{message}");
            assert!(
                message.contains(&account(&f, "a")) || message.contains(&account(&f, "b")),
                "names the key whose lease was lost: {message}"
            );
        }
        other => panic!("expected lease lost, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(1),
        "stopped at the lease's end, not after {elapsed:?}"
    );
    assert_eq!((f.runs(), f.finished()), (1, 0), "the body was stopped");
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
}

/// The body outlives the lease of both keys and is let finish; the release after it finds them
/// gone (`MultiRelease`). That failure must be a `warn` event naming the keys, never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_lease_lost_with_continue_warns_of_the_failed_release_naming_the_keys() {
    // The test's own future runs on this thread, and so does the attribute's release.
    let (_logging, captured) = capture_warnings();
    let f = Fixture::new("macro-keys-continue").await;

    let result = transfer_outlives_its_lease_continue(&f, "b", "a").await;

    assert_eq!(result, Ok("finished without the locks"));
    assert_eq!((f.runs(), f.finished()), (1, 1));
    let lines = captured.lines();
    assert!(
        lines.iter().any(|line| line.contains("WARN")
            && line.contains("releasing the lock after the body failed")
            && line.contains(&account(&f, "a"))
            && line.contains(&account(&f, "b"))),
        "no warning naming both keys about the failed release in {lines:#?}"
    );
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
}
