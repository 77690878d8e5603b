//! The one path every script call takes: EVALSHA with the NOSCRIPT fallback, resends while the
//! failure is transient, a bound on every attempt, and a reply decoded into a type.
//!
//! Every primitive keeps its Lua files and their reply types next to each other (for the lock:
//! `lock/scripts.rs`); a reply type implements `FromRedisValue`, so a call site matches on names
//! such as `Acquired` or `NotHeld`, never on bare status numbers. Scripts are
//! `static Lazy<redis::Script>`, hashed once per process; `ScriptInvocation::invoke_async` sends
//! `EVALSHA` and falls back to `EVAL` when Redis answers `NOSCRIPT` (after a restart or a
//! `SCRIPT FLUSH`), so nothing has to be loaded up front.
//!
//! # Resends and time limits
//!
//! Only requests that are safe to resend come here: the scripts make them so (owner ids unique to
//! one acquisition, hold numbers recorded in the lock's own hash, request memos answering a
//! resend with the first attempt's reply). An attempt is bounded by the response timeout *including* the
//! time to (re)connect: redis-rs would otherwise wait a whole connect timeout on a handshake sent
//! into a dead network, and an operation must recover within about one response timeout of the
//! network coming back. An attempt that times out retires its connection (see
//! `client/connection.rs`), so the next one starts on a fresh socket.
//!
//! Behind Sentinels a failover shows here as transient errors: refused or reset connections,
//! timeouts, `READONLY` from the demoted primary (redis-rs marks it retriable), and the
//! Sentinels' "no primary" while they elect one. Each also marks the connection stale, so the
//! next attempt finds the primary again first (see `client/sentinel`): a failover delays an
//! operation, within its retry timeout and its own deadline, and does not fail it.
//!
//! On a Redis Cluster a master failover shows the same way: a killed master refuses connections
//! (redis-rs then asks for the slot map and finds the promoted replica), a frozen one lets the
//! attempt time out, which retires the cluster connection so that the next attempt learns the
//! new slot map (see `client/connection.rs`), and `CLUSTERDOWN`, `TRYAGAIN` or `MOVED` while the
//! cluster settles are retried by redis-rs or here. A slot migration shows as `ASK` and
//! `TRYAGAIN`, which redis-rs follows.

use std::{future::Future, time::Duration};

use redis::{FromRedisValue, RetryMethod, ScriptInvocation};
use tokio::{runtime::Handle, time::Instant};

use crate::{
    LockError,
    client::{
        config::Config,
        connection::{Commands, Connection},
    },
    core::{background::in_context, lease::redis_millis},
};

/// The longest pause between two resends.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A decoded reply, and when the request that produced it was sent: a lease set by that request
/// is timed from then.
#[derive(Debug)]
pub(crate) struct Sent<R> {
    pub(crate) reply: R,
    pub(crate) sent: Instant,
    /// Whether the request went out more than once. An earlier copy may then still be queued on
    /// a retired connection and reach Redis later: a request that takes something must be
    /// undone (and marked abandoned) if its result is not kept.
    pub(crate) resent: bool,
}

/// The command connections of a client, and how long to keep resending on them.
pub(crate) struct ScriptPath {
    runtime: &'static Handle,
    commands: Commands,
    /// A connection of its own for acquisitions that `WAIT` for replicas, so that `WAIT` never
    /// holds up the releases and renewals on the shared one.
    replicated: Option<(Commands, ReplicaWait)>,
    response_timeout: Duration,
    retry_timeout: Duration,
}

/// `WAIT replicas timeout` after a script, in the same pipeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaWait {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

impl ScriptPath {
    pub(crate) fn new(
        runtime: &'static Handle,
        commands: Commands,
        replicated: Option<Commands>,
        config: &Config,
    ) -> Self {
        Self {
            runtime,
            commands,
            replicated: replicated.zip(config.replicas).map(|(commands, check)| {
                (
                    commands,
                    ReplicaWait {
                        replicas: check.replicas,
                        timeout: check.timeout,
                    },
                )
            }),
            response_timeout: config.response_timeout,
            retry_timeout: config.retry_timeout,
        }
    }

    /// The shared command connection as it stands now, for callers that send commands of
    /// their own (`LockGuard::connection`). A cheap clone; requests on it are pipelined.
    pub(crate) fn connection(&self) -> crate::client::connection::Connection {
        self.commands.lease().connection
    }

    /// The replica check, if the client asked for one.
    pub(crate) fn replica_wait(&self) -> Option<ReplicaWait> {
        self.replicated.as_ref().map(|(_, wait)| *wait)
    }

    /// Runs `call` and decodes its reply, resending it while it fails for a transient reason,
    /// until the retry timeout after the first failure or until `deadline`, whichever is first.
    pub(crate) async fn eval<R: FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
        deadline: Option<Instant>,
        context: impl Fn() -> String,
    ) -> Result<Sent<R>, LockError> {
        self.run(
            &self.commands,
            context,
            deadline,
            |mut connection| async move { call.invoke_async(&mut connection).await },
        )
        .await
    }

    /// Sends `call` once, bounded by the response timeout: for requests repeated on a timer
    /// anyway, such as the watchdog's renewals.
    pub(crate) async fn eval_once<R: FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
        context: impl Fn() -> String,
    ) -> Result<R, LockError> {
        let once = async {
            let (reply, _) = self
                .attempt(&self.commands, |mut connection| async move {
                    call.invoke_async(&mut connection).await
                })
                .await;
            reply.map_err(|err| LockError::redis(context(), err))
        };
        in_context(self.runtime, once).await
    }

    /// Runs `call` followed by `WAIT`, in one pipeline on the replica-check connection, and
    /// returns the reply with the number of replicas that acknowledged. Without a replica check
    /// configured, the same as [`eval`](Self::eval) with no acknowledgement.
    pub(crate) async fn eval_replicated<R: FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
        deadline: Option<Instant>,
        context: impl Fn() -> String,
    ) -> Result<Sent<(R, Option<usize>)>, LockError> {
        let Some((commands, wait)) = &self.replicated else {
            let Sent {
                reply,
                sent,
                resent,
            } = self.eval(call, deadline, context).await?;
            return Ok(Sent {
                reply: (reply, None),
                sent,
                resent,
            });
        };
        let mut pipeline = redis::pipe();
        pipeline
            .invoke_script(call)
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(redis_millis(wait.timeout));
        let pipeline = &pipeline;
        let Sent {
            reply,
            sent,
            resent,
        } = self
            .run(commands, context, deadline, |mut connection| async move {
                match pipeline.query_async(&mut connection).await {
                    Err(err) if err.kind() == redis::ServerErrorKind::NoScript.into() => {
                        call.load_async(&mut connection).await?;
                        pipeline.query_async(&mut connection).await
                    }
                    reply => reply,
                }
            })
            .await?;
        let (reply, acknowledged): (R, usize) = reply;
        Ok(Sent {
            reply: (reply, Some(acknowledged)),
            sent,
            resent,
        })
    }

    /// Runs one plain command (a read such as `EXISTS`), with the same resends and limits.
    pub(crate) async fn query<R: FromRedisValue>(
        &self,
        command: &redis::Cmd,
        context: impl Fn() -> String,
    ) -> Result<R, LockError> {
        self.query_on(command, None, context).await
    }

    /// [`query`](Self::query) on the primary serving `slot` of a cluster (see
    /// [`Connection::query_on`]); `None`, or one Redis: where any command runs.
    pub(crate) async fn query_on<R: FromRedisValue>(
        &self,
        command: &redis::Cmd,
        slot: Option<u16>,
        context: impl Fn() -> String,
    ) -> Result<R, LockError> {
        let sent = self
            .run(&self.commands, context, None, |mut connection| async move {
                connection.query_on(command, slot).await
            })
            .await?;
        Ok(sent.reply)
    }

    /// Every request of the client goes through here. The whole loop is polled inside the
    /// background runtime's context: what redis-rs spawns (connection drivers, reconnections)
    /// and the timers below then belong to the runtime that outlives every caller.
    async fn run<T, F, Fut>(
        &self,
        commands: &Commands,
        context: impl Fn() -> String,
        deadline: Option<Instant>,
        request: F,
    ) -> Result<Sent<T>, LockError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        in_context(
            self.runtime,
            self.resend(commands, context, deadline, request),
        )
        .await
    }

    async fn resend<T, F, Fut>(
        &self,
        commands: &Commands,
        context: impl Fn() -> String,
        deadline: Option<Instant>,
        mut request: F,
    ) -> Result<Sent<T>, LockError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut give_up_at: Option<Option<Instant>> = None;
        let mut backoff = Duration::from_millis(10);
        let mut resent = false;
        loop {
            let err = match self.attempt(commands, &mut request).await {
                (Ok(reply), sent) => {
                    return Ok(Sent {
                        reply,
                        sent,
                        resent,
                    });
                }
                (Err(err), _) => err,
            };
            let now = Instant::now();
            // `None` inside: no limit (a retry timeout too large to add, and no deadline).
            let give_up_at = *give_up_at.get_or_insert_with(|| {
                let retry_end = now.checked_add(self.retry_timeout);
                match (retry_end, deadline) {
                    (Some(retry_end), Some(deadline)) => Some(retry_end.min(deadline)),
                    (retry_end, deadline) => retry_end.or(deadline),
                }
            });
            let out_of_time = give_up_at.is_some_and(|give_up_at| now + backoff >= give_up_at);
            if !is_transient(&err) || out_of_time {
                return Err(LockError::redis(context(), err));
            }
            tracing::debug!(error = %err, ?backoff, "transient Redis error; resending");
            tokio::time::sleep(backoff).await;
            resent = true;
            backoff = (backoff * 2).min(MAX_BACKOFF).min(self.response_timeout);
        }
    }
}

impl ScriptPath {
    /// One attempt of `request`, bounded by the response timeout (which also bounds finding
    /// the primary again behind Sentinels); a failure is reported to the connection (a timeout
    /// retires it). Returns when the request was sent.
    async fn attempt<T, F, Fut>(
        &self,
        commands: &Commands,
        mut request: F,
    ) -> (redis::RedisResult<T>, Instant)
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let sent = Instant::now();
        // Finding the primary again (behind Sentinels) and the request share one budget.
        let leased = match within(self.response_timeout, commands.ready()).await {
            Ok(leased) => leased,
            Err(err) => return (Err(err), sent),
        };
        let left = self.response_timeout.saturating_sub(sent.elapsed());
        let reply = within(left, request(leased.connection.clone())).await;
        if let Err(err) = &reply {
            commands.report(&leased, err);
        }
        (reply, sent)
    }
}

/// Whether resending the command may succeed: the connection dropped or stalled, or the server is
/// loading or failing over.
pub(crate) fn is_transient(err: &redis::RedisError) -> bool {
    !matches!(err.retry_method(), RetryMethod::NoRetry)
        && err.kind() != redis::ErrorKind::AuthenticationFailed
}

/// `request`, or a timed-out error if it gets no answer within `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| Err(timed_out(limit)))
}

/// The error of a request that got no answer within `after`.
pub(crate) fn timed_out(after: Duration) -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {after:?}"),
    )
    .into()
}

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

/// A reply that matches no variant of the script's reply type: a script and its decoder out of
/// step, which a test would have caught; reported, never a panic.
pub(crate) fn unexpected(script: &str, status: i64) -> redis::ParsingError {
    format!("unexpected status {status} from the {script} script").into()
}
