//! Decoding a script's reply into its type: the helpers every reply enum uses (see each
//! primitive's `scripts.rs` and `replies.rs`).

use std::time::Duration;

use redis::FromRedisValue;

/// The items of a script's array reply, read one after the other into their types: for the
/// decoders of replies with many parts (the `info` scripts').
pub(crate) struct Items {
    items: std::vec::IntoIter<redis::Value>,
    script: &'static str,
}

impl Items {
    /// The items of `value`, the reply of `script` (named in errors).
    pub(crate) fn new(
        value: redis::Value,
        script: &'static str,
    ) -> Result<Self, redis::ParsingError> {
        Ok(Self {
            items: Vec::<redis::Value>::from_redis_value(value)?.into_iter(),
            script,
        })
    }

    /// The next item, as a `T`.
    pub(crate) fn next<T: FromRedisValue>(&mut self) -> Result<T, redis::ParsingError> {
        let item = self
            .items
            .next()
            .ok_or_else(|| redis::ParsingError::from(format!("short {} reply", self.script)))?;
        T::from_redis_value(item)
    }

    /// Whether every item was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    /// The items left, read by `read` one record at a time (a record may take several items)
    /// until none is left: for the lists that end a reply (holds, owner ids).
    pub(crate) fn rest<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, redis::ParsingError>,
    ) -> Result<Vec<T>, redis::ParsingError> {
        let mut records = Vec::new();
        while !self.is_empty() {
            records.push(read(self)?);
        }
        Ok(records)
    }

    /// The next item, a number of milliseconds, as a duration; `None` for a negative one (a
    /// key without TTL, or none at all).
    pub(crate) fn next_millis(&mut self) -> Result<Option<Duration>, redis::ParsingError> {
        Ok(u64::try_from(self.next::<i64>()?)
            .ok()
            .map(Duration::from_millis))
    }
}

/// A bulk string reply holding `text`: for the tests of reply decoders.
#[cfg(test)]
pub(crate) fn text(text: &str) -> redis::Value {
    redis::Value::BulkString(text.as_bytes().to_vec())
}

/// Declares the reply type of a script that answers one status number: the enum, each variant
/// with the number the script's header gives it, and its decoding (a number the enum does not
/// know is an error naming `script`, never a panic).
///
/// ```text
/// status_reply! {
///     /// The reply of `reenter.lua`.
///     pub(crate) enum Reentered from "reenter" {
///         Entered = 1,
///         /// The scope's owner no longer holds the lock.
///         Lost = 0,
///     }
/// }
/// ```
macro_rules! status_reply {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident from $script:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $status:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl ::redis::FromRedisValue for $name {
            fn from_redis_value(value: ::redis::Value) -> Result<Self, ::redis::ParsingError> {
                Ok(match <i64 as ::redis::FromRedisValue>::from_redis_value(value)? {
                    $($status => Self::$variant,)*
                    other => return Err($crate::core::reply::unexpected($script, other)),
                })
            }
        }
    };
}
pub(crate) use status_reply;

/// A reply that matches no variant of the script's reply type: a script and its decoder out of
/// step, which a test would have caught; reported, never a panic.
pub(crate) fn unexpected(script: &str, status: i64) -> redis::ParsingError {
    format!("unexpected status {status} from the {script} script").into()
}
