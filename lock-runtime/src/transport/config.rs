//! The settings of a client, checked and complete (the builder makes them).

use std::time::Duration;

use tokio::runtime::Handle;

use crate::transport::tls::Tls;

/// The longest a request memo is kept.
const MAX_MEMO_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long an abandoned owner id is remembered at least; see [`Config::abandoned_ttl`].
const ABANDONED_TTL: Duration = Duration::from_secs(15 * 60);

/// The watchdog timeout of a client built with default settings.
pub(crate) const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings shared by every lock of one [`LockClient`](crate::LockClient).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) deployment: Deployment,
    pub(crate) key_prefix: String,
    /// Recorded with each fresh hold, so that a caller who times out learns who holds the lock.
    pub(crate) client_name: String,
    pub(crate) watchdog_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) retry_timeout: Duration,
    pub(crate) pubsub_ping_interval: Duration,
    pub(crate) replicas: Option<ReplicaCheck>,
    /// The certificates of `rediss://` connections (the `tls` feature).
    pub(crate) tls: Tls,
    /// The runtime the client's background work runs on, if not the library's own (see
    /// `transport/background.rs`).
    pub(crate) background_runtime: Option<Handle>,
}

/// Where the locks live.
#[derive(Debug, Clone)]
pub(crate) enum Deployment {
    /// One Redis (a primary, possibly with replicas).
    Single(String),
    /// A Redis Cluster, reached through these seed nodes.
    Cluster(Vec<String>),
    /// The primary that these Sentinels monitor under `master` (see `transport/sentinel`).
    Sentinel {
        master: String,
        sentinels: Vec<String>,
    },
}

impl std::fmt::Display for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => f.write_str(url),
            Self::Cluster(urls) => write!(f, "the Redis Cluster at {}", urls.join(", ")),
            Self::Sentinel { master, sentinels } => write!(
                f,
                "the primary `{master}` of the Sentinels at {}",
                sentinels.join(", ")
            ),
        }
    }
}

/// `WAIT replicas timeout` after every fresh acquisition; see
/// [`LockClientBuilder::wait_for_replicas`](crate::client::builder::LockClientBuilder::wait_for_replicas).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaCheck {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

impl Config {
    /// The client's name as its connections carry it (`CLIENT SETNAME`): see
    /// [`connection_name`](super::naming::connection_name).
    pub(crate) fn connection_name(&self) -> String {
        super::naming::connection_name(&self.client_name)
    }

    /// How long a request memo lives in Redis: long enough to cover every resend of the request
    /// (see the scripts), short enough that memos do not pile up. A retry timeout without
    /// practical end (`Duration::MAX`) keeps memos for [`MAX_MEMO_TTL`]. A memo only answers a
    /// resend with the first attempt's reply: a copy that lands after it expired must count
    /// nothing by what the object's own keys record (a lock's hold numbers, see
    /// `family/scripts/common.lua`).
    pub(crate) fn memo_ttl(&self) -> Duration {
        self.retry_timeout
            .saturating_add(self.response_timeout)
            .clamp(Duration::from_secs(1), MAX_MEMO_TTL)
    }

    /// How long the scripts remember that an acquisition was abandoned (its caller gave up while
    /// its request was in flight), so that a copy of the request still queued on a retired
    /// connection takes nothing when it arrives. A retired connection's bytes can sit in the
    /// kernel's buffers for as long as TCP keeps retransmitting (Linux: about 15 minutes).
    pub(crate) fn abandoned_ttl(&self) -> Duration {
        self.memo_ttl().max(ABANDONED_TTL)
    }

    /// How long after a request first ran a copy of it may still reach Redis: the primitives
    /// that recognise a request by its id kept in their own keys (the count-down latch, the
    /// semaphore's `add_permits` and `try_set_permits`) keep it this long. Copies are sent up to
    /// the retry timeout plus one response timeout after the first send ([`memo_ttl`]), which
    /// may come after the request first ran, and each can sit on a retired connection for as
    /// long as TCP retransmits ([`ABANDONED_TTL`]).
    ///
    /// [`memo_ttl`]: Self::memo_ttl
    pub(crate) fn request_horizon(&self) -> Duration {
        self.memo_ttl().saturating_add(ABANDONED_TTL)
    }

    /// How long a connection to one node of a Redis Cluster may take to open. A fresh cluster
    /// connection waits for every seed node before it asks for the slot map, and is opened
    /// inside one request's response timeout (a request that timed out retires the connection,
    /// see `connection.rs`): a node that accepts connections but never answers (a frozen host)
    /// may take only half of it. The hub's per-shard connections use it too.
    pub(crate) fn cluster_node_connect_timeout(&self) -> Duration {
        self.connect_timeout.min(self.response_timeout / 2)
    }

    /// How often the watchdog renews: a third of the lease it sets, as Redisson does, so two
    /// renewals in a row may fail before the lease runs out.
    pub(crate) fn renew_interval(&self) -> Duration {
        self.watchdog_timeout / 3
    }
}
