//! `fair = true`: the body runs under the fair lock, callers are served in the order they
//! queued, and calls dropped while one runs and one queues release the lock and leave the queue.

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use lock_runtime::{LockError, distribute_lock};
use lock_tests::locks::{
    Family, assert_no_key_without_ttl, assert_released, await_queued, eventually, queue_len,
};

use crate::{AppError, Exit, Fixture, act};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_true_runs_the_body_under_the_fair_lock_and_releases() {
    let f = Fixture::new("macro-fair-ok").await;
    let first = act(&f, Family::Fair, Exit::Ok).await.expect("ok");
    assert!(!f.is_held(), "released before the call returned");
    let second = act(&f, Family::Fair, Exit::Ok).await.expect("ok");
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
    assert_eq!(
        act(&f, Family::Fair, Exit::Err).await,
        Err(AppError::Refused("refused"))
    );
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
