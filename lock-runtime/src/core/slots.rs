//! The hash slots of a Redis Cluster: which slot a key or channel hashes to, and which primary
//! serves it, as `CLUSTER SLOTS` says.
//!
//! The hub needs both to subscribe to a lock's channel on the primary serving its slot (sharded
//! pub/sub): every key and the channel of a lock share the lock's hash tag (see `keys.rs`), so
//! the channel lives where the lock's scripts run and publish.

use redis::{FromRedisValue, ParsingError, Value};

use crate::core::reply::Items;

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// A node's address, `(host, port)`, as `CLUSTER SLOTS` names it.
pub(crate) type Address = (String, u16);

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the first `{` and the
/// next `}`, when not empty) or of the whole key, modulo 16384, as Redis Cluster computes it.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tag.unwrap_or(key)) % SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0_u16;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

/// One entry of `CLUSTER SLOTS`: a range of slots and the address of the primary serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotRange {
    pub(crate) start: u16,
    pub(crate) end: u16,
    pub(crate) primary: Address,
}

impl FromRedisValue for SlotRange {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "CLUSTER SLOTS")?;
        let start = items.next()?;
        let end = items.next()?;
        let mut primary = Items::new(items.next()?, "CLUSTER SLOTS")?;
        Ok(Self {
            start,
            end,
            primary: (primary.next()?, primary.next()?),
        })
    }
}

/// The primary serving `slot` in `ranges` (a `CLUSTER SLOTS` reply), if any does.
pub(crate) fn owner(ranges: &[SlotRange], slot: u16) -> Option<&Address> {
    ranges
        .iter()
        .find(|range| (range.start..=range.end).contains(&slot))
        .map(|range| &range.primary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // From the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"{lock:a}:unlock"), key_slot(b"{lock:a}"));
    }

    #[test]
    fn the_owner_is_the_range_holding_the_slot() {
        let ranges = [
            SlotRange {
                start: 0,
                end: 99,
                primary: ("a".to_owned(), 1),
            },
            SlotRange {
                start: 100,
                end: 16383,
                primary: ("b".to_owned(), 2),
            },
        ];
        assert_eq!(owner(&ranges, 99), Some(&("a".to_owned(), 1)));
        assert_eq!(owner(&ranges, 100), Some(&("b".to_owned(), 2)));
        assert_eq!(owner(&ranges[..1], 100), None);
    }
}
