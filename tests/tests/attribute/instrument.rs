//! `#[tracing::instrument]` stacked with `#[distribute_lock]`: attributes expand from the top,
//! each wrapping what the ones above it made, so the one written last is the outermost, as the
//! README says. The lock written first, the span covers the wait too, and its `err` records a
//! lock that could not be taken; `instrument` written first, the span covers only the body,
//! under the lock, and its fields can read the lock's fencing token.

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{RedisServer, logs::capture, unique_name};

#[distribute_lock(key = "instrumented:{name}", wait = "200ms", client = client)]
#[tracing::instrument(skip(client), err(Display))]
async fn lock_first(client: &LockClient, name: &str) -> Result<(), LockError> {
    Ok(())
}

#[tracing::instrument(skip(client), fields(token = ?lock_runtime::fencing_token()))]
#[distribute_lock(key = "instrumented:{name}", client = client)]
async fn instrument_first(client: &LockClient, name: &str) -> Result<(), LockError> {
    tracing::info!("in the body");
    Ok(())
}

/// On the test's own thread (`current_thread`), where the capture sees every event.
#[tokio::test]
async fn the_attribute_written_last_is_the_outermost() {
    let server = RedisServer::start();
    let client = LockClient::connect(&server.url()).await.expect("connect");
    let name = unique_name("instrumented");
    let (_guard, captured) = capture(tracing::Level::INFO);

    instrument_first(&client, &name).await.expect("free");
    let lines = captured.lines();
    let body = lines
        .iter()
        .find(|line| line.contains("in the body"))
        .unwrap_or_else(|| panic!("the body's event: {lines:#?}"));
    assert!(
        body.contains("instrument_first{") && body.contains("token=Some("),
        "the span inside the lock records its token: {body}"
    );

    let held = client
        .lock(format!("instrumented:{name}"))
        .acquire()
        .await
        .expect("free");
    let err = lock_first(&client, &name).await.expect_err("held");
    assert!(err.is_timeout(), "{err}");
    let lines = captured.lines();
    assert!(
        lines.iter().any(|line| line.contains("ERROR")
            && line.contains("lock_first{")
            && line.contains("timed out")),
        "the span around the lock records the timeout: {lines:#?}"
    );
    held.unlock().await.expect("unlock");
}
