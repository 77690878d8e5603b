//! A real Redis Cluster, assembled with `CLUSTER ADDSLOTSRANGE` (`ADDSLOTS` before Redis 7.0),
//! `CLUSTER MEET` and
//! `CLUSTER REPLICATE`; its failovers and slot migrations are in `changes.rs`.

use std::ops::RangeInclusive;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{RedisServer, info_value, start_many};

mod changes;
mod view;

/// The number of hash slots of Redis Cluster.
pub const CLUSTER_SLOTS: u16 = 16384;

/// How long [`RedisCluster::start`] waits for `cluster_state:ok` on every node.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `cluster-node-timeout` of a cluster with replicas: a killed primary is failed over within
/// about two seconds (the timeout, then the replica's election).
const FAILOVER_NODE_TIMEOUT: &str = "1000";

/// A Redis Cluster of `n` masters, each with as many replicas, every node a [`RedisServer`] in
/// cluster mode.
///
/// The 16384 slots are split evenly in contiguous ranges, node 0 holding the first range.
/// `cluster-node-timeout` is 2000 ms without replicas, 1000 ms with them (fast failovers).
/// Dropping the cluster kills every node.
///
/// Who serves a slot is asked of the cluster each time ([`node_for_slot`](Self::node_for_slot)),
/// so the answers follow a [failover](Self::kill_primary) or a
/// [slot migration](Self::migrate_slot).
///
/// # Examples
///
/// ```no_run
/// use lock_tests::RedisCluster;
///
/// let cluster = RedisCluster::start(3);
/// let node = cluster.node_for_key("lock:{order-1}");
/// let _: () = node.cmd(&["SET", "lock:{order-1}", "x"]);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    /// The masters as started (in slot order), then their replicas (those of master 0 first).
    nodes: Vec<RedisServer>,
    masters: usize,
    slots: Vec<RangeInclusive<u16>>,
}

impl RedisCluster {
    /// Starts `masters` cluster-mode servers, gives each an even share of the slots, joins them with
    /// `CLUSTER MEET`, and waits until every node reports `cluster_state:ok` and knows every other node
    /// as connected. That takes about 2 s: a freshly started Redis master waits 2 s before it reports
    /// `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When `masters` is 0, when a server does not start, or when the cluster is not ready within 30 s
    /// (with every node's `CLUSTER NODES`).
    pub fn start(masters: usize) -> RedisCluster {
        Self::assemble(masters, 0, None)
    }

    /// Starts a cluster of `masters` masters with `replicas` replicas each (`CLUSTER REPLICATE`),
    /// and waits until every replica is in sync with its master and every node knows every other
    /// node and its role. `cluster-node-timeout` is 1000 ms, so a killed master's replica takes
    /// over within about two seconds.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), when `masters < 3` (a failover needs the votes of a majority
    /// of masters), and when the replicas do not sync within 30 s.
    pub fn with_replicas(masters: usize, replicas: usize) -> RedisCluster {
        Self::assemble(masters, replicas, Some(FAILOVER_NODE_TIMEOUT))
    }

    fn assemble(masters: usize, replicas: usize, node_timeout: Option<&str>) -> RedisCluster {
        assert!(masters >= 1, "a Redis Cluster needs a master, got none");
        assert!(
            replicas == 0 || masters >= 3,
            "a replica is promoted by the votes of a majority of masters: {masters} cannot fail over"
        );
        let nodes = start_many(masters * (1 + replicas), || {
            let builder = RedisServer::builder().cluster_enabled(true);
            match node_timeout {
                Some(timeout) => builder.arg("cluster-node-timeout", timeout),
                None => builder,
            }
        });
        let slots = split_slots(masters);
        for (i, (node, range)) in nodes.iter().zip(&slots).enumerate() {
            let epoch = (i + 1).to_string();
            let _: () = node.cmd(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]);
            if node.version().redis_7_or_newer() {
                let _: () = node.cmd(&[
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &range.start().to_string(),
                    &range.end().to_string(),
                ]);
            } else {
                // `ADDSLOTSRANGE` came with Redis 7.0: name every slot.
                let slots: Vec<String> = range.clone().map(|slot| slot.to_string()).collect();
                let mut args = vec!["CLUSTER", "ADDSLOTS"];
                args.extend(slots.iter().map(String::as_str));
                let _: () = node.cmd(&args);
            }
        }
        let first = &nodes[0];
        for node in &nodes[1..] {
            let bus_port = node
                .cluster_port()
                .expect("cluster nodes have a bus port")
                .to_string();
            let _: () = first.cmd(&[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &node.port().to_string(),
                &bus_port,
            ]);
        }
        let cluster = RedisCluster {
            nodes,
            masters,
            slots,
        };
        if replicas > 0 {
            // A replica can only follow a master it knows.
            cluster.wait_for(
                "every node to know every other",
                CLUSTER_READY_TIMEOUT,
                || {
                    cluster.nodes.iter().all(|node| {
                        view::nodes_of(node).is_some_and(|known| known.len() == cluster.nodes.len())
                    })
                },
            );
            let (primaries, followers) = cluster.nodes.split_at(masters);
            for (master, its_replicas) in primaries.iter().zip(followers.chunks(replicas)) {
                let id: String = master.cmd(&["CLUSTER", "MYID"]);
                for replica in its_replicas {
                    let _: () = replica.cmd(&["CLUSTER", "REPLICATE", &id]);
                }
            }
            // A master votes for a failed master's replica only if it knows it as one.
            let expected = masters * replicas;
            cluster.wait_for(
                "every node to know every replica",
                CLUSTER_READY_TIMEOUT,
                || {
                    cluster.nodes.iter().all(|node| {
                        view::nodes_of(node).is_some_and(|known| {
                            known.iter().filter(|seen| seen.is_replica()).count() == expected
                        })
                    })
                },
            );
        }
        cluster.wait_until_ready(CLUSTER_READY_TIMEOUT);
        cluster
    }

    /// Waits until every running node reports `cluster_state:ok` and lists every running node as
    /// connected (`CLUSTER NODES` without `handshake`, `fail` or `disconnected`), with every
    /// replica in sync with its master (`master_link_status:up`) and known as a replica by every
    /// node. A node that was killed is left out (others still list it, failed).
    ///
    /// [`start`](Self::start) calls this; call it again after restarting a node.
    ///
    /// # Panics
    ///
    /// When the cluster is not ready within `timeout`.
    pub fn wait_until_ready(&self, timeout: Duration) {
        self.wait_for("the cluster to be ready", timeout, || {
            self.running().all(|node| self.node_ready(node))
        });
    }

    /// Polls `done` every 50 ms until it holds; panics after `timeout` with every node's view
    /// of the cluster, naming `what` was awaited.
    fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("waited {timeout:?} for {what}:\n{}", self.report());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every running node's `cluster_state`, `CLUSTER NODES` and log tail.
    fn report(&self) -> String {
        let mut report = String::new();
        for node in self.running() {
            let nodes_text = node
                .try_cmd::<String>(&["CLUSTER", "NODES"])
                .unwrap_or_else(|e| e.to_string());
            let state = node
                .try_cmd::<String>(&["CLUSTER", "INFO"])
                .ok()
                .and_then(|info| info_value(&info, "cluster_state"))
                .unwrap_or_default();
            report.push_str(&format!(
                "node {} cluster_state:{state}\n{nodes_text}\n{}\n",
                node.port(),
                node.log_tail()
            ));
        }
        report
    }

    fn node_ready(&self, node: &RedisServer) -> bool {
        let Ok(info) = node.try_cmd::<String>(&["CLUSTER", "INFO"]) else {
            return false;
        };
        if info_value(&info, "cluster_state").as_deref() != Some("ok") {
            return false;
        }
        let Some(known) = view::nodes_of(node) else {
            return false;
        };
        let running: Vec<u16> = self.running().map(RedisServer::port).collect();
        let live: Vec<_> = known
            .iter()
            .filter(|seen| running.contains(&seen.port))
            .collect();
        let synced = !known
            .iter()
            .any(|seen| seen.is_myself() && seen.is_replica())
            || node
                .try_cmd::<String>(&["INFO", "replication"])
                .ok()
                .and_then(|info| info_value(&info, "master_link_status"))
                .as_deref()
                == Some("up");
        live.len() == running.len() && live.iter().all(|seen| seen.is_healthy()) && synced
    }

    /// Every node, running or not: the masters as started (in slot order), then the replicas.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes that are running (not [killed](RedisServer::kill)).
    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|node| node.is_running())
    }

    /// The node listening on `port`.
    ///
    /// # Panics
    ///
    /// When no node of this cluster listens there.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    /// The URLs of the masters as started, in slot order: what a cluster client takes as seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes[..self.masters]
            .iter()
            .map(RedisServer::url)
            .collect()
    }

    /// The slot range each master was given at the start, in the order of
    /// [`nodes`](Self::nodes).
    pub fn slot_ranges(&self) -> &[RangeInclusive<u16>] {
        &self.slots
    }

    /// The primaries serving slots now, in the order of their first slot (`CLUSTER SLOTS` asked
    /// of a running node).
    ///
    /// # Panics
    ///
    /// When no running node answers.
    pub fn primaries(&self) -> Vec<&RedisServer> {
        let mut ports: Vec<u16> = Vec::new();
        for (_, port) in self.slot_owners() {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports.into_iter().map(|port| self.node(port)).collect()
    }

    /// The primary that serves `slot` now (`CLUSTER SLOTS` asked of a running node).
    ///
    /// # Panics
    ///
    /// When `slot >= 16384`, or when no running node answers or knows an owner of the slot.
    pub fn node_for_slot(&self, slot: u16) -> &RedisServer {
        assert!(
            slot < CLUSTER_SLOTS,
            "slot {slot} is out of range 0..{CLUSTER_SLOTS}"
        );
        let port = self
            .slot_owners()
            .into_iter()
            .find_map(|(range, port)| range.contains(&slot).then_some(port))
            .unwrap_or_else(|| panic!("no node serves slot {slot}:\n{}", self.report()));
        self.node(port)
    }

    /// The primary that serves `key` (its [`key_slot`]) now.
    pub fn node_for_key(&self, key: impl AsRef<[u8]>) -> &RedisServer {
        self.node_for_slot(key_slot(key.as_ref()))
    }

    /// The running replicas of `primary`, as the primary lists them (`CLUSTER REPLICAS`).
    pub fn replicas_of(&self, primary: &RedisServer) -> Vec<&RedisServer> {
        let id: String = primary.cmd(&["CLUSTER", "MYID"]);
        let lines: Vec<String> = primary.cmd(&["CLUSTER", "REPLICAS", &id]);
        lines
            .iter()
            .filter_map(|line| view::Known::parse(line))
            .filter(|replica| !replica.is_failed())
            .map(|replica| self.node(replica.port))
            .filter(|node| node.is_running())
            .collect()
    }

    /// Waits until every running replica of `primary` has replicated everything `primary` had
    /// written when this was called (its `master_repl_offset`), so a failover keeps it.
    ///
    /// # Panics
    ///
    /// When that takes more than 10 s.
    pub fn await_replicated(&self, primary: &RedisServer) {
        let offset = |node: &RedisServer| {
            node.try_cmd::<String>(&["INFO", "replication"])
                .ok()
                .and_then(|info| info_value(&info, "master_repl_offset"))
                .and_then(|offset| offset.parse::<u64>().ok())
        };
        let written = offset(primary)
            .unwrap_or_else(|| panic!("node {} reports no replication offset", primary.port()));
        let replicas = self.replicas_of(primary);
        self.wait_for("the replicas to catch up", Duration::from_secs(10), || {
            replicas
                .iter()
                .all(|replica| offset(replica).is_some_and(|at| at >= written))
        });
    }

    /// Each slot range and the port of its primary, as the first running node that answers
    /// sees them.
    fn slot_owners(&self) -> Vec<(RangeInclusive<u16>, u16)> {
        self.running()
            .find_map(view::slot_owners)
            .unwrap_or_else(|| panic!("no node answers CLUSTER SLOTS:\n{}", self.report()))
    }
}

/// Splits the slots into `n` contiguous, even ranges (the first ones one slot larger when uneven).
fn split_slots(n: usize) -> Vec<RangeInclusive<u16>> {
    let n = u16::try_from(n).expect("node count fits in u16");
    let base = CLUSTER_SLOTS / n;
    let extra = CLUSTER_SLOTS % n;
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = base + u16::from(i < extra);
            let range = start..=start + len - 1;
            start += len;
            range
        })
        .collect()
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of the key, or of its hash tag — the part between
/// the first `{` and the next `}` when that part is not empty — modulo 16384.
///
/// ```
/// use lock_tests::key_slot;
///
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"lock:{user1}"), key_slot(b"user1"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16_xmodem(hashed) % CLUSTER_SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster uses.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_every_slot_once() {
        for n in 3..=7 {
            let ranges = split_slots(n);
            assert_eq!(*ranges[0].start(), 0);
            assert_eq!(*ranges[n - 1].end(), CLUSTER_SLOTS - 1);
            for pair in ranges.windows(2) {
                assert_eq!(*pair[0].end() + 1, *pair[1].start());
            }
        }
    }

    #[test]
    fn known_slots() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }
}
