//! The one path every script call takes: `FCALL` (or `EVALSHA` where the server has no Redis
//! Functions) with the script loaded when the server lacks it, resends while the failure is
//! transient, a bound on every attempt, and a reply decoded into a type.
//!
//! Every primitive keeps its Lua files and their reply types next to each other (its
//! `scripts.rs`, declared with `core::lua::lua_scripts!`; the family's shared replies in
//! `family/replies.rs`); a reply type implements `FromRedisValue`, so a call site matches on names
//! such as `Acquired` or `NotHeld`, never on bare status numbers. Scripts are
//! `static Lazy<LuaScript>`, hashed once per process; [`Calls::invoke`] sends `FCALL` and loads
//! the script's library when Redis answers that it has no such function (a fresh server, a
//! restart), or `EVALSHA` and `SCRIPT LOAD` after `NOSCRIPT` on a server without Functions, so
//! nothing has to be loaded up front (see `core/lua.rs`).
//!
//! # Resends and time limits
//!
//! Requests that are safe to resend (the scripts make them so: owner ids unique to one
//! acquisition, hold numbers recorded in the lock's own hash, request memos answering a resend
//! with the first attempt's reply) are resent while the failure is transient
//! ([`ScriptPath::eval`]). The others are sent once ([`ScriptPath::eval_once`]): again only when
//! the failure proves that the first copy did not run (a redirect, a cluster or server not serving
//! yet, a refused connection; see [`never_ran`]), never after a timeout or a dropped connection,
//! which leave it unknown. Nothing below resends on its own (see `client/connection.rs`).
//!
//! An attempt is bounded by the response timeout *including* the
//! time to (re)connect: redis-rs would otherwise wait a whole connect timeout on a handshake sent
//! into a dead network, and an operation must recover within about one response timeout of the
//! network coming back. An attempt that times out retires its connection (see
//! `client/connection.rs`), so the next one starts on a fresh socket.
//!
//! Behind Sentinels a failover shows here as transient errors: refused or reset connections,
//! timeouts, `READONLY` from the demoted primary (redis-rs marks it retriable), and the
//! Sentinels' "no primary" while they elect one. Each also marks the connection stale, so the
//! next attempt finds the primary again first (see `transport/sentinel`): a failover delays an
//! operation, within its retry timeout and its own deadline, and does not fail it.
//!
//! On a Redis Cluster a master failover shows the same way: a killed master drops its
//! connection and refuses new ones, and the other nodes answer `MOVED` to it until its replica
//! is promoted (redis-rs reads the slot map again after each, before it sends the next request);
//! a frozen one lets the attempt time out, which retires the cluster connection so that the next
//! attempt learns the new slot map (see `client/connection.rs`); `CLUSTERDOWN` and `TRYAGAIN`
//! while the cluster settles are resent here. A slot migration shows as `MOVED`, `ASK` (the next
//! attempt goes to the node named, after `ASKING`) and `TRYAGAIN`.

use std::{
    future::Future,
    sync::{OnceLock, atomic},
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{Either, ready},
};
use redis::{ErrorKind, FromRedisValue, RedisError, aio::ConnectionLike};
use tokio::time::Instant;

use crate::{
    core::{
        lease::redis_millis,
        lua::{Calls, Invocation},
    },
    error::LockError,
    transport::{
        background::{Background, in_context},
        config::{Config, Deployment},
        connect::ServerFeatures,
        connection::{Commands, Connection},
        deadline::within,
        failure::{is_transient, never_ran, refused_by_a_replica},
    },
};

/// The pause before the first resend, doubled for each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

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

impl<R> Sent<R> {
    /// The same request, its reply turned by `turn`.
    fn map<U>(self, turn: impl FnOnce(R) -> U) -> Sent<U> {
        Sent {
            reply: turn(self.reply),
            sent: self.sent,
            resent: self.resent,
        }
    }
}

/// What a request sends at each attempt: the same [`Invocation`] every time, or the first copy
/// and then the resend of [`Copies`].
pub(crate) trait Attempts: Sync {
    /// The copy to send next.
    fn next(&self) -> &Invocation;
}

impl Attempts for Invocation {
    fn next(&self) -> &Invocation {
        self
    }
}

/// A request whose resends differ from its first copy: a resend may have earlier copies still on
/// their way (on a retired connection), and tells the script so. The first copy goes out as
/// `first`; every later one as what `resend` builds, once, when the first resend goes out.
pub(crate) struct Copies<F> {
    first: Invocation,
    resend: F,
    resent: OnceLock<Invocation>,
    /// Whether the first copy went out.
    first_sent: atomic::AtomicBool,
}

impl<F: Fn() -> Invocation + Sync> Copies<F> {
    pub(crate) fn new(first: Invocation, resend: F) -> Self {
        Self {
            first,
            resend,
            resent: OnceLock::new(),
            first_sent: atomic::AtomicBool::new(false),
        }
    }
}

/// The first copy, then the resend.
impl<F: Fn() -> Invocation + Sync> Attempts for Copies<F> {
    fn next(&self) -> &Invocation {
        if self.first_sent.swap(true, atomic::Ordering::Relaxed) {
            self.resent.get_or_init(|| (self.resend)())
        } else {
            &self.first
        }
    }
}

/// The command connections of a client, and how long to keep resending on them.
pub(crate) struct ScriptPath {
    runtime: &'static Background,
    commands: Commands,
    /// How scripts go out: `FCALL`, or `EVALSHA`.
    calls: Calls,
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
        runtime: &'static Background,
        commands: Commands,
        replicated: Option<Commands>,
        server: ServerFeatures,
        config: &Config,
    ) -> Self {
        Self {
            runtime,
            commands,
            calls: Calls::new(server, matches!(config.deployment, Deployment::Cluster(_))),
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

    /// How this client sends scripts, to prepare their calls with (see
    /// [`LuaScript::prepare_invoke`](crate::core::lua::LuaScript::prepare_invoke)).
    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The database number the command connection uses (0 on a cluster).
    pub(crate) fn db(&self) -> i64 {
        self.commands.lease().connection.get_db()
    }

    /// The replica check, if the client asked for one.
    pub(crate) fn replica_wait(&self) -> Option<ReplicaWait> {
        self.replicated.as_ref().map(|(_, wait)| *wait)
    }

    /// Runs `call` and decodes its reply, resending it while it fails for a transient reason,
    /// until the retry timeout after the first failure or until `deadline`, whichever is first.
    pub(crate) async fn eval<R: FromRedisValue>(
        &self,
        call: &impl Attempts,
        deadline: Option<Instant>,
        context: impl Fn() -> String,
    ) -> Result<Sent<R>, LockError> {
        self.run(
            &self.commands,
            Resend::WhileTransient,
            context,
            deadline,
            |mut connection| {
                let call = call.next();
                async move { self.calls.invoke(call, &mut connection).await }
            },
        )
        .await
    }

    /// Sends `call` once: for requests that must not run twice (`exec`, `add_permits`). It goes out again only
    /// when the failure proves that it did not run ([`never_ran`]: a redirect, the cluster
    /// settling), within one response timeout of the first send.
    pub(crate) async fn eval_once<R: FromRedisValue>(
        &self,
        call: &Invocation,
        context: impl Fn() -> String,
    ) -> Result<R, LockError> {
        self.reply(Resend::IfNeverRan, context, |mut connection| async move {
            self.calls.invoke(call, &mut connection).await
        })
        .await
    }

    /// Sends a request of the caller's own (a command of `LockGuard::connection`) once, on the
    /// connection current now: behind Sentinels, to the primary as it is now. Like
    /// [`eval_once`](Self::eval_once), it goes out again only after a failure that proves it
    /// did not run, but it may take as long as it needs (it may block on purpose); finding the
    /// primary is bounded by the response timeout. A failure is reported to the connection, so
    /// that the next request finds the primary again if this one says it moved (`READONLY`).
    pub(crate) async fn send_once<T, F, Fut>(&self, request: F) -> redis::RedisResult<T>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.runtime
            .check()
            .map_err(|err| RedisError::from((ErrorKind::Client, "stopped", err.to_string())))?;
        let sent = self.resend(&self.commands, Resend::CallersOwn, None, request);
        Ok(in_context(self.runtime, sent).await?.reply)
    }

    /// Runs the request `copies` describes, followed by `WAIT` in one pipeline on the
    /// replica-check connection, and returns the reply with the number of replicas that
    /// acknowledged. Without a replica check configured, the request alone, with no
    /// acknowledgement. Resent as [`eval`](Self::eval) is.
    ///
    /// The pipeline with `WAIT` is boxed: every try of every acquisition (each waiting task's
    /// among them, in flight at once in a burst) would otherwise carry its state, more than
    /// twice the plain request's, which is what the default settings send.
    pub(crate) async fn eval_replicated<R: FromRedisValue>(
        &self,
        copies: &impl Attempts,
        deadline: Option<Instant>,
        context: impl Fn() -> String,
    ) -> Result<Sent<(R, Option<usize>)>, LockError> {
        let Some((commands, wait)) = &self.replicated else {
            let sent = self.eval(copies, deadline, context).await?;
            return Ok(sent.map(|reply| (reply, None)));
        };
        let sent = Box::pin(self.run(
            commands,
            Resend::WhileTransient,
            context,
            deadline,
            |mut connection| {
                let call = copies.next();
                let pipeline = |calls: &Calls| {
                    let mut pipeline = redis::pipe();
                    pipeline
                        .add_command(calls.command(call).into_owned())
                        .cmd("WAIT")
                        .arg(wait.replicas)
                        .arg(redis_millis(wait.timeout));
                    pipeline
                };
                let calls = &self.calls;
                async move {
                    match pipeline(calls).query_async(&mut connection).await {
                        Err(err) if calls.needs_load(&err) => {
                            calls.load(call, &mut connection).await?;
                            pipeline(calls).query_async(&mut connection).await
                        }
                        reply => reply,
                    }
                }
            },
        ))
        .await?;
        Ok(sent.map(|(reply, acknowledged): (R, usize)| (reply, Some(acknowledged))))
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
        self.reply(
            Resend::WhileTransient,
            context,
            |mut connection| async move { connection.query_on(command, slot).await },
        )
        .await
    }

    /// [`run`](Self::run) on the shared connection, with no deadline of the caller's: the
    /// reply alone.
    async fn reply<T, F, Fut>(
        &self,
        policy: Resend,
        context: impl Fn() -> String,
        request: F,
    ) -> Result<T, LockError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let sent = self
            .run(&self.commands, policy, context, None, request)
            .await?;
        Ok(sent.reply)
    }

    /// Every request of the client goes through here. The whole loop is polled inside the
    /// background runtime's context: what redis-rs spawns (connection drivers, reconnections)
    /// and the timers below then belong to the runtime that outlives every caller.
    ///
    /// `run`, [`resend`](Self::resend) and [`attempt`](Self::attempt) are plain fns returning
    /// futures, not `async fn`s: an `async fn` keeps its arguments twice in its state (as
    /// arguments, and as the locals they are moved into), and every request in flight carries
    /// the state of all three (each try of a waiting task among them, boxed).
    fn run<T, F, Fut>(
        &self,
        commands: &Commands,
        policy: Resend,
        context: impl Fn() -> String,
        deadline: Option<Instant>,
        request: F,
    ) -> impl Future<Output = Result<Sent<T>, LockError>>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if let Err(stopped) = self.runtime.check() {
            return Either::Left(ready(Err(stopped)));
        }
        Either::Right(
            in_context(
                self.runtime,
                self.resend(commands, policy, deadline, request),
            )
            .map(move |sent| sent.map_err(|err| LockError::redis(context(), err))),
        )
    }

    /// Sends `request` until it succeeds, or fails in a way `policy` does not resend after, or
    /// runs out of time; returns the last failure.
    #[expect(clippy::manual_async_fn, reason = "an async fn keeps its args twice")]
    fn resend<T, F, Fut>(
        &self,
        commands: &Commands,
        policy: Resend,
        deadline: Option<Instant>,
        mut request: F,
    ) -> impl Future<Output = redis::RedisResult<Sent<T>>>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        async move {
            let mut give_up_at: Option<Option<Instant>> = None;
            let mut backoff = FIRST_BACKOFF;
            let mut resent = false;
            let mut target = Target::Current;
            let mut redirected_to = None;
            loop {
                let limit = match policy {
                    Resend::CallersOwn => Duration::MAX,
                    Resend::WhileTransient | Resend::IfNeverRan => self.response_timeout,
                };
                let (reply, sent) = self.attempt(commands, &target, limit, &mut request).await;
                let err = match reply {
                    Ok(reply) => {
                        return Ok(Sent {
                            reply,
                            sent: sent.at,
                            resent,
                        });
                    }
                    Err(err) => {
                        // `None` inside: no limit (a retry timeout too large to add, and no
                        // deadline). A request sent once may follow a redirect within the response
                        // timeout of its first send.
                        give_up_at.get_or_insert_with(|| {
                            let end = match policy {
                                Resend::WhileTransient => {
                                    Instant::now().checked_add(self.retry_timeout)
                                }
                                Resend::IfNeverRan | Resend::CallersOwn => {
                                    sent.at.checked_add(self.response_timeout)
                                }
                            };
                            match (end, deadline) {
                                (Some(end), Some(deadline)) => Some(end.min(deadline)),
                                (end, deadline) => end.or(deadline),
                            }
                        });
                        err
                    }
                };
                let now = Instant::now();
                let out_of_time = give_up_at
                    .flatten()
                    .is_some_and(|give_up_at| now + backoff >= give_up_at);
                let may_resend = match policy {
                    Resend::WhileTransient => is_transient(&err),
                    Resend::IfNeverRan | Resend::CallersOwn => !sent.out || never_ran(&err),
                };
                if !may_resend || out_of_time {
                    return Err(err);
                }
                target = Target::asked_by(&err);
                // A redirect to a node not named before says the cluster moved on (redis-rs has
                // read the slot map again by the time the next request goes): go there at once,
                // rather than after a pause grown while the cluster settled. A node named again
                // (a failed master, until its replica is promoted) gets no such haste.
                let redirect = err.redirect_node().map(|(node, _slot)| node.to_owned());
                if redirect.is_some() && redirect != redirected_to {
                    backoff = FIRST_BACKOFF;
                    redirected_to = redirect;
                }
                tracing::debug!(error = %err, ?backoff, "transient Redis error; resending");
                // A timer of the library's runtime, as every timer a caller waits on (see
                // `Background::timers`): this loop runs in the client's runtime's context.
                let pause = {
                    let _timers = self.runtime.timers().handle().enter();
                    tokio::time::sleep(backoff)
                };
                pause.await;
                resent = true;
                backoff = (backoff * 2).min(MAX_BACKOFF).min(self.response_timeout);
            }
        }
    }
}

/// When an attempt was made, and whether its request went out: an attempt that found no
/// connection to send it on (the Sentinels could not say where the primary is) sent nothing.
#[derive(Debug, Clone, Copy)]
struct Attempted {
    at: Instant,
    out: bool,
}

/// Which failures a request may be sent again after.
#[derive(Debug, Clone, Copy)]
enum Resend {
    /// Safe to resend: any transient failure, within the retry timeout after the first failure
    /// (and the caller's deadline).
    WhileTransient,
    /// Sent once: again only after a failure that proves it did not run ([`never_ran`]),
    /// within the response timeout of the first send.
    IfNeverRan,
    /// A command of the caller's own: as [`IfNeverRan`](Self::IfNeverRan), but each attempt
    /// may take as long as it needs (a blocking command blocks on purpose).
    CallersOwn,
}

/// Where an attempt goes.
#[derive(Debug)]
enum Target {
    /// The shared connection: the node the slot map names, on a cluster.
    Current,
    /// The cluster node that answered `ASK` to the previous attempt (its slot is being
    /// migrated there, and the keys already moved), reached after `ASKING`.
    Asked { host: String, port: u16 },
}

impl Target {
    /// Where to send again after `err`: to the node an `ASK` names, else as usual.
    fn asked_by(err: &redis::RedisError) -> Self {
        if err.kind() != redis::ServerErrorKind::Ask.into() {
            return Self::Current;
        }
        err.redirect_node()
            .and_then(|(address, _slot)| address.rsplit_once(':'))
            .and_then(|(host, port)| {
                Some(Self::Asked {
                    host: host.to_owned(),
                    port: port.parse().ok()?,
                })
            })
            .unwrap_or(Self::Current)
    }
}

impl ScriptPath {
    /// One attempt of `request` to `target`, bounded by `limit` (the response timeout, or no
    /// limit), which also bounds finding the primary again behind Sentinels (that, never longer
    /// than the response timeout); a failure is reported to the connection (a timeout retires
    /// it). Returns when the request was sent.
    #[expect(clippy::manual_async_fn, reason = "an async fn keeps its args twice")]
    fn attempt<T, F, Fut>(
        &self,
        commands: &Commands,
        target: &Target,
        limit: Duration,
        mut request: F,
    ) -> impl Future<Output = (redis::RedisResult<T>, Attempted)>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        async move {
            let at = Instant::now();
            // Finding the primary again (behind Sentinels) and the request share one budget. What
            // was found is read in a block of its own, so the future keeps it no longer than that.
            let leased = {
                let found = match target {
                    Target::Current => within(self.response_timeout, commands.ready()).await,
                    Target::Asked { host, port } => commands.asking(host, *port),
                };
                match found {
                    Ok(leased) => leased,
                    Err(err) => return (Err(err), Attempted { at, out: false }),
                }
            };
            let left = limit.saturating_sub(at.elapsed());
            let reply = within(left, request(leased.connection.clone()))
                .await
                .map_err(refused_by_a_replica);
            if let Err(err) = &reply {
                commands.report(&leased, err);
            }
            (reply, Attempted { at, out: true })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::failure::server_error as server;

    #[test]
    fn an_ask_names_where_to_send_next() {
        assert!(matches!(
            Target::asked_by(&server("ASK 12 10.0.0.7:7001")),
            Target::Asked { ref host, port: 7001 } if host == "10.0.0.7"
        ));
        assert!(matches!(
            Target::asked_by(&server("MOVED 12 10.0.0.7:7001")),
            Target::Current
        ));
    }
}
