//! Redis key names of a resource (a lock, and later every primitive of the family).
//!
//! Every key of one resource (its main key, its fencing counter, its wake-up channel, its request
//! memos, and whatever else a primitive keeps) starts with the same hash tag `{prefix:name}`, so
//! all of them live in one hash slot: each script touches a single slot and runs unchanged on
//! Redis Cluster.

use std::{fmt, io::Write, sync::Arc, time::Duration};

use redis::{RedisWrite, ToRedisArgs};

use crate::error::LockError;

/// How long a resource's fencing state lives once created; then it restarts from the server's
/// clock. Tokens stay strictly increasing across a restart as long as the Redis server's clock
/// does not step back by more than this (see the acquire scripts): NTP corrections are far
/// smaller. The family's scripts keep it as a constant of their own (`FENCE_TTL` in
/// `family/scripts/common.lua`, held equal by a test) rather than an argument of every call.
pub(crate) const FENCE_TTL: Duration = Duration::from_secs(10 * 60);

/// The Redis names derived from one resource name.
///
/// Only the main key is kept; the others are derived when a request needs them, so that a task
/// waiting for a resource holds as little as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// The name as the user gave it, shared with its handle.
    pub(crate) name: Arc<str>,
    /// The main key, `{prefix:name}`: also the hash tag of every other key.
    pub(crate) main: String,
}

impl Keys {
    /// Derives the keys of `name` under `prefix`, or says why the name cannot be used.
    pub(crate) fn new(prefix: &str, name: &Arc<str>) -> Result<Self, LockError> {
        validate_name(name)?;
        Ok(Self {
            name: Arc::clone(name),
            main: format!("{{{prefix}:{name}}}"),
        })
    }

    /// The keys of a primitive that keeps its own under the same name: its main key is
    /// `{prefix:name}:part` (and every other key is named after that), still in the name's slot.
    pub(crate) fn part(self, part: &str) -> Self {
        Self {
            main: self.sub(part).to_string(),
            name: self.name,
        }
    }

    /// A helper key of this resource: `{prefix:name}:suffix`.
    pub(crate) fn sub<'a>(&'a self, suffix: &'a str) -> SubKey<'a> {
        SubKey {
            main: &self.main,
            suffix,
            id: None,
        }
    }

    /// The fencing state: the last token handed out, under a TTL of [`FENCE_TTL`].
    pub(crate) fn fence(&self) -> SubKey<'_> {
        self.sub("fence")
    }

    /// The notes of the reentrant and the fair lock's holds that ended without their release
    /// (a sorted set of their tokens, see `note_lost` in `family/scripts/common.lua`), by which
    /// a resent release learns what its first copy did.
    pub(crate) fn lost(&self) -> SubKey<'_> {
        self.sub("lost")
    }

    /// The channel that announces releases and carries wake-ups.
    pub(crate) fn channel(&self) -> SubKey<'_> {
        self.sub("unlock")
    }

    /// The queue of waiting owner ids, by their first try (the locks' acquire scripts).
    pub(crate) fn queue(&self) -> SubKey<'_> {
        self.sub("queue")
    }

    /// The queued owner ids' liveness deadlines.
    pub(crate) fn alive(&self) -> SubKey<'_> {
        self.sub("alive")
    }

    /// What each queued owner id waits for, where the primitive needs to know (the lease of a
    /// direct hand-over, a read or a write).
    pub(crate) fn wants(&self) -> SubKey<'_> {
        self.sub("wants")
    }

    /// The lease of each hold, for primitives whose holds each have one (the read-write lock).
    pub(crate) fn leases(&self) -> SubKey<'_> {
        leases_of(&self.main)
    }

    /// A semaphore's lone acquisition: a key of its permit id, permits and holder, whose TTL is
    /// its lease (see `semaphore/scripts/sem.lua`).
    pub(crate) fn lone(&self) -> SubKey<'_> {
        self.sub("lone")
    }

    /// The mark of an owner id that takes nothing new (see `abandoned` in
    /// `family/scripts/common.lua`).
    pub(crate) fn abandoned<'a>(&'a self, owner: &'a str) -> SubKey<'a> {
        SubKey {
            main: &self.main,
            suffix: "abandoned",
            id: Some(owner),
        }
    }

    /// The memo key of one request (see the scripts' headers).
    pub(crate) fn memo<'a>(&'a self, request_id: &'a str) -> SubKey<'a> {
        SubKey {
            main: &self.main,
            suffix: "memo",
            id: Some(request_id),
        }
    }

    /// The ids of the requests that ran on this resource lately (a sorted set, see
    /// `core/scripts/requests.lua`), for primitives whose requests count once however late a
    /// copy lands by being recognised there.
    pub(crate) fn requests(&self) -> SubKey<'_> {
        self.sub("requests")
    }

    /// The error of a script that found the main key holding something that is not this
    /// primitive's (another program's key, left untouched): `found` is the Redis type, if the
    /// script said.
    pub(crate) fn wrong_type(&self, found: Option<String>) -> LockError {
        LockError::WrongType {
            name: self.name.to_string(),
            key: self.main.clone(),
            found: found.unwrap_or_else(|| "value of another type".to_owned()),
        }
    }
}

/// The per-hold leases key of the resource whose main key is `main` (see [`Keys::leases`]),
/// for code that keeps only a hold's main key.
pub(crate) fn leases_of(main: &str) -> SubKey<'_> {
    SubKey {
        main,
        suffix: "leases",
        id: None,
    }
}

/// A helper key of a resource, `{prefix:name}:suffix` or `{prefix:name}:suffix:id`, written
/// where it is used: straight into a script call's buffer, or into a `String` (`to_string()`)
/// where one is kept. The calls built for every try and release so format no `String` per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubKey<'a> {
    main: &'a str,
    suffix: &'a str,
    /// A request's or an owner's id, after the suffix.
    id: Option<&'a str>,
}

impl SubKey<'_> {
    /// The key's text, piece by piece: the one place its shape is written, for
    /// [`Display`](fmt::Display) and for writing it into a command.
    fn pieces(&self) -> impl Iterator<Item = &str> {
        let id = self.id.into_iter().flat_map(|id| [":", id]);
        [self.main, ":", self.suffix].into_iter().chain(id)
    }
}

impl fmt::Display for SubKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().try_for_each(|piece| f.write_str(piece))
    }
}

impl ToRedisArgs for SubKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut key = out.writer_for_next_arg();
        // Copied as they are (no formatting machinery: a call writes several keys), into the
        // command's own buffer, where writing does not fail.
        let written = self
            .pieces()
            .try_for_each(|piece| key.write_all(piece.as_bytes()));
        debug_assert!(written.is_ok(), "writing a key into a command's buffer");
    }
}

/// Checks a resource name (or key prefix) for what would break the key scheme.
pub(crate) fn validate_name(name: &str) -> Result<(), LockError> {
    let reason = if name.is_empty() {
        "a lock name must not be empty"
    } else if name.contains(['{', '}']) {
        "a lock name must not contain `{` or `}`: the client wraps it in a Redis Cluster hash tag"
    } else {
        return Ok(());
    };
    Err(LockError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_one_hash_tag() {
        let keys = Keys::new("app", &Arc::from("stock:42")).expect("valid name");
        assert_eq!(keys.main, "{app:stock:42}");
        for key in [
            keys.fence(),
            keys.channel(),
            keys.memo("r1"),
            keys.abandoned("owner"),
            keys.sub("queue"),
        ] {
            assert!(key.to_string().starts_with("{app:stock:42}:"), "{key}");
        }
        assert_eq!(keys.memo("r1").to_string(), "{app:stock:42}:memo:r1");
        assert_eq!(
            keys.abandoned("c:1").to_string(),
            "{app:stock:42}:abandoned:c:1"
        );
    }

    #[test]
    fn a_key_goes_into_a_command_as_it_reads() {
        let keys = Keys::new("app", &Arc::from("stock:42")).expect("valid name");
        let mut command = redis::Cmd::new();
        command.arg(keys.abandoned("c:1")).arg(keys.fence());
        let written: Vec<_> = command.args_iter().collect();
        assert_eq!(
            written,
            [
                redis::Arg::Simple(&b"{app:stock:42}:abandoned:c:1"[..]),
                redis::Arg::Simple(&b"{app:stock:42}:fence"[..]),
            ]
        );
    }

    #[test]
    fn empty_and_braced_names_are_refused() {
        for name in ["", "a{b", "a}b", "{x}"] {
            let err = Keys::new("app", &Arc::from(name)).expect_err(name);
            assert!(matches!(err, LockError::InvalidName { .. }), "{err}");
        }
    }
}
