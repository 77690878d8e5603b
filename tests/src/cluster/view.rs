//! One node's view of the cluster, read from `CLUSTER NODES` and `CLUSTER SLOTS`.

use std::ops::RangeInclusive;

use crate::server::RedisServer;

/// One line of `CLUSTER NODES`: a node as another node sees it.
#[derive(Debug)]
pub(super) struct Known {
    pub(super) port: u16,
    flags: String,
    link: String,
}

impl Known {
    /// Parses `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slots>…`.
    pub(super) fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let port = address
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        Some(Self {
            port,
            flags: (*fields.get(2)?).to_owned(),
            link: (*fields.get(7)?).to_owned(),
        })
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f == flag)
    }

    pub(super) fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }

    pub(super) fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }

    /// Flagged failing (`fail` or `fail?`).
    pub(super) fn is_failed(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }

    /// Joined, reachable, and connected on the cluster bus.
    pub(super) fn is_healthy(&self) -> bool {
        !self.is_failed()
            && !self.has_flag("handshake")
            && !self.has_flag("noaddr")
            && self.link == "connected"
    }
}

/// The nodes `node` knows (`CLUSTER NODES`), or `None` if it does not answer.
pub(super) fn nodes_of(node: &RedisServer) -> Option<Vec<Known>> {
    let text = node.try_cmd::<String>(&["CLUSTER", "NODES"]).ok()?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(Known::parse)
        .collect()
}

/// Each slot range and the port of its primary as `node` sees them (`CLUSTER SLOTS`), or
/// `None` if it does not answer.
pub(super) fn slot_owners(node: &RedisServer) -> Option<Vec<(RangeInclusive<u16>, u16)>> {
    let ranges: Vec<redis::Value> = node.try_cmd(&["CLUSTER", "SLOTS"]).ok()?;
    ranges
        .into_iter()
        .map(|range| {
            let redis::Value::Array(parts) = range else {
                return None;
            };
            let number = |value: &redis::Value| match value {
                redis::Value::Int(n) => u16::try_from(*n).ok(),
                _ => None,
            };
            let (start, end) = (number(parts.first()?)?, number(parts.get(1)?)?);
            let redis::Value::Array(primary) = parts.get(2)? else {
                return None;
            };
            Some((start..=end, number(primary.get(1)?)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_parse() {
        let line = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host \
                    slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected";
        let known = Known::parse(line).expect("a node line");
        assert_eq!(known.port, 30004);
        assert!(known.is_replica() && known.is_healthy() && !known.is_myself());
        let failed = "e7d1 127.0.0.1:30001@31001 master,fail - 0 0 1 disconnected 0-5460";
        let known = Known::parse(failed).expect("a node line");
        assert!(known.is_failed() && !known.is_healthy() && !known.is_replica());
    }
}
