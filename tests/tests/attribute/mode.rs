//! `mode = "read"` / `"write"`: the body runs under a side of the read-write lock. Readers
//! overlap, a writer excludes them, a write may call a read of the same key (a downgrade), and a
//! read calling a write is refused at once (an upgrade would wait for itself).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::{LockError, distribute_lock};
use lock_tests::locks::{Family, assert_no_key_without_ttl, assert_rw_released, eventually};
use tokio::sync::{Barrier, Notify};

use crate::{AppError, Exit, Fixture, act};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_read_and_write_run_the_body_under_their_lock_and_release() {
    let f = Fixture::new("macro-mode-ok").await;
    let written = act(&f, Family::Write, Exit::Ok).await.expect("write");
    assert!(!f.is_rw_held(), "released before the call returned");
    let read = act(&f, Family::Read, Exit::Ok).await.expect("read");
    assert!(!f.is_rw_held(), "released before the call returned");
    let rewritten = act(&f, Family::Write, Exit::Ok).await.expect("write");
    assert!(
        read > written && rewritten > read,
        "a hold taking the free lock, read or write, takes a fresh token: {written}, {read}, \
         {rewritten}"
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
    for mode in [Family::Read, Family::Write] {
        assert_eq!(
            act(&f, mode, Exit::Err).await,
            Err(AppError::Refused("refused"))
        );
        assert!(!f.is_rw_held(), "{mode:?}: held after an Err");
        let result = act(&f, mode, Exit::QuestionMark).await;
        assert!(matches!(result, Err(AppError::Parse(_))), "{result:?}");
        assert!(!f.is_rw_held(), "{mode:?}: held after a `?`");
        assert_eq!(act(&f, mode, Exit::EarlyReturn).await, Ok(0));
        assert!(!f.is_rw_held(), "{mode:?}: held after an early return");
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
    assert!(err.to_string().contains("upgrade"), "{err}");
    assert!(
        elapsed < Duration::from_secs(1),
        "refused at once, not after {elapsed:?} of the 10 s wait"
    );
    assert_eq!((f.runs(), f.finished()), (1, 0), "the write body never ran");
    assert_rw_released(&f.server, &f.name);
    assert_no_key_without_ttl(&f.server, &f.name);
}
