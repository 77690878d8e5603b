//! A real Redis Cluster of masters, assembled with `CLUSTER ADDSLOTSRANGE` and `CLUSTER MEET`.

use std::ops::RangeInclusive;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{RedisServer, info_value, start_many};

/// The number of hash slots of Redis Cluster.
pub const CLUSTER_SLOTS: u16 = 16384;

/// How long [`RedisCluster::start`] waits for `cluster_state:ok` on every node.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A Redis Cluster of `n` masters (no replicas), each a [`RedisServer`] in cluster mode.
///
/// The 16384 slots are split evenly in contiguous ranges, node 0 holding the first range.
/// `cluster-node-timeout` is 2000 ms. Dropping the cluster kills every node.
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
    nodes: Vec<RedisServer>,
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
        assert!(masters >= 1, "a Redis Cluster needs a master, got none");
        let nodes = start_many(masters, || RedisServer::builder().cluster_enabled(true));
        let slots = split_slots(masters);
        for (i, (node, range)) in nodes.iter().zip(&slots).enumerate() {
            let epoch = (i + 1).to_string();
            let _: () = node.cmd(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]);
            let _: () = node.cmd(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &range.start().to_string(),
                &range.end().to_string(),
            ]);
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
        let cluster = RedisCluster { nodes, slots };
        cluster.wait_until_ready(CLUSTER_READY_TIMEOUT);
        cluster
    }

    /// Waits until every running node reports `cluster_state:ok` and lists every node as connected
    /// (`CLUSTER NODES` without `handshake`, `fail` or `disconnected`).
    ///
    /// [`start`](Self::start) calls this; call it again after restarting a node.
    ///
    /// # Panics
    ///
    /// When the cluster is not ready within `timeout`.
    pub fn wait_until_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.nodes.iter().all(|node| self.node_ready(node)) {
                return;
            }
            if Instant::now() >= deadline {
                let mut report = String::new();
                for node in &self.nodes {
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
                panic!("Redis Cluster not ready within {timeout:?}:\n{report}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn node_ready(&self, node: &RedisServer) -> bool {
        let Ok(info) = node.try_cmd::<String>(&["CLUSTER", "INFO"]) else {
            return false;
        };
        if info_value(&info, "cluster_state").as_deref() != Some("ok") {
            return false;
        }
        let Ok(nodes) = node.try_cmd::<String>(&["CLUSTER", "NODES"]) else {
            return false;
        };
        let lines: Vec<&str> = nodes.lines().filter(|l| !l.trim().is_empty()).collect();
        lines.len() == self.nodes.len()
            && lines.iter().all(|line| {
                let mut fields = line.split_whitespace();
                let flags = fields.nth(2).unwrap_or("");
                let link = fields.nth(4).unwrap_or("");
                !flags.contains("handshake")
                    && !flags.contains("fail")
                    && !flags.contains("noaddr")
                    && link == "connected"
            })
    }

    /// The nodes, in slot order (node 0 holds the first slot range).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The URLs of every node, in the order of [`nodes`](Self::nodes); what a cluster client takes as seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The slot range each node was given, in the order of [`nodes`](Self::nodes).
    pub fn slot_ranges(&self) -> &[RangeInclusive<u16>] {
        &self.slots
    }

    /// The node that was given `slot`.
    ///
    /// # Panics
    ///
    /// When `slot >= 16384`.
    pub fn node_for_slot(&self, slot: u16) -> &RedisServer {
        let index = self
            .slots
            .iter()
            .position(|range| range.contains(&slot))
            .unwrap_or_else(|| panic!("slot {slot} is out of range 0..{CLUSTER_SLOTS}"));
        &self.nodes[index]
    }

    /// The node that serves `key` (its [`key_slot`]).
    pub fn node_for_key(&self, key: impl AsRef<[u8]>) -> &RedisServer {
        self.node_for_slot(key_slot(key.as_ref()))
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
