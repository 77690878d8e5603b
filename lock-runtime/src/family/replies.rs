//! The typed replies of the scripts the whole family shares: the acquires' (every primitive's
//! acquire script answers as `acquire.lua` does; a refusal of a primitive's own, such as the
//! semaphore's, is carried as it came, for that primitive's reply type to decode), and those of
//! the family's own scripts (`scripts.rs`). Each enum decodes the replies that the script's
//! header lists, so the code that calls a script matches on names. Every call goes through the
//! core's script path (`core/script_path.rs`).

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, Value};

use crate::{
    core::{
        commands::Command,
        reply::{Items, status_reply, unexpected},
    },
    error::{LockError, human_duration},
};

/// The reply of `acquire.lua`: what every acquire script of the family answers alike: the
/// fencing token (an integer) when taken, else a table whose first element says what happened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Acquired {
    /// Taken, with this fencing token.
    Taken { token: u64 },
    /// Held by another owner for `ttl` more (`None`: the key has no TTL); the owner is queued.
    /// `server_us`: the server's clock, in µs, as the script ran (a direct hand-over to this
    /// owner is timed from it).
    Busy {
        ttl: Option<Duration>,
        server_us: u64,
        /// Who holds it, if the script says (every lock's and the semaphore's does, when the
        /// holds recorded it).
        holder: Option<Seen>,
    },
    /// The lock's key holds another type.
    WrongType { found: String },
    /// The owner id was abandoned: this is a late copy of a request whose caller gave up.
    Abandoned,
    /// Refused at once, for a reason of the primitive's own (a status below -3, which its
    /// acquire script's header lists): the flavor's [`refused`](super::flavor::Flavor::refused)
    /// says what it means.
    Refused(Refusal),
}

impl FromRedisValue for Acquired {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        // Taken: the token alone, the cheapest reply for Redis to give (a table costs it the
        // conversion of every element and a search for its special fields).
        if let Value::Int(token) = value {
            return Ok(Self::Taken {
                token: u64::try_from(token)
                    .map_err(|_| ParsingError::from("negative fencing token"))?,
            });
        }
        let mut items = Vec::<Value>::from_redis_value(value)?.into_iter();
        let mut next = || {
            items
                .next()
                .ok_or_else(|| ParsingError::from("short acquire reply"))
        };
        let status = i64::from_redis_value(next()?)?;
        let value = next()?;
        Ok(match status {
            0 => Self::Busy {
                ttl: u64::try_from(i64::from_redis_value(value)?)
                    .ok()
                    .map(Duration::from_millis),
                server_us: u64::from_redis_value(next()?)?,
                holder: match (items.next(), items.next()) {
                    (Some(who), Some(waiters)) => {
                        Seen::decode(who, u64::from_redis_value(waiters)?)?
                    }
                    _ => None,
                },
            },
            -1 => Self::WrongType {
                found: String::from_redis_value(value)?,
            },
            -3 => Self::Abandoned,
            status if status < -3 => Self::Refused(Refusal { status, value }),
            other => return Err(unexpected("acquire", other)),
        })
    }
}

/// An acquire script's refusal of its primitive's own, `{status, value}` as the script answered
/// it, for the primitive's reply type to decode (see the semaphore's `Refused`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// Below -3: the family's own replies are above.
    pub(crate) status: i64,
    pub(crate) value: Value,
}

impl Refusal {
    /// The error of an acquisition of the lock `name` refused for a reason its flavor does not
    /// know: the script and its decoder out of step, which a test would have caught; reported,
    /// never a panic.
    pub(crate) fn unexpected(&self, name: &str) -> LockError {
        let err = unexpected("acquire", self.status);
        LockError::redis(format!("acquiring lock `{name}`"), err.into())
    }
}

/// What a busy acquire saw of the holders: their client names, when each took its hold (ms since
/// the Unix epoch, see [`split_record`]), and how many waited in the queue besides the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The exclusive locks' one holder, or the first few holds of a read-write lock or a
    /// semaphore: client name, and the ms the hold was taken. Never empty.
    holders: Vec<(String, u64)>,
    /// What each holder is ("writer", "reader", "permit holder") and how many holds there were
    /// in all, where the script says (the read-write lock's and the semaphore's).
    holds: Option<(String, u64)>,
    /// The other callers queued: every acquire script queues its caller before counting the
    /// queue, so the caller is not one of them.
    others: u64,
}

impl Seen {
    /// Decodes the `who` of a busy reply: the exclusive locks' `~who` field
    /// (`"<client name> <ms>"`), or `{noun, holds, record...}` (see `holds_seen` in
    /// `scripts/common.lua`). `None` when no hold recorded who took it.
    fn decode(who: Value, waiters: u64) -> Result<Option<Self>, ParsingError> {
        let (records, holds) = match who {
            Value::Array(_) => {
                let mut items = Items::new(who, "acquire")?;
                let holds = (items.next()?, items.next()?);
                (items.rest(Items::next)?, Some(holds))
            }
            record => (vec![String::from_redis_value(record)?], None),
        };
        let holders: Vec<_> = records
            .iter()
            .filter_map(|record| match split_record(record) {
                (Some(name), Some(since_ms)) => Some((name.to_owned(), since_ms)),
                _ => None,
            })
            .collect();
        Ok((!holders.is_empty()).then_some(Self {
            holders,
            holds,
            others: waiters.saturating_sub(1),
        }))
    }

    /// The holders, in words, as seen at server time `server_us`: "held by orders-api for 1.2 s",
    /// "held by orders-api (writer) for 1.2 s", or "held by 5 readers (a for 1.2 s, b for 300
    /// ms, c for 100 ms, 2 more)", then how many others wait: "1 other caller waiting". A holder
    /// named `own_name`, the asking client's name, is marked "(this client's name)": a caller waiting
    /// on a lock its own process holds (a task spawned inside a locked body, a guard kept
    /// across the call) learns it from the message.
    pub(crate) fn describe(&self, server_us: u64, own_name: &str) -> String {
        let held = |since_ms: u64| {
            human_duration(Duration::from_millis(
                (server_us / 1000).saturating_sub(since_ms),
            ))
        };
        let who = |name: &str| {
            if name == own_name {
                format!("{name} (this client's name)")
            } else {
                name.to_owned()
            }
        };
        let (name, since_ms) = &self.holders[0];
        let by = match &self.holds {
            None => format!("{} for {}", who(name), held(*since_ms)),
            Some((noun, 1)) => format!("{} ({noun}) for {}", who(name), held(*since_ms)),
            Some((noun, holds)) => {
                let mut listed: Vec<_> = self
                    .holders
                    .iter()
                    .map(|(name, since_ms)| format!("{} for {}", who(name), held(*since_ms)))
                    .collect();
                let unlisted = holds.saturating_sub(listed.len() as u64);
                if unlisted > 0 {
                    listed.push(format!("{unlisted} more"));
                }
                format!("{holds} {noun}s ({})", listed.join(", "))
            }
        };
        let waiting = match self.others {
            0 => "no other caller waiting".to_owned(),
            1 => "1 other caller waiting".to_owned(),
            others => format!("{others} other callers waiting"),
        };
        format!("held by {by}, {waiting}")
    }
}

/// A hold's record of who took it, `"<client name> <ms since the Unix epoch>"` (see `take` and
/// `who_field` in `scripts/common.lua`), timed by the acquiring client's clock (by Redis's for a
/// direct hand-over): the name and the time. A record that does not end in a time is all
/// name; an empty one is neither.
pub(crate) fn split_record(record: &str) -> (Option<&str>, Option<u64>) {
    match record.rsplit_once(' ') {
        Some((name, since)) => match since.parse() {
            Ok(since_ms) => (Some(name), Some(since_ms)),
            Err(_) => (Some(record), None),
        },
        None => ((!record.is_empty()).then_some(record), None),
    }
}

status_reply! {
    /// The reply of `reenter.lua`.
    pub(crate) enum Reentered from "reenter" {
        Entered = 1,
        /// The scope's owner no longer holds the lock.
        Lost = 0,
        WrongType = -1,
        /// The re-entry's number is spent: it was undone before it landed, or a later re-entry of
        /// the owner landed first. It took nothing, and never will.
        Spent = -2,
    }
}

status_reply! {
    /// The reply of `release.lua`.
    pub(crate) enum Released from "release" {
        /// The last hold: the lock is free and a waiter was woken.
        Freed = 1,
        /// One hold given back; the owner still holds the lock.
        StillHeld = 2,
        /// The owner did not hold the lock.
        NotHeld = 0,
        WrongType = -1,
    }
}

/// The reply of `holders.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holders {
    /// The owner ids of every hold of the lock (none: it is free).
    Owners(Vec<String>),
    WrongType,
}

impl FromRedisValue for Holders {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "holders")?;
        Ok(match items.next::<i64>()? {
            1 => Self::Owners(items.rest(Items::next)?),
            -1 => Self::WrongType,
            other => return Err(unexpected("holders", other)),
        })
    }
}

status_reply! {
    /// The reply of `force_unlock.lua` (and the read-write lock's).
    pub(crate) enum ForceUnlocked from "force_unlock" {
        /// The holds of the owners seen are gone.
        Deleted = 1,
        /// None of the owners seen held it any more: nothing was deleted.
        NotLocked = 0,
        WrongType = -1,
    }
}

status_reply! {
    /// The reply of `leave.lua` and `undo_reenter.lua`.
    pub(crate) enum Undone from "undo" {
        /// The request had taken something: given back.
        GivenBack = 1,
        /// It had taken nothing, and now never will.
        NothingTaken = 0,
    }
}

/// The reply of `exec.lua`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Executed {
    /// Every command ran, in order; each one's reply, as Redis gave it (an error reply where a
    /// command failed as it ran).
    Ran(Vec<Value>),
    /// The owner does not hold the lock: nothing ran.
    NotHeld,
    /// The server runs `version`, not the one the commands were checked against: nothing ran.
    OtherVersion { version: String },
    /// Redis would refuse command `index` (from 0) before running it, saying `error`: nothing
    /// ran.
    Refused { index: usize, error: String },
    /// The exec's number is spent: a later exec of the owner landed first (or the number was
    /// spent for a caller that gave up on it). Nothing ran.
    NumberSpent,
    /// A copy of this very request ran before (its replies went to a connection the client no
    /// longer reads): nothing ran now.
    RanBefore,
}

impl FromRedisValue for Executed {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "exec")?;
        Ok(match items.next::<i64>()? {
            1 => {
                // Matched, not decoded: a `Vec<Value>` would turn an error reply into an error.
                let mut replies = match items.next::<Value>()? {
                    Value::Array(replies) => replies,
                    Value::Nil => Vec::new(),
                    other => return Err(format!("exec replies: {other:?}").into()),
                };
                for (carried, restore) in [
                    (items.next::<Vec<usize>>()?, exact_integer as fn(_) -> _),
                    (items.next::<Vec<usize>>()?, error_reply),
                ] {
                    for position in carried {
                        let reply = position
                            .checked_sub(1)
                            .and_then(|index| replies.get_mut(index));
                        if let Some(reply) = reply {
                            *reply = restore(std::mem::replace(reply, Value::Nil))?;
                        }
                    }
                }
                Self::Ran(replies)
            }
            0 => Self::NotHeld,
            2 => Self::OtherVersion {
                version: items.next()?,
            },
            3 => Self::Refused {
                index: items.next::<usize>()?.saturating_sub(1),
                error: items.next()?,
            },
            4 => Self::NumberSpent,
            5 => Self::RanBefore,
            other => return Err(unexpected("exec", other)),
        })
    }
}

status_reply! {
    /// The reply of `spend_exec.lua`: what became of a lock-checked write whose caller got no
    /// reply, now that its number is spent.
    pub(crate) enum SpentExec from "spend_exec" {
        /// Its commands ran, all of them; a copy of its request runs nothing.
        Ran = 1,
        /// They did not run, and never will: a copy of its request that lands later runs nothing.
        DidNotRun = 0,
        /// The owner no longer holds the lock, so no exec of it runs any more; whether this one ran
        /// before the hold was lost is not known (its record went with the hold).
        NotHeld = 2,
    }
}

/// A counter's integer reply that `exec.lua` carried as the string Redis keeps, as the integer
/// it is. Anything else (an error reply from the read) is left as it is.
fn exact_integer(reply: Value) -> Result<Value, ParsingError> {
    Ok(match reply {
        Value::BulkString(digits) => Value::Int(
            std::str::from_utf8(&digits)
                .ok()
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| ParsingError::from("exec: an exact integer that is not one"))?,
        ),
        other => other,
    })
}

/// An error reply that `exec.lua` carried as its message, as the error reply it is.
fn error_reply(reply: Value) -> Result<Value, ParsingError> {
    let message = String::from_redis_value(reply)?.replace(['\r', '\n'], " ");
    redis::parse_redis_value(format!("-{message}\r\n").as_bytes())
        .map_err(|err| ParsingError::from(format!("exec: an error reply: {err}")))
}

/// The reply of `commands.lua`: the server's version, and what it says of each name asked
/// about, in order (`None` for a name it does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    pub(crate) version: String,
    pub(crate) commands: Vec<Option<Command>>,
}

impl FromRedisValue for Described {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "commands")?;
        Ok(Self {
            version: items.next()?,
            commands: items.next()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reply::text;

    #[test]
    fn exact_integers_are_integers_again() {
        let reply = Value::Array(vec![
            Value::Int(1),
            Value::Array(vec![
                Value::Int(3),
                text("ERR 9223372036854775807 is not"),
                text("9223372036854775807"),
            ]),
            Value::Array(vec![Value::Int(3)]),
            Value::Array(vec![Value::Int(2)]),
        ]);
        let Executed::Ran(replies) = Executed::from_redis_value(reply).expect("decodes") else {
            panic!("ran");
        };
        assert_eq!(replies[0], Value::Int(3));
        assert_eq!(replies[2], Value::Int(i64::MAX));
        let Value::ServerError(err) = &replies[1] else {
            panic!("an error reply: {:?}", replies[1]);
        };
        assert_eq!(err.code(), "ERR");
        let refused = Value::Array(vec![Value::Int(3), Value::Int(2), text("NOPERM no")]);
        assert_eq!(
            Executed::from_redis_value(refused).expect("decodes"),
            Executed::Refused {
                index: 1,
                error: "NOPERM no".to_owned()
            }
        );
    }

    #[test]
    fn exec_numbers_and_holders_decode_into_names() {
        let status = |status| Value::Array(vec![Value::Int(status)]);
        assert_eq!(
            Executed::from_redis_value(status(4)).expect("decodes"),
            Executed::NumberSpent
        );
        assert_eq!(
            Executed::from_redis_value(status(5)).expect("decodes"),
            Executed::RanBefore
        );
        for (reply, spent) in [
            (1, SpentExec::Ran),
            (0, SpentExec::DidNotRun),
            (2, SpentExec::NotHeld),
        ] {
            assert_eq!(SpentExec::from_redis_value(Value::Int(reply)), Ok(spent));
        }
        assert!(SpentExec::from_redis_value(Value::Int(3)).is_err());
        let owners = Value::Array(vec![Value::Int(1), text("c:1"), text("c:2")]);
        assert_eq!(
            Holders::from_redis_value(owners),
            Ok(Holders::Owners(vec!["c:1".to_owned(), "c:2".to_owned()]))
        );
        assert_eq!(
            Holders::from_redis_value(status(1)),
            Ok(Holders::Owners(Vec::new()))
        );
        let wrong = Value::Array(vec![Value::Int(-1), text("string")]);
        assert_eq!(Holders::from_redis_value(wrong), Ok(Holders::WrongType));
    }

    /// A busy reply whose holders are `who`, with 2 waiters, decoded and described at server
    /// time 10 s.
    fn described(who: Value) -> Option<String> {
        let reply = Value::Array(vec![
            Value::Int(0),
            Value::Int(500),
            Value::Int(10_000_000),
            who,
            Value::Int(2),
        ]);
        match Acquired::from_redis_value(reply).expect("decodes") {
            Acquired::Busy {
                holder, server_us, ..
            } => holder.map(|seen| seen.describe(server_us, "this-client")),
            other => panic!("expected busy, got {other:?}"),
        }
    }

    /// `{noun, holds, record...}` as `holds_seen` in `scripts/common.lua` answers.
    fn holds(noun: &str, holds: i64, records: &[&str]) -> Value {
        let mut items = vec![text(noun), Value::Int(holds)];
        items.extend(records.iter().map(|record| text(record)));
        Value::Array(items)
    }

    #[test]
    fn a_busy_reply_names_its_holders() {
        // The queue of 2 counts the caller: 1 other waits.
        assert_eq!(
            described(text("orders api 8800")).as_deref(),
            Some("held by orders api for 1.2 s, 1 other caller waiting")
        );
        assert_eq!(
            described(holds("writer", 1, &["w 9000"])).as_deref(),
            Some("held by w (writer) for 1.0 s, 1 other caller waiting")
        );
        assert_eq!(
            described(holds("reader", 2, &["a 8800", "b 9700"])).as_deref(),
            Some("held by 2 readers (a for 1.2 s, b for 300 ms), 1 other caller waiting")
        );
        // Three named at most; one of them without a record counts with the unnamed.
        assert_eq!(
            described(holds("permit holder", 5, &["a 9000", "", "c 9900"])).as_deref(),
            Some(
                "held by 5 permit holders (a for 1.0 s, c for 100 ms, 3 more), 1 other caller waiting"
            )
        );
        assert_eq!(described(text("")), None);
        assert_eq!(described(holds("reader", 1, &[""])), None);
        assert_eq!(described(holds("reader", 0, &[])), None);
    }

    #[test]
    fn a_holder_of_the_asking_clients_name_is_marked() {
        assert_eq!(
            described(text("this-client 9000")).as_deref(),
            Some("held by this-client (this client's name) for 1.0 s, 1 other caller waiting")
        );
        assert_eq!(
            described(holds("reader", 2, &["a 8800", "this-client 9700"])).as_deref(),
            Some(
                "held by 2 readers (a for 1.2 s, this-client (this client's name) for 300 ms), 1 other caller waiting"
            )
        );
    }
}
