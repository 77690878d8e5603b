//! A primary with replicas, watched by Redis Sentinels that fail it over.

use std::thread;
use std::time::{Duration, Instant};

use crate::replication::ReplicatedRedis;
use crate::server::{RedisServer, info_value, start_many};

/// How long [`SentinelRedis::start`] waits for the Sentinels to find each other and the replicas.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A primary and its replicas ([`ReplicatedRedis`]) monitored by Sentinels, all real processes,
/// with small timeouts so a failover takes a second or two: `down-after-milliseconds 500`,
/// `failover-timeout 2000`, quorum a majority of the Sentinels.
///
/// Dropping it kills every process.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use lock_tests::SentinelRedis;
///
/// let redis = SentinelRedis::start(1, 3);
/// // A client would be built with `.sentinel(SentinelRedis::MASTER_NAME, redis.urls())`.
/// let old = redis.primary().port();
/// redis.primary().kill();
/// let new = redis.wait_for_new_primary(old, Duration::from_secs(15));
/// assert_ne!(new.port(), old);
/// ```
#[derive(Debug)]
pub struct SentinelRedis {
    /// The data nodes: the first primary and its replicas. After a failover the primary is
    /// one of the replicas; [`primary`](Self::primary) says which.
    pub nodes: ReplicatedRedis,
    /// The Sentinels.
    pub sentinels: Vec<RedisServer>,
}

impl SentinelRedis {
    /// The name the Sentinels monitor the primary under.
    pub const MASTER_NAME: &'static str = "lock-tests";

    /// Starts a primary with `replicas` synced replicas and `sentinels` Sentinels monitoring it,
    /// and returns once every Sentinel sees every replica and every other Sentinel (a failover
    /// needs both); a few seconds.
    ///
    /// # Panics
    ///
    /// When a server does not start, or the Sentinels do not find each other and the replicas
    /// within 20 s (with their logs).
    pub fn start(replicas: usize, sentinels: usize) -> SentinelRedis {
        let nodes = ReplicatedRedis::start(replicas);
        let config = format!(
            "sentinel monitor {name} 127.0.0.1 {port} {quorum}\n\
             sentinel down-after-milliseconds {name} 500\n\
             sentinel failover-timeout {name} 2000\n\
             sentinel parallel-syncs {name} 1\n",
            name = Self::MASTER_NAME,
            port = nodes.primary.port(),
            quorum = sentinels / 2 + 1,
        );
        let sentinels = start_many(sentinels, || {
            RedisServer::builder().sentinel(config.clone())
        });
        let redis = SentinelRedis { nodes, sentinels };
        redis.wait_for_discovery(replicas);
        redis
    }

    /// The `redis://` URLs of the Sentinels.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The data node the first running Sentinel names as the primary now.
    ///
    /// # Panics
    ///
    /// When no Sentinel answers, or it names no node of this deployment.
    pub fn primary(&self) -> &RedisServer {
        let port = self
            .sentinels
            .iter()
            .filter(|sentinel| sentinel.is_running())
            .find_map(|sentinel| self.named_by(sentinel))
            .unwrap_or_else(|| panic!("no Sentinel names a primary\n{}", self.logs()));
        self.node(port)
    }

    /// The data node listening on `port`.
    ///
    /// # Panics
    ///
    /// When no node of this deployment listens there.
    pub fn node(&self, port: u16) -> &RedisServer {
        std::iter::once(&self.nodes.primary)
            .chain(&self.nodes.replicas)
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no data node listens on port {port}"))
    }

    /// Asks the first Sentinel to fail the primary over now (`SENTINEL FAILOVER`), without
    /// waiting for it to be down: the old primary keeps running, and Sentinel demotes it to a
    /// replica of the new one only some seconds later.
    ///
    /// A Sentinel that just found a replica may not count it as a candidate yet
    /// (`NOGOODSLAVE`); that refusal is retried for a few seconds.
    ///
    /// # Panics
    ///
    /// When the Sentinel keeps refusing (no replica it can promote, a failover under way).
    pub fn failover(&self) {
        let deadline = Instant::now() + DISCOVERY_TIMEOUT;
        loop {
            let refusal =
                match self.sentinels[0].try_cmd::<()>(&["SENTINEL", "FAILOVER", Self::MASTER_NAME])
                {
                    Ok(()) => return,
                    Err(err) => err,
                };
            assert!(
                refusal.code() == Some("NOGOODSLAVE") && Instant::now() < deadline,
                "SENTINEL FAILOVER refused: {refusal}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running Sentinel names a primary other than the node on `old_port`,
    /// the same one, and that node answers `ROLE` as a primary; returns it.
    ///
    /// # Panics
    ///
    /// When that does not happen within `timeout`, with the Sentinels' logs.
    pub fn wait_for_new_primary(&self, old_port: u16, timeout: Duration) -> &RedisServer {
        let deadline = Instant::now() + timeout;
        loop {
            let named: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .filter(|sentinel| sentinel.is_running())
                .map(|sentinel| self.named_by(sentinel))
                .collect();
            if let Some(Some(port)) = named.first()
                && *port != old_port
                && named.iter().all(|other| *other == Some(*port))
                && self.is_primary(*port)
            {
                return self.node(*port);
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinels did not agree on a new primary within {timeout:?} (they name \
                 {named:?}, the old one is {old_port})\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the primary `sentinel` names, if it answers.
    fn named_by(&self, sentinel: &RedisServer) -> Option<u16> {
        let (_, port): (String, String) = sentinel
            .try_cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER_NAME])
            .ok()?;
        port.parse().ok()
    }

    fn is_primary(&self, port: u16) -> bool {
        let role: redis::RedisResult<Vec<redis::Value>> = self.node(port).try_cmd(&["ROLE"]);
        matches!(role.as_deref(), Ok([redis::Value::BulkString(role), ..]) if role == b"master")
    }

    fn wait_for_discovery(&self, replicas: usize) {
        let others = self.sentinels.len().saturating_sub(1).to_string();
        let replicas = replicas.to_string();
        let deadline = Instant::now() + DISCOVERY_TIMEOUT;
        loop {
            let ready = self.sentinels.iter().all(|sentinel| {
                let master = sentinel.try_cmd(&["SENTINEL", "MASTER", Self::MASTER_NAME]);
                let knows_all = master.is_ok_and(|fields: Vec<String>| {
                    field(&fields, "num-slaves") == Some(&replicas)
                        && field(&fields, "num-other-sentinels") == Some(&others)
                });
                // A replica is a candidate for promotion only once the Sentinel has its `INFO`.
                let replicas = sentinel.try_cmd(&["SENTINEL", "REPLICAS", Self::MASTER_NAME]);
                let candidates = replicas.is_ok_and(|replicas: Vec<Vec<String>>| {
                    replicas.iter().all(|replica| {
                        field(replica, "info-refresh")
                            .and_then(|ms| ms.parse::<u64>().ok())
                            .is_some_and(|ms| ms < 5_000)
                    })
                });
                knows_all && candidates
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinels did not find each other and the replicas within \
                 {DISCOVERY_TIMEOUT:?}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log tails of the Sentinels and the replication state of the data nodes.
    fn logs(&self) -> String {
        let mut report = String::new();
        for node in std::iter::once(&self.nodes.primary).chain(&self.nodes.replicas) {
            let role = node
                .try_cmd::<String>(&["INFO", "replication"])
                .ok()
                .and_then(|info| info_value(&info, "role"))
                .unwrap_or_else(|| "down".to_owned());
            report.push_str(&format!("data node {}: {role}\n", node.port()));
        }
        for sentinel in &self.sentinels {
            report.push_str(&format!(
                "=== Sentinel {}\n{}",
                sentinel.port(),
                sentinel.log_tail()
            ));
        }
        report
    }
}

/// The value of `name` in a Sentinel reply of alternating names and values.
fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a String> {
    fields
        .chunks(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair.get(1))
}
