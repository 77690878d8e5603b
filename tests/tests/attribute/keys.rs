//! `keys = [...]`: the body runs under a multi-lock of every formatted key. All of them are
//! held while it runs and released on every exit, none is left held when one cannot be had,
//! callers naming the same keys in opposite orders neither deadlock nor overlap, a `key` call
//! inside re-enters its member, and lease loss names a key.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    locks::{assert_no_key_without_ttl, assert_released, eventually, last_token, lock_key},
    logs::capture_warnings,
};

use crate::{AppError, Exit, Fixture, Mode, account, act, is_account_held};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_hold_every_key_while_the_body_runs_and_release_them_all() {
    let f = Fixture::new("macro-keys-ok").await;
    let token = act(&f, Mode::Keys("b", "a"), Exit::Ok).await.expect("ok");
    let fence: u64 = f
        .server
        .cmd(&["GET", &format!("{}:fence", lock_key(&account(&f, "b")))]);
    assert_eq!(
        token,
        last_token(fence),
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
        act(&f, Mode::Keys("a", "b"), Exit::Err).await,
        Err(AppError::Refused("refused"))
    );
    assert!(
        !is_account_held(&f, "a") && !is_account_held(&f, "b"),
        "held after an Err"
    );
    let result = act(&f, Mode::Keys("a", "b"), Exit::QuestionMark).await;
    assert!(matches!(result, Err(AppError::Parse(_))), "{result:?}");
    assert!(
        !is_account_held(&f, "a") && !is_account_held(&f, "b"),
        "held after a `?`"
    );
    assert_eq!(
        act(&f, Mode::Keys("a", "b"), Exit::EarlyReturn).await,
        Ok(0)
    );
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
    let result = act(&f, Mode::Keys("a", "b"), Exit::Ok).await;
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
    assert_eq!(
        token,
        last_token(fence),
        "re-entry keeps the member's token"
    );
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
            && line.contains("the release after the body ran failed")
            && line.contains(&account(&f, "a"))
            && line.contains(&account(&f, "b"))),
        "no warning naming both keys about the failed release in {lines:#?}"
    );
    for name in ["a", "b"] {
        assert_released(&f.server, &account(&f, name));
    }
}
