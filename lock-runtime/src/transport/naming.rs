//! The client's name on its Redis connections (`CLIENT SETNAME`), so that `CLIENT LIST` on the
//! server tells which service each connection belongs to.
//!
//! redis-rs 1.8 has no client-name setting and no hook when a connection is (re)opened, so the
//! name is given in two ways:
//!
//! - **The command connection** (redis-rs's `ConnectionManager`, or a cluster's connection)
//!   reconnects inside redis-rs, unseen. What is seen is why: a request that fails for a reason
//!   other than a reply of the server (the connection dropped, was refused, timed out). Each such
//!   failure opens a new *epoch* in [`Naming`]; the first request of an epoch sends
//!   `CLIENT SETNAME` alongside itself, on the same multiplexed connection, without waiting for
//!   it (so no extra round trip), and every other request sends nothing more. A connection is
//!   thus named by its first request, and again by the first request after anything that may
//!   have replaced it; an uncontended acquire on a named connection sends only its script. A
//!   connection replaced after a response timeout (`connection.rs`) starts a fresh [`Naming`].
//!   On a Redis Cluster, redis-rs sends `CLIENT SETNAME` to every node it has a connection to;
//!   a node connection it opens later (a failover, a new node) is named by the first request
//!   after a failed one, not before.
//! - **The pub/sub connection** is opened by the hub, which reopens it itself after a failure:
//!   [`pubsub`] opens the socket, names it (after `AUTH` if the URL has a password), and hands it
//!   to redis-rs's `PubSub`, so each connection is named before its first `SUBSCRIBE`. On a
//!   Redis Cluster the hub's per-primary RESP3 connections take commands beside their pushes,
//!   and are named with `CLIENT SETNAME` as they open, before their first `SSUBSCRIBE`.
//!
//! Naming is best effort: a server that refuses `CLIENT SETNAME` (an ACL without it) leaves the
//! connection unnamed, and the lock works the same. Redis refuses names with spaces or newlines:
//! [`connection_name`] maps every character outside `'!'..='~'` to `_`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use redis::{Cmd, ConnectionAddr, aio::ConnectionLike};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `name` as Redis accepts it for a connection: every character outside `'!'..='~'` (a space,
/// a newline, anything not printable ASCII) replaced by `_`.
pub(crate) fn connection_name(name: &str) -> String {
    name.chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect()
}

/// Whether the command connection carries the client's name; see the module docs.
pub(crate) struct Naming {
    /// `CLIENT SETNAME <name>`.
    setname: Cmd,
    /// Counts the requests that failed other than by a server's reply: each may have been
    /// answered by a reconnection.
    epoch: AtomicU64,
    /// One more than the last epoch whose naming a request took on (0: none yet).
    claimed: AtomicU64,
}

impl Naming {
    /// A connection not named yet, to be named `name` (already a [`connection_name`]).
    pub(crate) fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            setname: redis::cmd("CLIENT").arg("SETNAME").arg(name).clone(),
            epoch: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
        })
    }

    /// Whether the request asking should send `CLIENT SETNAME` with it: true for the first
    /// request of each epoch. Two atomic operations, on every request.
    pub(crate) fn claim(&self) -> bool {
        let epoch = self.epoch.load(Ordering::Acquire) + 1;
        self.claimed.load(Ordering::Acquire) < epoch
            && self.claimed.fetch_max(epoch, Ordering::AcqRel) < epoch
    }

    /// Tells how a request ended: a failure that is not the server's reply may mean redis-rs
    /// reconnected, so the next request names the connection again.
    pub(crate) fn observe<T>(&self, outcome: &redis::RedisResult<T>) {
        if let Err(err) = outcome
            && !matches!(err.kind(), redis::ErrorKind::Server(_))
        {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sends `CLIENT SETNAME` on `connection`. A failure is only logged: the request it goes
    /// with tells whether the connection failed.
    pub(crate) async fn name<C: ConnectionLike>(self: Arc<Self>, mut connection: C) {
        let named: redis::RedisResult<()> = self.setname.query_async(&mut connection).await;
        if let Err(err) = named {
            tracing::debug!(error = %err, "could not name the command connection");
        }
    }
}

/// Opens a pub/sub connection to `node` named `name` (already a [`connection_name`]); see the
/// module docs. A URL whose connection this cannot open itself (TLS) gets redis-rs's own,
/// unnamed.
pub(crate) async fn pubsub(
    node: &redis::Client,
    name: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let info = node.get_connection_info();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            introduce(&mut stream, info.redis_settings(), name).await?;
            redis::aio::PubSub::new(info.redis_settings(), stream).await
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => {
            let mut stream = tokio::net::UnixStream::connect(path).await?;
            introduce(&mut stream, info.redis_settings(), name).await?;
            redis::aio::PubSub::new(info.redis_settings(), stream).await
        }
        _ => node.get_async_pubsub().await,
    }
}

/// Names a fresh connection `name`: `AUTH` first if `settings` has a password (an unnamed
/// connection may not run `CLIENT SETNAME` before it), then `CLIENT SETNAME`, and reads their
/// replies (one line each) so that nothing of them is left for redis-rs, which then sets the
/// connection up as usual, `AUTH` included. A refusal of either is only logged: redis-rs's own
/// `AUTH` reports a wrong password (or retries without the username on an old Redis), and an
/// unnamed connection works the same.
async fn introduce<S>(
    stream: &mut S,
    settings: &redis::RedisConnectionInfo,
    name: &str,
) -> redis::RedisResult<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut pipeline = redis::pipe();
    if let Some(password) = settings.password() {
        let auth = pipeline.cmd("AUTH");
        if let Some(username) = settings.username() {
            auth.arg(username);
        }
        auth.arg(password);
    }
    pipeline.cmd("CLIENT").arg("SETNAME").arg(name);
    stream.write_all(&pipeline.get_packed_pipeline()).await?;
    let mut replies = BufReader::new(stream);
    for _ in 0..pipeline.len() {
        let mut line = Vec::new();
        if replies.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        if line.first() == Some(&b'-') {
            let error = String::from_utf8_lossy(&line);
            tracing::debug!(error = %error.trim(), "could not name the pub/sub connection");
        }
    }
    if !replies.buffer().is_empty() {
        return Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "unexpected reply while naming the pub/sub connection",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_printable_ascii_only() {
        assert_eq!(
            connection_name("orders-api@host-3/4121"),
            "orders-api@host-3/4121"
        );
        assert_eq!(connection_name("orders api\nnode é"), "orders_api_node__");
    }

    #[test]
    fn each_epoch_is_claimed_once() {
        let naming = Naming::new("x");
        assert!(
            naming.claim(),
            "a new connection is named by its first request"
        );
        assert!(!naming.claim());
        naming.observe::<()>(&Err(redis::RedisError::from((
            redis::ServerErrorKind::NoScript.into(),
            "NOSCRIPT",
        ))));
        assert!(!naming.claim(), "a server's reply replaces no connection");
        naming.observe::<()>(&Err(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )
        .into()));
        assert!(
            naming.claim(),
            "a dropped connection may have been replaced"
        );
        assert!(!naming.claim());
    }
}
