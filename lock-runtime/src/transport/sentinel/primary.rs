//! [`Primary`]: where the Sentinels say the primary is, asked again when the client has reason
//! to doubt it, and told to whoever follows it.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::sentinel::SentinelClient;
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use super::switches::{self, Followed, Limits};
use crate::transport::background::Background;

/// The primary of a Sentinel-managed deployment, as last found: shared by the command
/// connections, the hub and the `+switch-master` listener.
pub(crate) struct Primary {
    /// The name the Sentinels monitor the primary under.
    master: String,
    /// redis-rs's Sentinel client (it keeps a connection to each Sentinel it asked), with the
    /// outcome of its last lookup for those who waited on it.
    lookup: tokio::sync::Mutex<Lookup>,
    /// Counts the lookups done, so one that waited for another's takes its outcome.
    lookups: AtomicU64,
    located: watch::Sender<Located>,
    /// The `+switch-master` listener, stopped with the last handle to this.
    switches: OnceLock<AbortOnDropHandle<()>>,
}

struct Lookup {
    sentinels: SentinelClient,
    last: redis::RedisResult<()>,
}

/// The primary's node and the failover count it was found at.
#[derive(Clone)]
pub(crate) struct Located {
    /// The client of the primary's node (address, credentials, TLS).
    pub(crate) node: redis::Client,
    /// Counts the times the primary was found at a new address; 0 for the first.
    pub(crate) epoch: u64,
}

impl Primary {
    /// Asks the Sentinels where the primary of `master` is (checking with `ROLE` that it is one),
    /// and starts listening to them for failovers on `runtime`.
    ///
    /// # Errors
    ///
    /// The Sentinels' error when none answers or none names a primary that answers as one.
    pub(crate) async fn locate(
        runtime: &'static Background,
        master: &str,
        mut sentinels: SentinelClient,
        limits: Limits,
        connection_name: String,
    ) -> redis::RedisResult<Arc<Self>> {
        let node = sentinels.async_get_client().await?;
        let (located, _) = watch::channel(Located { node, epoch: 0 });
        let primary = Arc::new(Self {
            master: master.to_owned(),
            lookup: tokio::sync::Mutex::new(Lookup {
                sentinels,
                last: Ok(()),
            }),
            lookups: AtomicU64::new(0),
            located,
            switches: OnceLock::new(),
        });
        let listener = runtime.handle().spawn(switches::listen(
            Arc::downgrade(&primary),
            connection_name,
            limits,
        ));
        let _ = primary.switches.set(AbortOnDropHandle::new(listener));
        Ok(primary)
    }

    /// The name the Sentinels monitor the primary under.
    pub(crate) fn master(&self) -> &str {
        &self.master
    }

    /// The primary as last found.
    pub(crate) fn current(&self) -> Located {
        self.located.borrow().clone()
    }

    /// How many times the primary was found at a new address: a read under a lock, no I/O, for
    /// the command path to notice a failover someone else learned of.
    pub(crate) fn epoch(&self) -> u64 {
        self.located.borrow().epoch
    }

    /// Changes whenever the primary is found at a new address.
    pub(crate) fn moves(&self) -> watch::Receiver<Located> {
        self.located.subscribe()
    }

    /// Asks the Sentinels again where the primary is, and moves [`current`](Self::current) if it
    /// moved. One lookup at a time: a caller that waited for another's takes its outcome
    /// rather than asking again, so a failover that fails every request at once costs one
    /// lookup, not one per request.
    ///
    /// # Errors
    ///
    /// The Sentinels' error (every one unreachable, or none names a primary that answers as
    /// one, as during a failover); transient.
    pub(crate) async fn resolve(&self) -> redis::RedisResult<()> {
        self.resolve_after(self.lookups()).await
    }

    /// How many lookups were done: pass it to [`resolve_after`](Self::resolve_after) before
    /// waiting for something else, so a lookup done meanwhile counts.
    pub(crate) fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Acquire)
    }

    /// [`resolve`](Self::resolve), or the outcome of the lookup done since `seen`, if any.
    pub(crate) async fn resolve_after(&self, seen: u64) -> redis::RedisResult<()> {
        let mut lookup = self.lookup.lock().await;
        if self.lookups.load(Ordering::Acquire) != seen {
            return lookup.last.clone();
        }
        let outcome = lookup
            .sentinels
            .async_get_client()
            .await
            .map(|node| self.adopt(node));
        lookup.last = outcome.clone();
        self.lookups.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    /// [`resolve`](Self::resolve), tried again for up to `within` while it fails: a switch just
    /// announced may not be visible to every Sentinel or the new primary yet.
    pub(crate) async fn resolve_soon(&self, within: Duration) {
        let give_up = tokio::time::Instant::now() + within;
        let mut delay = Duration::from_millis(20);
        loop {
            let outcome = tokio::time::timeout_at(give_up, self.resolve()).await;
            match outcome {
                Ok(Ok(())) => return,
                Ok(Err(err)) if tokio::time::Instant::now() + delay < give_up => {
                    tracing::debug!(error = %err, master = %self.master, "Sentinel lookup failed; asking again");
                }
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, master = %self.master, "Sentinel lookup failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(master = %self.master, "Sentinel lookup timed out");
                    return;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    /// A client of the first Sentinel that answers as one, to listen to.
    pub(crate) async fn sentinel(&self) -> redis::RedisResult<redis::Client> {
        self.lookup
            .lock()
            .await
            .sentinels
            .async_get_sentinel_client()
            .await
    }

    /// Makes `node` the primary if it is at another address than the current one.
    fn adopt(&self, node: redis::Client) {
        self.located.send_if_modified(|located| {
            let before = located.node.get_connection_info().addr();
            let after = node.get_connection_info().addr();
            if before == after {
                return false;
            }
            tracing::info!(
                master = %self.master,
                from = %before,
                to = %after,
                "Sentinel failover: following the primary to its new address"
            );
            *located = Located {
                node,
                epoch: located.epoch + 1,
            };
            true
        });
    }
}

impl Followed for Primary {
    fn master(&self) -> &str {
        Primary::master(self)
    }

    fn sentinel(&self) -> impl Future<Output = redis::RedisResult<redis::Client>> + Send {
        Primary::sentinel(self)
    }

    fn resolve_soon(&self, within: Duration) -> impl Future<Output = ()> + Send {
        Primary::resolve_soon(self, within)
    }
}
