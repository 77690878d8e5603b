//! What happens to a running cluster: a primary failed over (killed, or handing over on
//! request) and a slot migrated to another primary. Each helper returns once every running
//! node agrees on the new state, so a test can assert on it at once.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::{RedisCluster, view};
use crate::server::{RedisServer, info_value};

/// How long a failover or a migration may take before the helpers give up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Keys moved by one `MIGRATE`.
const MIGRATE_BATCH: &str = "100";

impl RedisCluster {
    /// Kills `primary` (`SIGKILL`) and waits until one of its replicas has taken over its slots:
    /// the replica reports `role:master`, every running node says it serves those slots, and
    /// every running node reports `cluster_state:ok`. Returns the new primary. With
    /// [`with_replicas`](Self::with_replicas) this takes about two seconds.
    ///
    /// Replication is asynchronous: a write the killed primary had not yet sent to the replica
    /// is lost.
    ///
    /// # Panics
    ///
    /// When `primary` serves no slot or has no running replica, or when no replica takes over
    /// within 30 s (with every node's view of the cluster).
    pub fn kill_primary(&self, primary: &RedisServer) -> &RedisServer {
        let (slots, replicas) = self.before_failover(primary);
        primary.kill();
        self.wait_for_owner(&slots, |port| replicas.contains(&port), None)
    }

    /// Freezes `primary` (`SIGSTOP`: its connections stay open and silent, as when a host
    /// vanishes without closing them) and waits, as [`kill_primary`](Self::kill_primary) does,
    /// until one of its replicas has taken over its slots; returns the new primary. Until it is
    /// [`resume`](RedisServer::resume)d, the helpers that ask the cluster
    /// ([`node_for_slot`](Self::node_for_slot), [`primaries`](Self::primaries),
    /// [`wait_until_ready`](Self::wait_until_ready)) may ask the frozen node and wait for its
    /// answer (up to 10 s a command): ask the returned node directly. Dropping the cluster kills
    /// it.
    ///
    /// # Panics
    ///
    /// As [`kill_primary`](Self::kill_primary).
    pub fn freeze_primary(&self, primary: &RedisServer) -> &RedisServer {
        let (slots, replicas) = self.before_failover(primary);
        primary.pause();
        self.wait_for_owner(
            &slots,
            |port| replicas.contains(&port),
            Some(primary.port()),
        )
    }

    /// Promotes `replica` with `CLUSTER FAILOVER` (its primary hands over once the replica
    /// caught up, so nothing is lost), and waits until every running node says it serves its
    /// former primary's slots and reports `cluster_state:ok`. The former primary stays up as
    /// its replica.
    ///
    /// # Panics
    ///
    /// When `replica` is not a replica, or when the failover does not complete within 30 s.
    pub fn fail_over_to(&self, replica: &RedisServer) {
        let info: String = replica.cmd(&["INFO", "replication"]);
        let primary_port: u16 = info_value(&info, "master_port")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("node {} is not a replica:\n{info}", replica.port()));
        let slots = self.slots_of(self.node(primary_port));
        let _: () = replica.cmd(&["CLUSTER", "FAILOVER"]);
        self.wait_for_owner(&slots, |port| port == replica.port(), None);
    }

    /// Moves `slot`, with its keys, from the primary serving it to `target` (another primary):
    /// [`start_slot_migration`](Self::start_slot_migration), then
    /// [`finish_slot_migration`](Self::finish_slot_migration).
    ///
    /// Keys keep their TTLs. Clients subscribed to the slot's shard channels on the source
    /// receive `sunsubscribe` (Redis 7).
    ///
    /// # Panics
    ///
    /// When `target` already serves the slot, a command fails, or the nodes do not agree within
    /// 30 s.
    pub fn migrate_slot(&self, slot: u16, target: &RedisServer) {
        let source = self.start_slot_migration(slot, target);
        self.finish_slot_migration(slot, source, target);
    }

    /// Starts moving `slot` from the primary serving it (returned) to `target` (another
    /// primary): `CLUSTER SETSLOT … IMPORTING` on the target and `MIGRATING` on the source, and
    /// no key moved yet. Until [`finish_slot_migration`](Self::finish_slot_migration), the source
    /// answers `ASK` (to the target) for the slot's keys it does not have.
    ///
    /// # Panics
    ///
    /// When `target` already serves the slot, or a command fails.
    pub fn start_slot_migration(&self, slot: u16, target: &RedisServer) -> &RedisServer {
        let source = self.node_for_slot(slot);
        assert_ne!(
            source.port(),
            target.port(),
            "node {} already serves slot {slot}",
            target.port()
        );
        let slot_text = slot.to_string();
        let source_id: String = source.cmd(&["CLUSTER", "MYID"]);
        let target_id: String = target.cmd(&["CLUSTER", "MYID"]);
        let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", &source_id]);
        let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", &target_id]);
        source
    }

    /// Ends the migration of `slot` from `source` to `target` begun by
    /// [`start_slot_migration`](Self::start_slot_migration): `MIGRATE` of every key still on
    /// the source, then `SETSLOT … NODE` on the target, the source and every other primary.
    /// Waits until every running node says `target` serves the slot.
    ///
    /// # Panics
    ///
    /// When a command fails, or the nodes do not agree within 30 s.
    pub fn finish_slot_migration(&self, slot: u16, source: &RedisServer, target: &RedisServer) {
        let slot_text = slot.to_string();
        let target_id: String = target.cmd(&["CLUSTER", "MYID"]);
        let target_port = target.port().to_string();
        loop {
            let keys: Vec<String> =
                source.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot_text, MIGRATE_BATCH]);
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec![
                "MIGRATE",
                "127.0.0.1",
                &target_port,
                "",
                "0",
                "5000",
                "KEYS",
            ];
            migrate.extend(keys.iter().map(String::as_str));
            let _: () = source.cmd(&migrate);
        }
        let assign = ["CLUSTER", "SETSLOT", &slot_text, "NODE", &target_id];
        let _: () = target.cmd(&assign);
        let _: () = source.cmd(&assign);
        for primary in self.primaries() {
            if primary.port() != source.port() && primary.port() != target.port() {
                let _: () = primary.cmd(&assign);
            }
        }
        self.wait_for_owner(&[slot..=slot], |port| port == target.port(), None);
    }

    /// The slots `primary` serves and the ports of its running replicas, one of which will
    /// take them over.
    fn before_failover(&self, primary: &RedisServer) -> (Vec<RangeInclusive<u16>>, Vec<u16>) {
        let replicas: Vec<u16> = self
            .replicas_of(primary)
            .iter()
            .map(|replica| replica.port())
            .collect();
        assert!(
            !replicas.is_empty(),
            "primary {} has no running replica to take over",
            primary.port()
        );
        (self.slots_of(primary), replicas)
    }

    /// The slot ranges `primary` serves, as the first running node that answers sees them.
    fn slots_of(&self, primary: &RedisServer) -> Vec<RangeInclusive<u16>> {
        let slots: Vec<_> = self
            .slot_owners()
            .into_iter()
            .filter(|(_, port)| *port == primary.port())
            .map(|(range, _)| range)
            .collect();
        assert!(!slots.is_empty(), "node {} serves no slot", primary.port());
        slots
    }

    /// Waits until every running node (but `frozen`) reports `cluster_state:ok` and says one
    /// node chosen by `candidate` serves every one of `slots`, and that node reports
    /// `role:master`; returns it.
    fn wait_for_owner(
        &self,
        slots: &[RangeInclusive<u16>],
        candidate: impl Fn(u16) -> bool,
        frozen: Option<u16>,
    ) -> &RedisServer {
        let mut owner = None;
        let answering = || {
            self.running()
                .filter(move |node| Some(node.port()) != frozen)
        };
        self.wait_for("a new owner of the slots", CHANGE_TIMEOUT, || {
            owner = agreed_owner(answering(), slots).filter(|port| candidate(*port));
            owner.is_some_and(|port| {
                self.node(port)
                    .try_cmd::<String>(&["INFO", "replication"])
                    .ok()
                    .and_then(|info| info_value(&info, "role"))
                    .as_deref()
                    == Some("master")
            }) && answering().all(|node| {
                node.try_cmd::<String>(&["CLUSTER", "INFO"])
                    .ok()
                    .and_then(|info| info_value(&info, "cluster_state"))
                    .as_deref()
                    == Some("ok")
            })
        });
        self.node(owner.expect("the wait ended with an owner"))
    }
}

/// The one port that every one of `nodes` says serves all of `slots`, if they agree.
fn agreed_owner<'a>(
    nodes: impl Iterator<Item = &'a RedisServer>,
    slots: &[RangeInclusive<u16>],
) -> Option<u16> {
    let mut agreed = None;
    for node in nodes {
        let owners = view::slot_owners(node)?;
        for slot in slots
            .iter()
            .flat_map(|range| [*range.start(), *range.end()])
        {
            let port = owners
                .iter()
                .find_map(|(range, port)| range.contains(&slot).then_some(*port))?;
            if *agreed.get_or_insert(port) != port {
                return None;
            }
        }
    }
    agreed
}
