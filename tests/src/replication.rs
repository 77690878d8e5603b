//! A primary with synced replicas.

use std::thread;
use std::time::{Duration, Instant};

use crate::server::{RedisServer, info_value, start_many};

/// How long [`ReplicatedRedis::start`] waits for the replicas to sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

/// A primary and its replicas (`replicaof 127.0.0.1 <primary port>`), all real [`RedisServer`]s.
///
/// Dropping it kills every process.
///
/// # Examples
///
/// ```no_run
/// use lock_tests::ReplicatedRedis;
///
/// let redis = ReplicatedRedis::start(2);
/// let mut primary = redis.primary.sync_connection();
/// let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut primary).unwrap();
/// // `WAIT` counts acknowledgements of this connection's writes.
/// let acked: i64 = redis::cmd("WAIT").arg(2).arg(1000).query(&mut primary).unwrap();
/// assert_eq!(acked, 2);
/// assert_eq!(redis.replicas[0].cmd::<String>(&["GET", "k"]), "v");
/// ```
#[derive(Debug)]
pub struct ReplicatedRedis {
    /// The primary.
    pub primary: RedisServer,
    /// The replicas, each replicating [`primary`](Self::primary).
    pub replicas: Vec<RedisServer>,
}

impl ReplicatedRedis {
    /// Starts a primary and `replicas` replicas, and returns once every replica reports
    /// `master_link_status:up` and the primary reports `connected_slaves:<replicas>` (see
    /// [`wait_for_sync`](Self::wait_for_sync)); about 1 s.
    ///
    /// # Panics
    ///
    /// When a server does not start or the replicas do not sync within 15 s (with the logs).
    pub fn start(replicas: usize) -> ReplicatedRedis {
        let primary = RedisServer::start();
        let port = primary.port();
        let replicas = start_many(replicas, || RedisServer::builder().replica_of_port(port));
        let redis = ReplicatedRedis { primary, replicas };
        redis.wait_for_sync(SYNC_TIMEOUT);
        redis
    }

    /// Waits until every replica reports `master_link_status:up`, the primary reports
    /// `connected_slaves` equal to the number of replicas, and every replica acknowledges a write
    /// (`PUBLISH` then `WAIT` on one connection).
    ///
    /// The last step matters: after a diskless full sync Redis 7.0 may hold the replication stream of a
    /// replica that already shows `master_link_status:up` until that replica's next periodic `ACK`, up to
    /// a second later. [`start`](Self::start) calls this; call it again after restarting a node.
    ///
    /// # Panics
    ///
    /// When that does not happen within `timeout`, with the replication info and logs of every node.
    pub fn wait_for_sync(&self, timeout: Duration) {
        let expected = self.replicas.len().to_string();
        let deadline = Instant::now() + timeout;
        loop {
            if self.links_up(&expected) && self.replicas_ack(&expected) {
                return;
            }
            if Instant::now() >= deadline {
                let mut report = String::new();
                for server in std::iter::once(&self.primary).chain(&self.replicas) {
                    let info = server
                        .try_cmd::<String>(&["INFO", "replication"])
                        .unwrap_or_else(|e| e.to_string());
                    report.push_str(&format!(
                        "=== port {}\n{info}\n{}\n",
                        server.port(),
                        server.log_tail()
                    ));
                }
                panic!("replicas did not sync within {timeout:?}:\n{report}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn links_up(&self, expected: &str) -> bool {
        let replicas_up = self.replicas.iter().all(|replica| {
            replica
                .try_cmd::<String>(&["INFO", "replication"])
                .ok()
                .and_then(|info| info_value(&info, "master_link_status"))
                .as_deref()
                == Some("up")
        });
        replicas_up
            && self
                .primary
                .try_cmd::<String>(&["INFO", "replication"])
                .ok()
                .and_then(|info| info_value(&info, "connected_slaves"))
                .as_deref()
                == Some(expected)
    }

    /// Whether every replica acknowledges a write within a short wait. `WAIT` counts acknowledgements
    /// of the calling connection's last write, so both commands share one connection.
    fn replicas_ack(&self, expected: &str) -> bool {
        let Ok(mut connection) = redis::Client::open(self.primary.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        else {
            return false;
        };
        if connection
            .set_read_timeout(Some(Duration::from_secs(5)))
            .is_err()
        {
            return false;
        }
        let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg("__lock_tests_sync__")
            .arg("")
            .query(&mut connection);
        if published.is_err() {
            return false;
        }
        redis::cmd("WAIT")
            .arg(expected)
            .arg(500)
            .query::<i64>(&mut connection)
            .is_ok_and(|acked| acked.to_string() == expected)
    }

    /// The URLs of the replicas.
    pub fn replica_urls(&self) -> Vec<String> {
        self.replicas.iter().map(RedisServer::url).collect()
    }
}

/// Starts a primary with `n` synced replicas; the same as [`ReplicatedRedis::start`].
///
/// # Panics
///
/// As [`ReplicatedRedis::start`].
pub fn start_with_replicas(n: usize) -> ReplicatedRedis {
    ReplicatedRedis::start(n)
}
