//! Late copies of a request (DESIGN 3.2, "a copy counts once, however late"): a request stuck on
//! a connection the client has retired, delivered after the client's request memos are gone.
//!
//! A retired connection's bytes can reach Redis up to ~15 minutes later (TCP retransmission);
//! [`TcpProxy::hold_connections`] and [`TcpProxy::release_held`] deliver such a copy on demand.
//! The steps, shared by every late-copy test:
//!
//! 1. [`quick_client_through`] a proxy;
//! 2. [`first_copy_held`]: the request's first copy is held, the client times out, resends it on
//!    a fresh connection and gets its answer;
//! 3. whatever the test does meanwhile (a new latch of the same name, another acquisition, ...);
//! 4. [`deliver_after_the_memos`]: once no request memo of the names is left, the held copy
//!    reaches Redis; the test then checks the state counted the request once.

use std::{future::Future, time::Duration};

use lock_runtime::LockClient;

use crate::{RedisServer, TcpProxy, locks::eventually};

/// The response timeout of [`quick_client_through`]'s clients: a held request is resent after
/// this long rather than after the default 3 s.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The retry timeout of [`quick_client_through`]'s clients: with [`RESPONSE_TIMEOUT`] their
/// request memos live 1.5 s rather than the default 13 s, so a test waits out the memos in
/// seconds.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(1);

/// A client connected to Redis through `proxy`, with the short [`RESPONSE_TIMEOUT`] and
/// [`RETRY_TIMEOUT`], for run time only: what a late copy may do must not depend on them (a copy
/// can land ~15 minutes late whatever the client's timeouts), and a test using this client
/// waits out the memos they set.
///
/// # Panics
///
/// When the client cannot connect.
pub async fn quick_client_through(proxy: &TcpProxy) -> LockClient {
    LockClient::builder()
        .url(proxy.url())
        .response_timeout(RESPONSE_TIMEOUT)
        .retry_timeout(RETRY_TIMEOUT)
        .build()
        .await
        .unwrap_or_else(|err| panic!("connecting through {}: {err}", proxy.url()))
}

/// Runs `request` with every connection open now held by `proxy`: its first copy stays in the
/// proxy, the client times out, resends it on a new connection and `request` completes. Returns
/// `request`'s output; the first copy is still held, for [`deliver_after_the_memos`].
///
/// # Panics
///
/// When nothing was held: the request did not go out on a connection open before the call
/// (warm the client up with one request first).
pub async fn first_copy_held<F: Future>(proxy: &TcpProxy, request: F) -> F::Output {
    proxy.hold_connections();
    let output = request.await;
    assert!(
        proxy.held_bytes() > 0,
        "set-up: the request's first copy should be held on the connection open before it, \
         but nothing was held"
    );
    output
}

/// Waits until no request memo of any of `names` is left on `server` (they live 1.5 s for a
/// client of [`quick_client_through`]), then delivers what `proxy` holds and waits until Redis
/// ran it.
///
/// # Panics
///
/// When a memo is still there after 10 seconds, or the held bytes are not delivered within 3.
pub async fn deliver_after_the_memos(server: &RedisServer, proxy: &TcpProxy, names: &[&str]) {
    for name in names {
        let memos = format!("*{name}*:memo:*");
        assert!(
            eventually(Duration::from_secs(10), || server.keys(&memos).is_empty()).await,
            "request memos of {name} are still there: {:?}",
            server.keys(&memos)
        );
    }
    deliver_held(proxy, "a request").await;
}

/// Delivers what `proxy` holds (see [`TcpProxy::hold_connections`]) and waits until Redis ran
/// it. `what` names the held request in the panic messages.
///
/// # Panics
///
/// When `proxy` holds nothing (the set-up did not hold `what`), or the held bytes are not
/// delivered within 3 seconds.
pub async fn deliver_held(proxy: &TcpProxy, what: &str) {
    assert!(
        proxy.held_bytes() > 0,
        "set-up: {what} should be held on the retired connection"
    );
    proxy.release_held();
    assert!(
        eventually(Duration::from_secs(3), || proxy.held_bytes() == 0).await,
        "set-up: the held copy of {what} was not delivered"
    );
    // Time for Redis to run what was delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Awaits `releasing`, a release whose first copy ran while the proxy dropped its replies, once
/// they flow again, and asserts what its resend answered: `Ok` where the first copy `released`
/// the hold, `NotHeld` where the hold was gone before it ran. The resend goes out after a
/// response timeout and must be answered within 10 s, the default settings' retry timeout and
/// then some. `what` names the case in a failure.
///
/// # Panics
///
/// When the resend is not answered in time, or answers otherwise.
pub async fn assert_resend_answers(
    releasing: tokio::task::JoinHandle<Result<(), lock_runtime::LockError>>,
    released: bool,
    what: &str,
) {
    let answer = tokio::time::timeout(Duration::from_secs(10), releasing)
        .await
        .unwrap_or_else(|_| panic!("{what}: the resend was not answered within the retry timeout"))
        .unwrap_or_else(|err| panic!("{what}: the release panicked: {err}"));
    if released {
        answer.unwrap_or_else(|err| panic!("{what}: the first copy released it, yet {err}"));
    } else {
        let err = answer.expect_err("the hold was gone before the first copy ran");
        assert!(err.is_not_held(), "{what}: not held, yet {err}");
    }
}
