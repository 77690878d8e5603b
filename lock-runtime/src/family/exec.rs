//! Lock-checked writes to Redis.
//!
//! [`run`] sends a pipeline's commands inside one script (`scripts/exec.lua`) that first checks,
//! on the server, that the hold's owner still holds the lock: a holder whose lease ran out, or
//! whose lock was force-unlocked or taken over, cannot write, even before it learns of the loss.
//!
//! The pipeline runs whole or not at all. Before the first command runs, every command is
//! checked for what would make Redis refuse it without running it, as `EXEC` discards a
//! transaction that queued such a command: here, on the client, against what the server said
//! of its commands (`core/commands.rs`: unknown commands and subcommands, wrong arity, commands
//! Redis does not run in scripts, blocking ones, `SELECT` and the other commands that change
//! the connection, more arguments than a Lua call takes), and in the script, on the server
//! (its version, the ACL user's rights, on Redis Cluster every key's slot). A command that
//! fails as it runs (`WRONGTYPE`) does not stop the others, as in `MULTI`/`EXEC`: Redis has no
//! rollback.
//!
//! The replies are then put together by redis-rs itself ([`Pipeline::query_async`] over a
//! connection that only replays them), so ignored commands, error replies and atomic pipelines
//! give what they give for a pipeline sent directly; integer replies past 2^53, which a Lua
//! number cannot hold, are read again exactly (counters) or refused (see `scripts/exec.lua`).
//!
//! The request is sent once and never resent, but a copy of it may still reach Redis long after
//! the client gave up on it (a request queued on a connection the client retired, delivered
//! minutes later by TCP). So each exec has a number (see `core/ids.rs`), and runs only above
//! every number of its owner seen before. A caller that gets no reply (a timeout, a dropped
//! connection) spends the number before it returns ([`Spend`]): from then on a copy runs
//! nothing, and the spend's reply says whether the exec ran, which the error then states. A
//! future dropped while its request is on the wire spends the number in the background.
//!
//! [`LockedConnection`] is the plain connection of [`LockGuard::connection`](crate::LockGuard::connection):
//! it refuses every command, on the client, once the lease is known lost or nearly spent.

use std::{sync::Arc, time::Duration};

use redis::{
    Arg, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, Value,
    aio::ConnectionLike,
};
use tokio::time::Instant;

use crate::{
    core::{
        backend::Backend,
        commands::{Command, Table},
        ids::UnsettledNumber,
        keys::{Keys, leases_of},
        scope::{self, HoldKind, Holder},
    },
    error::LockError,
    family::{
        replies::{Described, Executed, SpentExec},
        scripts::{COMMANDS, EXEC, SPEND_EXEC},
    },
    transport::{config::Deployment, connection::Connection},
};

/// The most arguments, the command's name included, that one command of a lock-checked write
/// may have: the script calls each command with Lua's `unpack`, which gives at most 8000 values
/// (Lua's `LUAI_MAXCSTACK`) less its own three arguments. A command with more is refused before
/// anything is sent.
pub(crate) const MAX_ARGUMENTS: usize = 7997;

/// Commands that Redis runs inside a script but that would not mean there what they mean in a
/// pipeline sent directly: they change the state of the connection they are sent on (its
/// database, its Cluster read mode), and inside the script they would change the script's alone
/// while the later commands of the pipeline followed.
const CONNECTION_STATE: &[&str] = &["select", "readonly", "readwrite", "asking"];

/// How many times a pipeline is checked again after the script found the server at another
/// version than the one it was checked against (a failover to an upgraded node).
const VERSION_TRIES: usize = 3;

/// How many numbers an exec tries, each found spent by a later exec of its owner that landed
/// first (two execs of one hold in flight, sent in the other order): nothing ran, and a new
/// number is above the one that landed.
const SPENT_TRIES: usize = 2;

/// Runs `pipeline` if `holder` still holds its lock, whole or not at all, and decodes its
/// replies as [`Pipeline::query_async`] would.
pub(crate) async fn run<T: FromRedisValue>(
    holder: &Holder,
    name: &str,
    pipeline: &Pipeline,
) -> Result<T, LockError> {
    let leases = match holder.kind {
        HoldKind::Reentrant | HoldKind::Fair => false,
        HoldKind::Write => true,
        HoldKind::Read | HoldKind::Permit => {
            return Err(LockError::misuse(format!(
                "lock-checked writes need an exclusive hold of `{name}`: a read hold does not \
                 keep other readers out; take the write lock to write"
            )));
        }
    };
    let commands = pipeline
        .cmd_iter()
        .map(|command| arguments(command, name))
        .collect::<Result<Vec<_>, _>>()?;
    let backend = &holder.backend;
    let cluster = matches!(backend.config.deployment, Deployment::Cluster(_));
    let (mut other_versions, mut spent) = (0, 0);
    loop {
        let table = described(holder, name, &commands).await?;
        let number = holder.execs.open(&backend.ids);
        let mut call = EXEC.prepare_invoke(backend.scripts.calls());
        call.key(&holder.keys.main)
            .key(leases_of(&holder.keys.main))
            .arg(holder.owner.as_ref())
            .arg(if leases { "1" } else { "0" })
            .arg(table.version().unwrap_or_default())
            .arg(if cluster { "1" } else { "0" })
            .arg(number.number())
            .arg(number.floor())
            .arg(commands.len());
        for args in &commands {
            let command = checked(&table, args, name)?;
            call.arg(args.len()).arg(if cluster && command.has_keys() {
                "1"
            } else {
                "0"
            });
            for arg in args {
                call.arg(*arg);
            }
        }
        let context = || format!("running lock-checked commands under lock `{name}`");
        // Sent once: a resend could only find its number taken. Without a reply, the number is
        // spent, and Redis says whether the commands ran; dropped on the way, in the background.
        let unanswered = Unanswered(Some(Spend::new(holder, name, number)));
        let sent = backend
            .in_context(backend.scripts.eval_once::<Executed>(&call, context))
            .await;
        let spend = unanswered.answered();
        let reply = match (sent, spend) {
            (Ok(reply), _) => reply,
            (Err(err), Some(spend)) => return Err(spend.settle(err).await),
            (Err(err), None) => return Err(err),
        };
        match reply {
            Executed::Ran(replies) => return replay(pipeline, replies, name).await,
            Executed::NotHeld => {
                return Err(LockError::LeaseLost {
                    name: name.to_owned(),
                });
            }
            Executed::Refused { index, error } => {
                let args = commands.get(index).map(Vec::as_slice).unwrap_or_default();
                return Err(refused_by_redis(name, args, &error));
            }
            Executed::RanBefore => {
                return Err(LockError::redis(
                    format!(
                        "running lock-checked commands under lock `{name}`: they ran, all of them, \
                         from an earlier copy of the request, whose replies are lost"
                    ),
                    RedisError::from((ErrorKind::Client, "replies lost")),
                ));
            }
            Executed::OtherVersion { version } => {
                backend.commands.expect(&version);
                other_versions += 1;
                if other_versions == VERSION_TRIES {
                    return Err(LockError::redis(
                        format!(
                            "running lock-checked commands under lock `{name}`: they were \
                             checked against a Redis version, then found another \
                             {VERSION_TRIES} times in a row; nothing ran"
                        ),
                        RedisError::from((ErrorKind::Client, "Redis version kept changing")),
                    ));
                }
            }
            Executed::NumberSpent => {
                spent += 1;
                if spent == SPENT_TRIES {
                    return Err(LockError::redis(
                        format!(
                            "running lock-checked commands under lock `{name}`: other execs of \
                             this hold landed first {SPENT_TRIES} times in a row; nothing ran"
                        ),
                        RedisError::from((ErrorKind::Client, "exec number spent")),
                    ));
                }
            }
        }
    }
}

/// The number of an exec whose request is on the wire, and how to spend it if no reply comes
/// (see `scripts/spend_exec.lua`). The number stays unsettled until the spend is done, so the
/// script keeps the record of whether it ran until then.
struct Spend {
    backend: Arc<Backend>,
    keys: Arc<Keys>,
    owner: Arc<str>,
    name: String,
    number: UnsettledNumber,
}

impl Spend {
    fn new(holder: &Holder, name: &str, number: UnsettledNumber) -> Self {
        Self {
            backend: Arc::clone(&holder.backend),
            keys: Arc::clone(&holder.keys),
            owner: Arc::clone(&holder.owner),
            name: name.to_owned(),
            number,
        }
    }

    /// Spends the number (resent while the failure is transient, as every script that is safe
    /// to resend) and says what became of the exec.
    async fn run(self) -> Result<SpentExec, LockError> {
        let mut call = SPEND_EXEC.prepare_invoke(self.backend.scripts.calls());
        call.key(&self.keys.main)
            .arg(self.owner.as_ref())
            .arg(self.number.number())
            .arg(self.number.floor());
        let context = || {
            format!(
                "asking Redis whether lock-checked commands under lock `{}` ran",
                self.name
            )
        };
        let spent = self.backend.scripts.eval(&call, None, context).await?;
        Ok(spent.reply)
    }

    /// The error of an exec that got no reply (`failed`), once its number is spent: it says
    /// whether the commands ran. The spend runs on the background runtime, so it finishes even
    /// if the caller stops waiting for it.
    async fn settle(self, failed: LockError) -> LockError {
        let name = self.name.clone();
        let spent = self.backend.runtime.handle().spawn(self.run()).await;
        let outcome = match spent {
            Ok(Ok(SpentExec::Ran)) => {
                "they ran, all of them, but their replies are lost (Redis said so once asked; a \
                 copy of the request runs nothing)"
                    .to_owned()
            }
            Ok(Ok(SpentExec::DidNotRun)) => {
                "they did not run, and never will (Redis said so once asked; a copy of the \
                 request that reaches it later runs nothing)"
                    .to_owned()
            }
            Ok(Ok(SpentExec::NotHeld)) => {
                "the lock is no longer this owner's, so they never run now; whether they ran \
                 before it was lost is unknown"
                    .to_owned()
            }
            Ok(Err(asking)) => format!(
                "whether they ran is unknown: asking Redis failed too ({asking}); a copy of \
                 the request that reaches Redis later still runs if this owner holds the lock \
                 then (releasing it rules that out)"
            ),
            Err(stopped) => format!(
                "whether they ran is unknown: asking Redis was cut short ({stopped}); a copy \
                 of the request that reaches Redis later still runs if this owner holds the \
                 lock then (releasing it rules that out)"
            ),
        };
        match failed {
            LockError::Redis { source, .. } => LockError::redis(
                format!("running lock-checked commands under lock `{name}`: no reply; {outcome}"),
                source,
            ),
            // Sending a script fails with a Redis error only.
            other => other,
        }
    }
}

/// The [`Spend`] of an exec whose request is on the wire: if the caller's future is dropped
/// before the reply, the number is spent in the background.
struct Unanswered(Option<Spend>);

impl Unanswered {
    /// The reply came, or the request failed: the caller takes the spend over.
    fn answered(mut self) -> Option<Spend> {
        self.0.take()
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(spend) = self.0.take() {
            let backend = Arc::clone(&spend.backend);
            let name = spend.name.clone();
            backend.spawn(async move {
                match spend.run().await {
                    Ok(outcome) => tracing::debug!(
                        lock = %name,
                        ?outcome,
                        "spent the number of a lock-checked write whose caller gave up"
                    ),
                    Err(err) => tracing::warn!(
                        lock = %name,
                        error = %err,
                        "could not spend the number of a lock-checked write whose caller gave up: \
                         a copy of its request that reaches Redis later runs if the owner still \
                         holds the lock then"
                    ),
                }
            });
        }
    }
}

/// Runs `pipeline`'s commands in Redis only if the lock held around the current code (the
/// innermost [`LockGuard::scope`](crate::LockGuard::scope), such as the body of a
/// `#[distribute_lock]` function) is still held: [`LockGuard::exec`](crate::LockGuard::exec) for
/// code that cannot reach the guard.
///
/// # Errors
///
/// [`LockError::Config`] ([`Mistake::Misuse`](crate::Mistake::Misuse)) if no lock is held around the current code, and the errors of
/// [`LockGuard::exec`](crate::LockGuard::exec).
///
/// # Cancel safety
///
/// As [`LockGuard::exec`](crate::LockGuard::exec): never resent, and never run by a late copy
/// once its number is spent.
///
/// # Examples
///
/// ```no_run
/// use lock_runtime::{LockError, distribute_lock};
///
/// #[distribute_lock(key = "item:{item}")]
/// async fn bid(item: u64, bidder: &str, amount: u64) -> Result<(), LockError> {
///     let mut pipe = lock_runtime::redis::pipe();
///     pipe.hset(format!("{{lock:item:{item}}}:bids"), bidder, amount).ignore();
///     lock_runtime::exec::<()>(&pipe).await
/// }
/// ```
pub async fn exec<T: FromRedisValue>(pipeline: &Pipeline) -> Result<T, LockError> {
    let holder = scope::innermost_holder().ok_or_else(|| {
        LockError::misuse(
            "lock_runtime::exec needs a lock held around the call (a `#[distribute_lock]` body, \
             or a `LockGuard::scope`); none is",
        )
    })?;
    let name = name_of_key(&holder.backend.config.key_prefix, &holder.keys.main);
    run(&holder, name, pipeline).await
}

/// The lock's name in its main key `key` under `prefix` (`{prefix:name}`, or `{prefix:name}:rw`
/// for a read-write lock), so errors name the lock as its caller gave it; the key itself if it
/// is not one (it always is: the key was made from the name).
fn name_of_key<'k>(prefix: &str, key: &'k str) -> &'k str {
    key.strip_prefix('{')
        .and_then(|key| key.strip_prefix(prefix))
        .and_then(|key| key.strip_prefix(':'))
        .and_then(|key| key.split_once('}'))
        .map_or(key, |(name, _)| name)
}

/// The arguments of `command`, name first, or why it cannot run in the lock-checked script.
fn arguments<'a>(command: &'a Cmd, name: &str) -> Result<Vec<&'a [u8]>, LockError> {
    let mut args = Vec::new();
    for arg in command.args_iter() {
        match arg {
            Arg::Simple(bytes) => args.push(bytes),
            _ => {
                return Err(LockError::invalid_argument(format!(
                    "a cursor command cannot run under lock `{name}` as a lock-checked write; \
                     nothing ran"
                )));
            }
        }
    }
    if args.is_empty() {
        return Err(LockError::invalid_argument(format!(
            "a command without a name cannot run under lock `{name}` as a lock-checked write; \
             nothing ran"
        )));
    }
    Ok(args)
}

/// A command's name (or subcommand's), in lower case as `COMMAND INFO` gives names.
fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// What the server says of every command of `commands`, reading what the client does not know
/// yet from the node that serves the lock's slot (where the commands will run).
async fn described(
    holder: &Holder,
    name: &str,
    commands: &[Vec<&[u8]>],
) -> Result<Arc<Table>, LockError> {
    let backend = &holder.backend;
    let names: Vec<String> = commands
        .iter()
        .filter_map(|args| args.first())
        .map(|arg| lower(arg))
        .collect();
    // A read that finds another version starts the table again: read what it dropped.
    for _ in 0..VERSION_TRIES {
        let table = backend.commands.snapshot();
        let missing = table.missing(names.iter().map(String::as_str));
        if missing.is_empty() && (table.version().is_some() || names.is_empty()) {
            return Ok(table);
        }
        let mut call = COMMANDS.prepare_invoke(backend.scripts.calls());
        call.key(&holder.keys.main).arg(&missing);
        let context = || format!("reading Redis's commands for lock-checked writes under `{name}`");
        let described: Described = backend.scripts.eval(&call, None, context).await?.reply;
        backend
            .commands
            .learn(&described.version, &missing, described.commands);
    }
    Err(LockError::redis(
        format!(
            "reading Redis's commands for lock-checked writes under lock `{name}`: Redis's \
             version changed at every read; nothing ran"
        ),
        RedisError::from((ErrorKind::Client, "Redis version kept changing")),
    ))
}

/// The description of the command `args` call (its subcommand's, for a container such as
/// `OBJECT`), or why Redis would not run it inside the lock-checked script as it would run it
/// in a pipeline sent directly.
fn checked<'t>(table: &'t Table, args: &[&[u8]], name: &str) -> Result<&'t Command, LockError> {
    let command_name = args.first().map(|arg| lower(arg)).unwrap_or_default();
    let refuse = |why: String| {
        Err(LockError::invalid_argument(format!(
            "`{}` cannot run as a lock-checked write under lock `{name}`: {why}; the pipeline \
             was refused whole, nothing ran",
            command_name.to_ascii_uppercase()
        )))
    };
    if args.len() > MAX_ARGUMENTS {
        return refuse(format!(
            "it has {} arguments, and a command run from a Lua script takes at most \
             {MAX_ARGUMENTS} (`LockGuard::EXEC_MAX_ARGUMENTS`); split it into several commands \
             of the same pipeline, which still run all or none",
            args.len()
        ));
    }
    let Some(mut command) = table.command(&command_name) else {
        return refuse("Redis does not know this command".to_owned());
    };
    if let (true, Some(sub)) = (command.has_subcommands(), args.get(1)) {
        let Some(subcommand) = command.subcommand(&lower(sub)) else {
            return refuse(format!(
                "Redis does not know its subcommand `{}`",
                String::from_utf8_lossy(sub)
            ));
        };
        command = subcommand;
    }
    if !command.takes(args.len()) {
        return refuse(format!(
            "wrong number of arguments ({} with the name; Redis's arity for it is {})",
            args.len(),
            command.arity()
        ));
    }
    if command.has_flag("noscript") {
        return refuse(
            "Redis does not run it inside a script; send it on a connection of its own \
             (`LockGuard::connection` checks the lease on the client)"
                .to_owned(),
        );
    }
    let blocks = match command_name.as_str() {
        // The stream reads block only when asked to.
        "xread" | "xreadgroup" => args.iter().any(|arg| arg.eq_ignore_ascii_case(b"BLOCK")),
        _ => command.has_flag("blocking"),
    };
    if blocks {
        return refuse(
            "it blocks, and inside a script it would not wait; send it on a connection of its \
             own (`LockGuard::connection` checks the lease on the client)"
                .to_owned(),
        );
    }
    if CONNECTION_STATE.contains(&command_name.as_str()) {
        return refuse(
            "it changes the connection it is sent on, and inside the script it would change \
             the script's alone while the later commands followed"
                .to_owned(),
        );
    }
    Ok(command)
}

/// The error of a command that the script found Redis would refuse before running it: the ACL
/// user may not run it, or (on Redis Cluster) one of its keys is outside the lock's slot.
fn refused_by_redis(name: &str, args: &[&[u8]], error: &str) -> LockError {
    let command = args
        .first()
        .map(|arg| lower(arg).to_ascii_uppercase())
        .unwrap_or_default();
    let crossed = ["same slot", "non local key", "CROSSSLOT"]
        .iter()
        .any(|sign| error.contains(sign));
    if crossed {
        return LockError::invalid_argument(format!(
            "a lock-checked write under lock `{name}` would touch a key outside the lock's hash \
             slot (`{command}`): on Redis Cluster name the keys with the lock's hash tag \
             (`LockGuard::hash_tag`, such as `{{lock:{name}}}:data`); the pipeline was refused \
             whole, nothing ran; Redis said: {error}"
        ));
    }
    LockError::invalid_argument(format!(
        "`{command}` cannot run as a lock-checked write under lock `{name}`: Redis would refuse \
         it; the pipeline was refused whole, nothing ran; Redis said: {error}"
    ))
}

/// The replies of a pipeline that ran, decoded as redis-rs decodes them for a pipeline sent
/// directly.
async fn replay<T: FromRedisValue>(
    pipeline: &Pipeline,
    replies: Vec<Value>,
    name: &str,
) -> Result<T, LockError> {
    let mut replayed = Replayed(Some(replies));
    pipeline.query_async(&mut replayed).await.map_err(|err| {
        LockError::redis(
            format!(
                "running lock-checked commands under lock `{name}`: every command ran (one that \
                 fails as it runs does not stop or undo the others, as in MULTI/EXEC)"
            ),
            err,
        )
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
