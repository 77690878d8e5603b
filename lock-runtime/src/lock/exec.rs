//! Lock-checked writes to Redis.
//!
//! [`run`] sends a pipeline's commands inside one script (`scripts/exec.lua`) that first checks,
//! on the server, that the hold's owner still holds the lock: a holder whose lease ran out, or
//! whose lock was force-unlocked or taken over, cannot write, even before it learns of the loss.
//! The replies are then put together by redis-rs itself ([`Pipeline::query_async`] over a
//! connection that only replays them), so ignored commands, error replies and atomic pipelines
//! mean what they mean for a pipeline sent directly.
//!
//! [`LockedConnection`] is the plain connection of [`LockGuard::connection`](crate::LockGuard::connection):
//! it refuses every command, on the client, once the lease is known lost or nearly spent.

use std::time::Duration;

use redis::{
    Arg, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, Value,
    aio::ConnectionLike,
};
use tokio::time::Instant;

use crate::{
    LockError,
    client::connection::Connection,
    core::{
        keys::leases_of,
        scope::{HoldKind, Holder},
    },
    lock::scripts::EXEC,
};

/// Commands that cannot run inside a script, or would not mean the same there: Redis refuses
/// some (`SUBSCRIBE`, `MULTI`, nested scripts), and runs blocking ones without blocking.
const NOT_IN_A_SCRIPT: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "EVAL",
    "EVALSHA",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL",
    "FCALL_RO",
    "MONITOR",
];

/// Runs `pipeline` if `holder` still holds its lock, and decodes its replies as
/// [`Pipeline::query_async`] would.
pub(crate) async fn run<T: FromRedisValue>(
    holder: &Holder,
    name: &str,
    pipeline: &Pipeline,
) -> Result<T, LockError> {
    let leases = match holder.kind {
        HoldKind::Exclusive | HoldKind::Fair => false,
        HoldKind::Write => true,
        HoldKind::Read | HoldKind::Permit => {
            return Err(LockError::config(format!(
                "lock-checked writes need an exclusive hold of `{name}`: a read hold does not \
                 keep other readers out; take the write lock to write"
            )));
        }
    };
    let mut call = EXEC.prepare_invoke();
    call.key(&holder.key)
        .key(leases_of(&holder.key))
        .arg(holder.owner.as_ref())
        .arg(if leases { "1" } else { "0" })
        .arg(pipeline.len());
    for command in pipeline.cmd_iter() {
        let args = arguments(command, name)?;
        call.arg(args.len());
        for arg in args {
            call.arg(arg);
        }
    }
    let backend = &holder.backend;
    let context = || format!("running lock-checked commands under lock `{name}`");
    // Sent once: a resend could run the writes twice. A timeout leaves it unknown whether they
    // ran, and says so.
    let reply = backend
        .in_context(backend.scripts.eval_once::<Value>(&call, context))
        .await
        .map_err(|err| {
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            cause
                .and_then(|cause| outside_slot(name, &cause))
                .unwrap_or(err)
        })?;
    let replies = match checked(reply) {
        Some(replies) => replies,
        None => {
            return Err(LockError::LeaseLost {
                name: name.to_owned(),
            });
        }
    };
    let mut replayed = Replayed(Some(replies));
    pipeline.query_async(&mut replayed).await.map_err(|err| {
        outside_slot(name, &err.to_string()).unwrap_or_else(|| {
            LockError::redis(
                format!("running lock-checked commands under lock `{name}`"),
                err,
            )
        })
    })
}

/// Runs `pipeline`'s commands in Redis only if the lock held around the current code (the
/// innermost [`LockGuard::scope`](crate::LockGuard::scope), such as the body of a
/// `#[distribute_lock]` function) is still held: [`LockGuard::exec`](crate::LockGuard::exec) for
/// code that cannot reach the guard.
///
/// # Errors
///
/// [`LockError::Config`] if no lock is held around the current code, and the errors of
/// [`LockGuard::exec`](crate::LockGuard::exec).
///
/// # Cancel safety
///
/// As [`LockGuard::exec`](crate::LockGuard::exec): never resent, not idempotent.
///
/// # Examples
///
/// ```no_run
/// use lock_runtime::{LockError, distribute_lock};
///
/// #[distribute_lock(key = "item:{item}")]
/// async fn bid(item: u64, bidder: &str, amount: u64) -> Result<(), LockError> {
///     let mut pipe = redis::pipe();
///     pipe.hset(format!("{{lock:item:{item}}}:bids"), bidder, amount).ignore();
///     lock_runtime::exec::<()>(&pipe).await
/// }
/// ```
pub async fn exec<T: FromRedisValue>(pipeline: &Pipeline) -> Result<T, LockError> {
    let holder = crate::core::scope::innermost_holder().ok_or_else(|| {
        LockError::config(
            "lock_runtime::exec needs a lock held around the call (a `#[distribute_lock]` body, \
             or a `LockGuard::scope`); none is",
        )
    })?;
    let name = holder.key.clone();
    run(&holder, &name, pipeline).await
}

/// The arguments of `command`, name first, or why it cannot run in the lock-checked script.
fn arguments<'a>(command: &'a Cmd, name: &str) -> Result<Vec<&'a [u8]>, LockError> {
    let mut args = Vec::new();
    for arg in command.args_iter() {
        match arg {
            Arg::Simple(bytes) => args.push(bytes),
            _ => {
                return Err(LockError::config(format!(
                    "a cursor command cannot run under lock `{name}` as a lock-checked write"
                )));
            }
        }
    }
    let command_name = args
        .first()
        .map(|bytes| String::from_utf8_lossy(bytes).to_ascii_uppercase())
        .unwrap_or_default();
    let blocking_read = matches!(command_name.as_str(), "XREAD" | "XREADGROUP")
        && args.iter().any(|arg| arg.eq_ignore_ascii_case(b"BLOCK"));
    if blocking_read || NOT_IN_A_SCRIPT.contains(&command_name.as_str()) {
        return Err(LockError::config(format!(
            "`{command_name}` cannot run as a lock-checked write under lock `{name}`: it blocks, \
             or Redis does not run it inside a script; send it on a connection of its own \
             (`LockGuard::connection` checks the lease on the client)"
        )));
    }
    Ok(args)
}

/// The replies of the commands, or `None` if the owner no longer held the lock.
fn checked(reply: Value) -> Option<Vec<Value>> {
    let Value::Array(mut parts) = reply else {
        return None;
    };
    if parts.len() != 2 || !matches!(parts[0], Value::Int(1)) {
        return None;
    }
    match parts.pop() {
        Some(Value::Array(replies)) => Some(replies),
        // An empty pipeline: Lua's empty table comes back as an empty array.
        _ => Some(Vec::new()),
    }
}

/// The error of a command that touched a key outside the lock's hash slot, if Redis's message
/// `text` says so (on Redis Cluster the script, declared with a shebang, may touch its own slot
/// only), saying which tag to use.
fn outside_slot(name: &str, text: &str) -> Option<LockError> {
    let crossed = ["same slot", "non local key", "CROSSSLOT"]
        .iter()
        .any(|sign| text.contains(sign));
    crossed.then(|| {
        LockError::config(format!(
            "a lock-checked write under lock `{name}` touched a key outside the lock's hash \
             slot: on Redis Cluster name the keys with the lock's hash tag \
             (`LockGuard::hash_tag`, such as `{{lock:{name}}}:data`); Redis said: {text}"
        ))
    })
}

/// A connection that answers a pipeline with replies already received: lets redis-rs put them
/// together exactly as it does for a pipeline it sent.
struct Replayed(Option<Vec<Value>>);

impl ConnectionLike for Replayed {
    fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async { Err(replayed_twice()) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let replies = self.0.take();
        Box::pin(async move {
            let replies = replies.ok_or_else(replayed_twice)?;
            // An atomic pipeline answers with `EXEC`'s one array; the script ran it atomically.
            Ok(if pipeline.is_transaction() {
                vec![Value::Array(replies)]
            } else {
                replies
            })
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

fn replayed_twice() -> RedisError {
    RedisError::from((ErrorKind::Client, "lock-checked replies were already used"))
}

/// A connection for ordinary redis-rs code run under a lock, made by
/// [`LockGuard::connection`](crate::LockGuard::connection): it sends every command once, on the
/// client's shared connection as it is when the command goes out (behind Sentinels, to the
/// primary as it is then: it follows failovers), and refuses it, on the client, once the lease
/// is known lost or has less left than its safety margin.
///
/// The check is the client's: a command sent just inside the margin may still reach Redis after
/// the lease ended (a stalled network, a paused process). For data kept in Redis, prefer
/// [`LockGuard::exec`](crate::LockGuard::exec), which Redis checks in the same step as the
/// write; for other stores, the [fencing token](crate::LockGuard::fencing_token).
#[derive(Clone)]
pub struct LockedConnection {
    holder: Holder,
    name: std::sync::Arc<str>,
    margin: Duration,
}

impl std::fmt::Debug for LockedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedConnection")
            .field("lock", &self.name)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl LockedConnection {
    pub(crate) fn new(holder: &Holder, name: &std::sync::Arc<str>, margin: Duration) -> Self {
        Self {
            holder: holder.clone(),
            name: std::sync::Arc::clone(name),
            margin,
        }
    }

    /// Refuses if the lease is known lost or has less than the margin left.
    fn check(&self) -> Result<(), RedisError> {
        let lease = &self.holder.lease;
        let left = lease.deadline().saturating_duration_since(Instant::now());
        if lease.is_lost() || left < self.margin {
            return Err(RedisError::from((
                ErrorKind::Client,
                "refused: the lease of the lock is lost or nearly spent",
                format!(
                    "lock `{}`: {left:?} of the lease left, the safety margin is {:?}",
                    self.name, self.margin
                ),
            )));
        }
        Ok(())
    }
}

impl ConnectionLike for LockedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let checked = self.check();
        Box::pin(async move {
            checked?;
            let scripts = &self.holder.backend.scripts;
            // An error reply as an error, so that a refusal (`READONLY` from a demoted primary,
            // `MOVED`) is seen for what it is: sent again where it belongs.
            let sent = |mut connection: Connection| async move {
                connection.req_packed_command(cmd).await?.extract_error()
            };
            scripts.send_once(sent).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let checked = self.check();
        Box::pin(async move {
            checked?;
            let scripts = &self.holder.backend.scripts;
            scripts
                .send_once(|mut connection| async move {
                    connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                })
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.holder.backend.scripts.db()
    }
}
