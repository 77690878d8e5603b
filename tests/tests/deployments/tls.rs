//! `rediss://` (the `tls` feature) against the kit's server on a TLS port, with
//! certificates made for each test by the kit: locks taken, waited for (pub/sub over TLS) and
//! released; a private CA trusted; a client certificate shown when the server asks; an
//! untrusted server refused. A server binary built without TLS skips these tests by name
//! ([`skip_without`]).

use std::time::Duration;

use lock_runtime::{LockClient, LockClientBuilder};
use lock_tests::{
    Capability, RedisServer,
    locks::{assert_released, take_once},
    skip_without, unique_name,
};

/// A builder for `server`'s TLS port, trusting the CA that signed its certificate.
fn trusting(server: &RedisServer) -> LockClientBuilder {
    LockClient::builder()
        .url(server.tls_url())
        .tls_root_certificate(server.tls_ca_pem())
}

/// The server's connections on its TLS port, as `CLIENT LIST` describes them.
fn tls_connections(server: &RedisServer) -> Vec<String> {
    let port = server.tls_url().rsplit(':').next().map(str::to_owned);
    let local = format!("laddr=127.0.0.1:{} ", port.expect("a port"));
    let clients: String = server.cmd(&["CLIENT", "LIST"]);
    clients
        .lines()
        .filter(|line| line.contains(&local))
        .map(str::to_owned)
        .collect()
}

/// Two clients over TLS: one holds, the other waits and is woken by the release (its
/// subscription is on the TLS port too), long before the holder's 30 s lease would free it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_taken_and_handed_over_through_tls() {
    if skip_without(Capability::Tls) {
        return;
    }
    let server = RedisServer::builder().tls(true).start();
    let holding = trusting(&server).build().await.expect("TLS connect");
    let waiting = trusting(&server).build().await.expect("TLS connect");
    let name = unique_name("tls-lock");
    let guard = holding.lock(&name).acquire().await.expect("free");
    let waiter = tokio::spawn({
        let lock = waiting.lock(&name);
        async move { lock.acquire().await?.unlock().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the lock is held");
    // Both command connections, and the waiter's subscription.
    let connections = tls_connections(&server);
    assert_eq!(connections.len(), 3, "{connections:#?}");
    assert!(
        connections
            .iter()
            .any(|line| line.contains(" cmd=subscribe ")),
        "{connections:#?}"
    );
    guard.unlock().await.expect("unlock");
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken by the release, not by the lease running out")
        .expect("join")
        .expect("the waiter's turn");
    assert_released(&server, &name);
}

/// A server that requires client certificates refuses a client without one, and serves one
/// that shows a certificate signed by its CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_shown_when_the_server_requires_one() {
    if skip_without(Capability::Tls) {
        return;
    }
    let server = RedisServer::builder()
        .tls(true)
        .arg("tls-auth-clients", "yes")
        .start();
    let refused = trusting(&server)
        .build()
        .await
        .expect_err("no client certificate");
    assert!(refused.is_redis(), "{refused}");

    let (cert, key) = server.tls_client_certificate();
    let client = trusting(&server)
        .tls_client_certificate(cert, key)
        .build()
        .await
        .expect("mutual TLS");
    let name = unique_name("tls-mutual");
    take_once(&client, &name).await;
    assert_released(&server, &name);
}

/// A server whose certificate no trusted root signed is refused at connect, with an error
/// naming the server, not a panic and not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_an_unknown_ca_is_refused() {
    if skip_without(Capability::Tls) {
        return;
    }
    let server = RedisServer::builder().tls(true).start();
    let other = RedisServer::builder().tls(true).start();
    for builder in [
        LockClient::builder().url(server.tls_url()),
        LockClient::builder()
            .url(server.tls_url())
            .tls_root_certificate(other.tls_ca_pem()),
    ] {
        let err = builder.build().await.expect_err("untrusted certificate");
        assert!(err.is_redis(), "{err}");
        assert!(err.to_string().contains(&server.tls_url()), "{err}");
    }
    assert_eq!(tls_connections(&server), Vec::<String>::new());
}

/// Certificates that are not PEM are a configuration error at build time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_do_not_parse_are_a_config_error() {
    if skip_without(Capability::Tls) {
        return;
    }
    let server = RedisServer::builder().tls(true).start();
    let err = LockClient::builder()
        .url(server.tls_url())
        .tls_root_certificate("not a certificate")
        .build()
        .await
        .expect_err("bad PEM");
    assert!(
        matches!(err, lock_runtime::LockError::Config { .. }),
        "{err}"
    );
    let (cert, _) = server.tls_client_certificate();
    let err = LockClient::builder()
        .url(server.tls_url())
        .tls_client_certificate(cert, "not a key")
        .build()
        .await
        .expect_err("bad key");
    assert!(err.to_string().contains("private key"), "{err}");
}

/// `valkeys://`, which redis-rs reads as `rediss://`, is TLS too: the certificates given are
/// used for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkeys_url_is_tls_too() {
    if skip_without(Capability::Tls) {
        return;
    }
    let server = RedisServer::builder().tls(true).start();
    let url = server.tls_url().replacen("rediss://", "valkeys://", 1);
    let client = LockClient::builder()
        .url(url)
        .tls_root_certificate(server.tls_ca_pem())
        .build()
        .await
        .expect("TLS connect");
    let name = unique_name("valkeys");
    take_once(&client, &name).await;
    assert_eq!(tls_connections(&server).len(), 1);
    assert_released(&server, &name);
}
