//! A client built and used from an executor that is not Tokio: its I/O and timers are the
//! library's own runtime's, so a caller polls its futures from anywhere.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    thread::Thread,
    time::Duration,
};

use lock_runtime::LockClient;
use lock_tests::{RedisServer, locks::assert_released, unique_name};

/// Wakes the thread that polls.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to its end on this thread, parking it while the future is pending: the
/// smallest executor there is, and not Tokio.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// Connect, take a lock, wait out another's hold with a deadline (a timer), be woken by a
/// release (pub/sub), drop a guard and flush: all from a thread outside any Tokio runtime.
#[test]
fn a_client_works_from_an_executor_that_is_not_tokio() {
    let server = RedisServer::start();
    let name = unique_name("no-tokio");
    assert!(tokio::runtime::Handle::try_current().is_err());
    block_on(async {
        let client = LockClient::connect(&server.url()).await.expect("connect");
        let lock = client.lock(&name);
        let held = lock.acquire().await.expect("free");
        let err = lock
            .try_acquire(Duration::from_millis(200), None)
            .await
            .expect_err("held by another scope");
        assert!(err.is_timeout(), "{err}");

        let waiter = std::thread::spawn({
            let lock = lock.clone();
            move || block_on(async { lock.acquire().await.map(drop) })
        });
        std::thread::sleep(Duration::from_millis(300));
        held.unlock().await.expect("unlock");
        waiter.join().expect("join").expect("woken by the release");

        drop(lock.acquire().await.expect("free again"));
        client.flush().await;
        assert!(!lock.is_locked().await.expect("is_locked"));
    });
    assert_released(&server, &name);
}
