//! Assertions and helpers about `lock-runtime` locks, shared by the integration tests.

use std::{future::Future, time::Duration};

use lock_runtime::{
    LockClient, LockError, LockGuard, Redlock, RedlockGuard,
    testing::{keys, scripts::Pipelined},
};

use crate::RedisServer;

/// The key prefix of a client built with default settings.
const DEFAULT_PREFIX: &str = "lock";

/// A Redis name of `name` under the default key prefix, as the runtime's `key` names it.
///
/// # Panics
///
/// When the runtime refuses the name (empty, or with braces).
fn named(key: fn(&str, &str) -> Result<String, LockError>, name: &str) -> String {
    key(DEFAULT_PREFIX, name).unwrap_or_else(|err| panic!("no key for {name:?}: {err}"))
}

/// The Redis key of the lock `name` under the default key prefix `lock`.
pub fn lock_key(name: &str) -> String {
    named(keys::lock, name)
}

/// The Redis key of the fencing state of the lock `name` (the last token handed out), under the
/// default key prefix `lock`: a key of the lock's hash tag, as every other key of the lock.
pub fn fence_key(name: &str) -> String {
    named(keys::fence, name)
}

/// The last token that a reentrant or fair lock's fencing state, as `GET` reads it, says was
/// handed out: the state counts at a hold's token (always odd) while the hold lasts, and one
/// past it once the hold was released.
pub fn last_token(fence: u64) -> u64 {
    fence - (1 - fence % 2)
}

/// A client of `server` with a short watchdog timeout, so lease tests run in seconds.
///
/// # Panics
///
/// When the client cannot connect.
pub async fn client_with_watchdog(server: &RedisServer, watchdog: Duration) -> LockClient {
    LockClient::builder()
        .url(server.url())
        .watchdog_timeout(watchdog)
        .build()
        .await
        .unwrap_or_else(|err| panic!("connecting to {}: {err}", server.url()))
}

/// A client of `server` whose client name is `name`: what a timeout or `info()` says holds a
/// lock.
///
/// # Panics
///
/// When the client cannot connect.
pub async fn client_named(server: &RedisServer, name: &str) -> LockClient {
    LockClient::builder()
        .url(server.url())
        .client_name(name)
        .build()
        .await
        .unwrap_or_else(|err| panic!("connecting to {}: {err}", server.url()))
}

/// A client of `server` connected as the ACL user `app` (password `pw`, created here), who may
/// run every command on every key but may use no pub/sub channel (`resetchannels`, the default
/// for new users since Redis 7 with `acl-pubsub-default resetchannels`): its `SUBSCRIBE` and
/// the `PUBLISH` of its release scripts are refused, so every message its releases would send
/// is lost, as pub/sub (at-most-once) may lose one.
///
/// # Panics
///
/// When the user cannot be created or the client cannot connect.
pub async fn client_without_channel_rights(server: &RedisServer) -> LockClient {
    client_with_channel_rights(server, &[]).await
}

/// A client of `server` connected as the ACL user `app` (password `pw`, created here), who may
/// run every command on every key and use the pub/sub channels that match `channels` (ACL
/// globs, such as `*:unlock`) only.
///
/// # Panics
///
/// When the user cannot be created or the client cannot connect.
pub async fn client_with_channel_rights(server: &RedisServer, channels: &[&str]) -> LockClient {
    let rights: Vec<String> = channels.iter().map(|glob| format!("&{glob}")).collect();
    let mut setuser = vec![
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">pw",
        "~*",
        "+@all",
        "resetchannels",
    ];
    setuser.extend(rights.iter().map(String::as_str));
    let _: () = server.cmd(&setuser);
    let url = format!("redis://app:pw@127.0.0.1:{}", server.port());
    LockClient::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("connecting as `app` to {url}: {err}"))
}

/// A client of `server` with the default settings.
///
/// # Panics
///
/// When the client cannot connect.
pub async fn connect(server: &RedisServer) -> LockClient {
    LockClient::connect(&server.url())
        .await
        .unwrap_or_else(|err| panic!("connecting to {}: {err}", server.url()))
}

/// Whether anyone holds the reentrant (or fair) lock `name`: its key exists.
pub fn is_held(server: &RedisServer, name: &str) -> bool {
    server.cmd::<i64>(&["EXISTS", &lock_key(name)]) == 1
}

/// Takes the reentrant lock `name` through `client` and releases it at once, and returns the
/// fencing token it was given: a warm-up (connections open, scripts cached in Redis) or a lock
/// that must have been taken once.
///
/// # Panics
///
/// When the lock is not had within 10 s (it is meant to be free), or its release fails.
pub async fn take_once(client: &LockClient, name: &str) -> u64 {
    let guard = client
        .lock(name)
        .try_acquire(Duration::from_secs(10), None)
        .await
        .unwrap_or_else(|err| panic!("taking {name}: {err}"));
    let token = guard.fencing_token();
    guard
        .unlock()
        .await
        .unwrap_or_else(|err| panic!("releasing {name}: {err}"));
    token
}

/// How a client of the runtime sends its scripts to `server`: as Redis Functions from Redis 7.0
/// on (and on every Valkey), with `EVALSHA` before.
#[must_use]
pub fn script_calls(server: &RedisServer) -> Pipelined {
    let (major, minor, _) = server.version().version;
    Pipelined::for_version((major, minor))
}

/// Loads the reentrant lock's script `file` (such as `"leave.lua"`) into `server` as a client
/// sends it, so that a request whose replies a test holds back does not stall on loading it.
///
/// # Panics
///
/// If the lock has no such script, or `server` refuses it.
pub fn load_lock_script(server: &RedisServer, file: &str) {
    let load = script_calls(server)
        .load_lock_script(file)
        .unwrap_or_else(|| panic!("lock-runtime has no {file}"));
    run_load(server, &load);
}

/// Loads every script of every primitive into `server` as a client sends them: a late copy of
/// a request then runs the script it names even if no other copy of it reached Redis first.
///
/// # Panics
///
/// If `server` refuses one.
pub fn load_every_script(server: &RedisServer) {
    for load in script_calls(server).load_every_script() {
        run_load(server, &load);
    }
}

/// Runs `load` (`FUNCTION LOAD` or `SCRIPT LOAD`) on `server`; a library it has already is
/// loaded.
fn run_load(server: &RedisServer, load: &redis::Cmd) {
    match load.query::<redis::Value>(&mut server.sync_connection()) {
        Err(err) if !err.to_string().contains("already exists") => {
            panic!("loading a script on port {}: {err}", server.port())
        }
        _ => {}
    }
}

/// Panics unless the lock `name` is released and nothing of it lingers: the lock key is gone,
/// and every other key of the lock (its fencing state, request memos, abandoned marks) carries a
/// TTL.
pub fn assert_released(server: &RedisServer, name: &str) {
    assert_released_beside(server, name, &[]);
}

/// [`assert_released`] for a lock whose hash tag also names data of the caller's, such as the
/// keys written with `LockGuard::exec` or `lock_runtime::exec` (`{lock:item:7}:auction`): the
/// keys in `data` are left out of the TTL check.
///
/// # Panics
///
/// As [`assert_released`].
pub fn assert_released_beside(server: &RedisServer, name: &str, data: &[&str]) {
    let lock_key = lock_key(name);
    let held: i64 = server.cmd(&["EXISTS", &lock_key]);
    assert_eq!(held, 0, "lock key {lock_key} is still held");
    for key in server.keys(&format!("{lock_key}*")) {
        if data.contains(&key.as_str()) {
            continue;
        }
        // -1 alone is a key without TTL. 0: a TTL ending within the millisecond (a memo of the
        // first requests of a long run); -2: the key went between the listing and now (a
        // background undo leaving a queue, a memo that just expired).
        let ttl: i64 = server.cmd(&["PTTL", &key]);
        assert!(
            ttl != -1,
            "key {key} of lock {name} has no TTL (pttl {ttl})"
        );
    }
}

/// The hold count of each owner of the reentrant or fair lock `name`: the fields of its hash
/// that are not bookkeeping (see [`is_owner_field`]).
pub fn hold_counts(server: &RedisServer, name: &str) -> Vec<i64> {
    owner_counts(server, &lock_key(name))
}

/// Whether a field of a lock's hash (any lock of the family, or a semaphore) is an owner id
/// holding a count: the scripts' bookkeeping fields start with `~` (who took a hold, the
/// re-entries and lock-checked writes of an owner), and the read-write lock names its write
/// hold's owner in `writer`.
pub fn is_owner_field(field: &str) -> bool {
    !field.starts_with('~') && field != "writer"
}

/// What [`put_a_list`] puts at a key.
pub const A_LIST_ITEM: &str = "somebody else's";

/// Puts a list (of [`A_LIST_ITEM`]) at `key`, in place of whatever was there: a value of
/// another type than the runtime keeps anywhere, as an operator or another program might leave.
///
/// # Panics
///
/// When a command fails.
pub fn put_a_list(server: &RedisServer, key: &str) {
    let _: i64 = server.cmd(&["DEL", key]);
    let _: i64 = server.cmd(&["RPUSH", key, A_LIST_ITEM]);
}

/// Panics unless `err` is Redis's refusal of a value of another type (`WRONGTYPE`) and names
/// `name`, the lock or semaphore that met it; `what` says which case, for the message.
pub fn assert_reports_wrong_type(err: &LockError, name: &str, what: &str) {
    let message = err.to_string();
    assert!(
        message.to_lowercase().contains("wrongtype") && message.contains(name),
        "{what}: says what and names `{name}`: {err}"
    );
}

/// The hold count of each owner in the lock hash `key` (see [`is_owner_field`]).
fn owner_counts(server: &RedisServer, key: &str) -> Vec<i64> {
    let fields: Vec<(String, String)> = server.cmd(&["HGETALL", key]);
    fields
        .into_iter()
        .filter(|(field, _)| is_owner_field(field))
        .map(|(owner, count)| {
            count
                .parse()
                .unwrap_or_else(|_| panic!("hold count of {owner}: {count:?}"))
        })
        .collect()
}

/// The Redis key of the read-write lock `name` under the default prefix: `{lock:name}:rw`.
pub fn rw_key(name: &str) -> String {
    named(keys::read_write_lock, name)
}

/// The Redis key of the per-hold leases of the read-write lock `name` under the default prefix:
/// `{lock:name}:rw:leases`. A lock with one hold taken on a free lock (a lone hold) has none:
/// the lock's own TTL is that hold's lease.
pub fn rw_leases_key(name: &str) -> String {
    named(keys::read_write_leases, name)
}

/// The Redis key of the semaphore `name` under the default prefix: `{lock:name}:sem`.
pub fn sem_key(name: &str) -> String {
    named(keys::semaphore, name)
}

/// How the fields of a read-write lock's or a semaphore's hash that record who took a hold are
/// named: this, then the hold's owner id (permit id).
const RECORD: &str = "~who:";

/// How the fields of a lock's hash that record an owner's lock-checked writes
/// (`LockGuard::exec`) are named: this, then the owner id.
const EXEC_RECORD: &str = "~x:";

/// How many holds, read or write, the read-write lock `name` has in Redis: the fields of its
/// hash that name an owner (see [`is_owner_field`]).
pub fn rw_holds(server: &RedisServer, name: &str) -> usize {
    let fields: Vec<String> = server.cmd(&["HKEYS", &rw_key(name)]);
    fields.iter().filter(|field| is_owner_field(field)).count()
}

/// The owner ids (permit ids) whose record of who took their hold is in the hash `key` (a
/// read-write lock's, [`rw_key`], or a semaphore's, [`sem_key`]), sorted.
pub fn hold_records(server: &RedisServer, key: &str) -> Vec<String> {
    owners_recorded(server, key, RECORD)
}

/// The owner ids whose record of lock-checked writes is in the lock hash `key` (any lock of the
/// family: [`Family::key`]), sorted. Such a record lives exactly as long as the owner's hold.
pub fn exec_records(server: &RedisServer, key: &str) -> Vec<String> {
    owners_recorded(server, key, EXEC_RECORD)
}

/// The owner ids named by the fields `<prefix><owner id>` of the hash `key`, sorted.
fn owners_recorded(server: &RedisServer, key: &str, prefix: &str) -> Vec<String> {
    let fields: Vec<String> = server.cmd(&["HKEYS", key]);
    let mut owners: Vec<String> = fields
        .iter()
        .filter_map(|field| field.strip_prefix(prefix))
        .map(str::to_owned)
        .collect();
    owners.sort();
    owners
}

/// Asserts that nothing holds the read-write lock `name` (neither its hash nor its per-hold
/// leases are left) and that every key left of it has a TTL.
///
/// # Panics
///
/// When a hold, its lease, or a key without TTL is left.
pub fn assert_rw_released(server: &RedisServer, name: &str) {
    for key in [rw_key(name), rw_leases_key(name)] {
        let held: i64 = server.cmd(&["EXISTS", &key]);
        assert_eq!(
            held, 0,
            "key {key} of read-write lock {name} is still there"
        );
    }
    assert_released(server, name);
}

/// Polls `condition` every 10 ms until it holds, for at most `limit`; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many waiters queue on the fair lock `name` (default key prefix): the `ZCARD` of its queue.
pub fn queue_len(server: &RedisServer, name: &str) -> i64 {
    server.cmd(&["ZCARD", &named(keys::queue, name)])
}

/// The lock `name` of kind `family` held by `holding` with `lease`, and a task of `waiting`
/// waiting for it (up to 10 s, with the same lease), for a test of the hand-off between them
/// (see [`watch_hand_off`]). The waiter may not have queued yet.
///
/// # Panics
///
/// If the holder cannot take the lock within a second.
pub async fn held_with_a_waiter(
    family: Family,
    (holding, waiting): (&LockClient, &LockClient),
    name: &str,
    lease: Option<Duration>,
) -> (
    LockGuard,
    tokio::task::JoinHandle<Result<LockGuard, LockError>>,
) {
    let holder = family
        .try_acquire(holding, name, Duration::from_secs(1), lease)
        .await
        .expect("the holder's acquire");
    (holder, spawn_waiting(family, waiting, name, lease))
}

/// A task of `waiting` that waits up to 10 s for the lock `name` of kind `family`, with `lease`
/// (see [`held_with_a_waiter`]).
pub fn spawn_waiting(
    family: Family,
    waiting: &LockClient,
    name: &str,
    lease: Option<Duration>,
) -> tokio::task::JoinHandle<Result<LockGuard, LockError>> {
    let (waiting, name) = (waiting.clone(), name.to_owned());
    tokio::spawn(async move {
        family
            .try_acquire(&waiting, &name, Duration::from_secs(10), lease)
            .await
    })
}

/// Releases `holder` while `MONITOR` watches, until `waiter` (a task waiting for the same
/// lock) has its guard: returns that guard and what each script call ran meanwhile (see
/// [`ran_by_each_call`](crate::ran_by_each_call), without the fencing state's catch-ups:
/// [`drop_fence_catch_ups`](crate::drop_fence_catch_ups)), to tell what a hand-off costs Redis.
///
/// # Panics
///
/// If the release or the waiter fails.
pub async fn watch_hand_off(
    server: &RedisServer,
    holder: LockGuard,
    waiter: tokio::task::JoinHandle<Result<LockGuard, LockError>>,
) -> (LockGuard, Vec<Vec<String>>) {
    let monitor = server.monitor();
    holder.unlock().await.expect("the holder's release");
    let guard = waiter
        .await
        .expect("the waiter's task")
        .expect("the waiter's acquire");
    let mut calls = crate::ran_by_each_call(&monitor.stop());
    crate::drop_fence_catch_ups(&mut calls);
    (guard, calls)
}

/// Waits until exactly `n` waiters queue on the fair lock `name` (the reentrant lock's queue,
/// which it shares). Queue waiters one at a time with it to know the order they queued in.
///
/// # Panics
///
/// If that does not happen within 5 seconds.
pub async fn await_queued(server: &RedisServer, name: &str, n: i64) {
    Family::Fair.await_queued(server, name, n).await;
}

/// Runs `body` with the URL of a fresh `redis-server` on a multi-threaded Tokio runtime, and
/// panics if it fails. For documentation examples that run against a real Redis.
///
/// # Panics
///
/// When `body` returns an error, or the runtime cannot be built.
pub fn run_with_redis<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), LockError>>,
{
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
    if let Err(err) = runtime.block_on(body(server.url())) {
        panic!("example failed: {err}");
    }
}

/// [`run_with_redis`] with `n` independent servers (for a Redlock): `body` gets their URLs.
///
/// # Panics
///
/// When `body` returns an error, or the runtime cannot be built.
pub fn run_with_masters<F, Fut>(n: usize, body: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), LockError>>,
{
    let masters = crate::start_masters(n);
    let urls = masters.iter().map(RedisServer::url).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
    if let Err(err) = runtime.block_on(body(urls)) {
        panic!("example failed: {err}");
    }
}

/// Sums the calls of the given commands in `INFO commandstats`.
pub fn command_calls(server: &RedisServer, commands: &[&str]) -> u64 {
    crate::command_stats(&server.info("commandstats"), "calls")
        .iter()
        .filter(|(name, _)| commands.contains(&name.as_str()))
        .map(|(_, calls)| calls)
        .sum()
}

/// The channel on which the release of lock `name` is announced (default key prefix).
pub fn unlock_channel(name: &str) -> String {
    named(keys::unlock_channel, name)
}

/// Spawns `count` tasks that each wait up to `wait` for the lock `name`, then release it.
pub fn spawn_waiters(
    client: &LockClient,
    name: &str,
    count: usize,
    wait: Duration,
) -> Vec<tokio::task::JoinHandle<Result<(), LockError>>> {
    (0..count)
        .map(|_| {
            let lock = client.lock(name);
            tokio::spawn(async move { lock.try_acquire(wait, None).await?.unlock().await })
        })
        .collect()
}

/// Waits until Redis counts exactly one subscriber on the unlock channel of lock `name`: the
/// waiters of one client share one subscription.
///
/// # Panics
///
/// If that does not happen within 5 seconds.
pub async fn await_one_subscription(server: &RedisServer, name: &str) {
    await_subscribers(server, &unlock_channel(name), 1).await;
}

/// How many clients subscribe to `channel` on `server` (`PUBSUB NUMSUB`); 0 if the server does
/// not answer (it is down or restarting).
pub fn subscribers(server: &RedisServer, channel: &str) -> i64 {
    server
        .try_cmd::<(String, i64)>(&["PUBSUB", "NUMSUB", channel])
        .map_or(0, |(_, count)| count)
}

/// Waits until Redis counts exactly `n` subscribers on `channel`: one per client (or process)
/// with a task waiting on it, since the waiters of one client share one subscription.
///
/// # Panics
///
/// If that does not happen within 5 seconds.
pub async fn await_subscribers(server: &RedisServer, channel: &str, n: i64) {
    assert!(
        eventually(Duration::from_secs(5), || subscribers(server, channel) == n).await,
        "expected {n} subscriber(s) on {channel}, found {}",
        subscribers(server, channel)
    );
}

/// How many clients subscribe to the shard channel `channel` on `server`
/// (`PUBSUB SHARDNUMSUB`, Redis 7); 0 if the server does not answer.
pub fn shard_subscribers(server: &RedisServer, channel: &str) -> i64 {
    server
        .try_cmd::<(String, i64)>(&["PUBSUB", "SHARDNUMSUB", channel])
        .map_or(0, |(_, count)| count)
}

/// Waits until exactly `n` clients subscribe to the shard channel `channel` on `server`.
///
/// # Panics
///
/// If that does not happen within 10 seconds.
pub async fn await_shard_subscribers(server: &RedisServer, channel: &str, n: i64) {
    assert!(
        eventually(Duration::from_secs(10), || shard_subscribers(
            server, channel
        ) == n)
        .await,
        "expected {n} shard subscriber(s) on {channel} on port {}, found {}",
        server.port(),
        shard_subscribers(server, channel)
    );
}

/// Waits until one client subscribes to the channel `channel` of a Redis Cluster, where the
/// server version puts that subscription. With sharded pub/sub (Redis 7, Valkey), it is a shard
/// subscription on `owner`, the primary serving the channel's slot. Before Redis 7, the client
/// falls back on classic pub/sub on one node of its choice (the cluster broadcasts `PUBLISH` to
/// every node), so the classic subscriptions are counted over `nodes`: give the nodes that
/// answer (not a [paused](RedisServer::pause) one).
///
/// # Panics
///
/// If that does not happen within 10 seconds.
pub async fn await_cluster_subscriber(nodes: &[&RedisServer], owner: &RedisServer, channel: &str) {
    if crate::server_version().redis_7_or_newer() {
        return await_shard_subscribers(owner, channel, 1).await;
    }
    let subscribers = || -> i64 {
        nodes
            .iter()
            .map(|node| {
                node.try_cmd::<(String, i64)>(&["PUBSUB", "NUMSUB", channel])
                    .map_or(0, |(_, count)| count)
            })
            .sum()
    };
    assert!(
        eventually(Duration::from_secs(10), || subscribers() == 1).await,
        "expected one classic subscriber on {channel} over the nodes, found {}",
        subscribers()
    );
}

/// The Redis key of the count-down latch `name` under the default prefix: `{lock:name}:latch`,
/// a string holding the count.
pub fn latch_key(name: &str) -> String {
    named(keys::latch, name)
}

/// The channel on which the count-down latch `name` announces it reached zero (default prefix).
pub fn latch_channel(name: &str) -> String {
    named(keys::latch_channel, name)
}

/// The count of the latch `name` as Redis holds it, read with `GET` (0: no latch).
///
/// # Panics
///
/// When the key holds something that is not a count, or the server cannot be queried.
pub fn latch_count(server: &RedisServer, name: &str) -> u64 {
    server
        .cmd::<Option<u64>>(&["GET", &latch_key(name)])
        .unwrap_or(0)
}

/// Waits until no channel of `server` has a subscriber: every waiter left, and the lingering
/// subscriptions (half a second) were dropped.
///
/// # Panics
///
/// If a channel is still subscribed after 2 seconds.
pub async fn await_no_subscriptions(server: &RedisServer) {
    let unsubscribed = || {
        server
            .try_cmd::<Vec<String>>(&["PUBSUB", "CHANNELS", "*"])
            .is_ok_and(|channels| channels.is_empty())
    };
    assert!(
        eventually(Duration::from_secs(2), unsubscribed).await,
        "a channel stayed subscribed after its last waiter left"
    );
}

/// Panics, listing them, unless every key whose name contains `name` carries a TTL: once a lock
/// is released for the last time, nothing of it may stay in Redis for ever (DESIGN 3.3, "bounded
/// state": millions of lock names are normal). Stricter than [`assert_released`], which lets the
/// fencing counter live without a TTL.
///
/// # Panics
///
/// When a key of `name` has no TTL, or when the server cannot be queried.
pub fn assert_no_key_without_ttl(server: &RedisServer, name: &str) {
    let unbounded: Vec<String> = server
        .keys(&format!("*{name}*"))
        .into_iter()
        .filter_map(|key| {
            // -2: the key went since the listing.
            let ttl: i64 = server.cmd(&["PTTL", &key]);
            (ttl == -1).then(|| format!("  {key} (pttl {ttl})"))
        })
        .collect();
    assert!(
        unbounded.is_empty(),
        "{} key(s) of lock {name} have no TTL and would stay in Redis for ever:\n{}",
        unbounded.len(),
        unbounded.join("\n")
    );
}

/// The thread-name prefix of the runtimes made by [`run_catching_panics`].
const CATCHING_PREFIX: &str = "lock-tests-catching";

/// One panic seen by [`run_catching_panics`].
#[derive(Debug, Clone)]
pub struct CaughtPanic {
    /// The name of the thread that panicked.
    pub thread: String,
    /// The panic message.
    pub message: String,
    /// `file:line` of the panic.
    pub location: String,
    /// Whether the location is in this package (the kit or a test file): a failed check of the
    /// test itself, rather than a panic in the code under test or a library.
    pub in_tests: bool,
}

impl std::fmt::Display for CaughtPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "thread `{}`: {} (at {})",
            self.thread, self.message, self.location
        )
    }
}

/// Every panic seen by the hook [`run_catching_panics`] installs.
static PANICS: std::sync::Mutex<Vec<CaughtPanic>> = std::sync::Mutex::new(Vec::new());

fn install_panic_recorder() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_owned());
            let (location, in_tests) = info.location().map_or_else(
                || ("unknown location".to_owned(), false),
                |l| {
                    let file = l.file();
                    let in_tests = file.starts_with("tests/") || file.starts_with("tests\\");
                    (format!("{file}:{}", l.line()), in_tests)
                },
            );
            PANICS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(CaughtPanic {
                    thread: std::thread::current().name().unwrap_or("").to_owned(),
                    message,
                    location,
                    in_tests,
                });
            previous(info);
        }));
    });
}

/// Runs `body` on a fresh multi-threaded Tokio runtime (2 workers) whose threads are its own,
/// shuts the runtime down, and returns what `body` returned (`None` if it panicked) with every
/// panic raised meanwhile:
///
/// - on the runtime's threads: in `body` or in any task spawned on the runtime, such as the
///   background tasks of a client built in `body`, whose panics no `JoinHandle` shows;
/// - on any other thread, in code outside this package (a library's own background threads).
///   Such a panic cannot be told apart by test, so every concurrent caller reports it.
///
/// Use it to prove that bad input gives an error and never a panic, however deep in the client
/// the panic would be. A failed assertion of `body` is among the panics, with
/// [`in_tests`](CaughtPanic::in_tests) set. The panic hook it installs (once per process) keeps
/// the previous hook's output.
///
/// # Panics
///
/// When the runtime or its thread cannot be made.
pub fn run_catching_panics<T, F, Fut>(body: F) -> (Option<T>, Vec<CaughtPanic>)
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    install_panic_recorder();
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let thread_name = format!("{CATCHING_PREFIX}-{id}");
    let seen_before = PANICS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    let runtime_threads = thread_name.clone();
    let output = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(runtime_threads)
                .enable_all()
                .build()
                .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
            let output = runtime.block_on(body());
            runtime.shutdown_timeout(Duration::from_secs(2));
            output
        })
        .unwrap_or_else(|err| panic!("spawning a thread: {err}"))
        .join()
        .ok();
    let panics = PANICS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)[seen_before..]
        .iter()
        .filter(|panic| {
            panic.thread == thread_name
                || (!panic.thread.starts_with(CATCHING_PREFIX) && !panic.in_tests)
        })
        .cloned()
        .collect();
    (output, panics)
}

/// Which lock of the family a test drives.
///
/// Not the runtime's `lock_runtime::__private::LockKind`, the one public enum of the kinds: that
/// one is the attribute's (hidden, free to change with `lock-macros` in any release), carries the
/// formatted names, and has a multi-lock case that none of the methods here could serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `client.lock(name)`.
    Reentrant,
    /// `client.fair_lock(name)`.
    Fair,
    /// `client.read_write_lock(name).read()`.
    Read,
    /// `client.read_write_lock(name).write()`.
    Write,
}

impl Family {
    /// Every lock of the family.
    pub const ALL: [Self; 4] = [Self::Reentrant, Self::Fair, Self::Read, Self::Write];

    /// `try_acquire(wait, lease)` on the lock `name` of this kind.
    ///
    /// # Errors
    ///
    /// The lock's.
    pub async fn try_acquire(
        self,
        client: &LockClient,
        name: &str,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<LockGuard, LockError> {
        match self {
            Self::Reentrant => client.lock(name).try_acquire(wait, lease).await,
            Self::Fair => client.fair_lock(name).try_acquire(wait, lease).await,
            Self::Read => {
                client
                    .read_write_lock(name)
                    .read()
                    .try_acquire(wait, lease)
                    .await
            }
            Self::Write => {
                client
                    .read_write_lock(name)
                    .write()
                    .try_acquire(wait, lease)
                    .await
            }
        }
    }

    /// `acquire()` on the lock `name` of this kind: waits without limit, watchdog lease.
    ///
    /// # Errors
    ///
    /// The lock's.
    pub async fn acquire(self, client: &LockClient, name: &str) -> Result<LockGuard, LockError> {
        self.try_acquire(client, name, Duration::MAX, None).await
    }

    /// `force_unlock()` on the lock `name` of this kind (the whole read-write lock for `Read`
    /// and `Write`).
    ///
    /// # Errors
    ///
    /// The lock's.
    pub async fn force_unlock(self, client: &LockClient, name: &str) -> Result<bool, LockError> {
        match self {
            Self::Reentrant => client.lock(name).force_unlock().await,
            Self::Fair => client.fair_lock(name).force_unlock().await,
            Self::Read | Self::Write => client.read_write_lock(name).force_unlock().await,
        }
    }

    /// `force_unlock_held_by(owner)` on the lock `name` of this kind (of the read-write lock for
    /// `Read` and `Write`).
    ///
    /// # Errors
    ///
    /// The lock's.
    pub async fn force_unlock_held_by(
        self,
        client: &LockClient,
        name: &str,
        owner: &str,
    ) -> Result<bool, LockError> {
        match self {
            Self::Reentrant => client.lock(name).force_unlock_held_by(owner).await,
            Self::Fair => client.fair_lock(name).force_unlock_held_by(owner).await,
            Self::Read | Self::Write => {
                client
                    .read_write_lock(name)
                    .force_unlock_held_by(owner)
                    .await
            }
        }
    }

    /// The owner ids holding the lock `name` of this kind, as its `info` shows them (for a
    /// read-write lock: the writer first, then the readers).
    ///
    /// # Errors
    ///
    /// The lock's.
    pub async fn owners(self, client: &LockClient, name: &str) -> Result<Vec<String>, LockError> {
        Ok(match self {
            Self::Reentrant | Self::Fair => {
                let info = client.lock(name).info().await?;
                info.holder()
                    .map(|holder| holder.owner().to_owned())
                    .into_iter()
                    .collect()
            }
            Self::Read | Self::Write => {
                let info = client.read_write_lock(name).info().await?;
                info.writer()
                    .into_iter()
                    .chain(info.readers())
                    .map(|holder| holder.owner().to_owned())
                    .collect()
            }
        })
    }

    /// The Redis key holding the lock `name` of this kind (default prefix).
    pub fn key(self, name: &str) -> String {
        match self {
            Self::Reentrant | Self::Fair => lock_key(name),
            Self::Read | Self::Write => rw_key(name),
        }
    }

    /// The channel on which the releases of the lock `name` of this kind are announced (default
    /// prefix); a client's own channel of it adds `:<client id>`.
    pub fn channel(self, name: &str) -> String {
        format!("{}:unlock", self.key(name))
    }

    /// Waits until exactly `n` waiters queue on the lock `name` of this kind.
    ///
    /// # Panics
    ///
    /// If that does not happen within 5 seconds.
    pub async fn await_queued(self, server: &RedisServer, name: &str, n: i64) {
        let queue = format!("{}:queue", self.key(name));
        let queued = || server.cmd::<i64>(&["ZCARD", &queue]);
        assert!(
            eventually(Duration::from_secs(5), || queued() == n).await,
            "expected {n} waiters queued on {queue}, found {}",
            queued()
        );
    }

    /// The hold count of each owner of the lock `name` of this kind, as Redis keeps it: one
    /// entry per hold (an acquisition, or a read hold of the read-write lock), counting its
    /// re-entries.
    pub fn hold_counts(self, server: &RedisServer, name: &str) -> Vec<i64> {
        owner_counts(server, &self.key(name))
    }

    /// Asserts nothing holds the lock `name` of this kind and every key left of it has a TTL
    /// ([`assert_released`], [`assert_rw_released`]).
    ///
    /// # Panics
    ///
    /// When something is left held, or a key without TTL.
    pub fn assert_released(self, server: &RedisServer, name: &str) {
        match self {
            Self::Reentrant | Self::Fair => assert_released(server, name),
            Self::Read | Self::Write => assert_rw_released(server, name),
        }
    }

    /// The `lock-worker` mode queueing waiters in turn on this lock (`fair-turns`, `lock-turns`).
    ///
    /// # Panics
    ///
    /// For the read-write lock, which has no such mode.
    pub fn turns_mode(self) -> &'static str {
        match self {
            Self::Reentrant => "lock-turns",
            Self::Fair => "fair-turns",
            Self::Read | Self::Write => panic!("lock-worker has no turns mode for {self:?}"),
        }
    }
}

/// The commands a lock client sends itself (scripts run as `FCALL`, loaded by `FUNCTION LOAD`;
/// before Redis 7.0 as `EVALSHA`, loaded by `SCRIPT LOAD` after a `NOSCRIPT`), as
/// `INFO commandstats` names them.
pub const SENT_BY_A_LOCK_CLIENT: &[&str] = &[
    "fcall",
    "function|load",
    "evalsha",
    "eval",
    "subscribe",
    "unsubscribe",
    "ping",
    "script|load",
];

/// Client-sent commands per acquisition when `tasks_per_client` tasks of each of `clients`
/// clients (standing for processes: each has its own pub/sub connection) contend for one lock
/// of `family` for 2 s on a fresh server, holding it 1 ms each time. Checks that nothing is left
/// behind, and prints the figure.
///
/// # Panics
///
/// When a task fails or something is left behind.
pub async fn commands_per_acquisition_across(
    family: Family,
    clients: usize,
    tasks_per_client: usize,
) -> f64 {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    let server = RedisServer::start();
    let name = crate::unique_name("load");
    let mut connected = Vec::new();
    for _ in 0..clients {
        connected.push(LockClient::connect(&server.url()).await.expect("connect"));
    }
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let acquisitions = Arc::new(AtomicU64::new(0));
    let run_until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut handles = Vec::new();
    for client in &connected {
        for _ in 0..tasks_per_client {
            let (client, name) = (client.clone(), name.clone());
            let acquisitions = Arc::clone(&acquisitions);
            handles.push(tokio::spawn(async move {
                while tokio::time::Instant::now() < run_until {
                    let guard = family.acquire(&client, &name).await?;
                    acquisitions.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    guard.unlock().await?;
                }
                Ok::<_, LockError>(())
            }));
        }
    }
    for handle in handles {
        handle.await.expect("join").expect("task");
    }
    let acquired = acquisitions.load(Ordering::Relaxed) as f64;
    let sent = command_calls(&server, SENT_BY_A_LOCK_CLIENT) as f64;
    assert_released(&server, &name);
    assert_no_key_without_ttl(&server, &name);
    println!(
        "{family:?}, {clients} clients x {tasks_per_client} tasks: {acquired} acquisitions, {:.2} client commands per acquisition",
        sent / acquired
    );
    sent / acquired
}

/// What [`served_behind_a_killed_waiter`] saw.
#[derive(Debug)]
pub struct KilledWaiterRun {
    /// The server, the lock released and the live waiter's guard given back.
    pub server: RedisServer,
    /// The lock's name.
    pub name: String,
    /// How long the live waiter waited after the holder's release.
    pub waited: Duration,
    /// Whether the holder's release made the killed waiter the owner (the fair lock's direct
    /// hand-over), which it then held until its lease ran out: read from the lock's owner ids
    /// right after the release, where only the killed waiter's are not the test client's.
    pub handed_to_the_killed_waiter: bool,
}

/// A queued waiter's process SIGKILLed: nothing undoes its place in the queue, so a release may
/// name it and wake nobody. One `worker` process (the `lock-worker` binary) queues first on a
/// lock of `family` held with a 30 s fixed lease (so the holder's TTL bounds no one's sleep),
/// with `liveness` as its client's watchdog timeout; a live waiter queues behind it; the worker
/// is killed and the holder releases. Returns how long the live waiter waited, after checking
/// the killed waiter never ran with the lock (it may have been made the owner while dead).
///
/// # Panics
///
/// When a step fails.
pub async fn served_behind_a_killed_waiter(
    worker: &str,
    family: Family,
    liveness: Duration,
) -> KilledWaiterRun {
    let server = RedisServer::start();
    let name = crate::unique_name("killed-waiter");
    let client = client_with_watchdog(&server, liveness).await;
    let lease = Some(Duration::from_secs(30));
    let wait = Duration::from_secs(20);
    let acquire = |client: LockClient, name: String| async move {
        family.try_acquire(&client, &name, wait, lease).await
    };
    let holder = acquire(client.clone(), name.clone()).await.expect("holder");
    let mode = family.turns_mode();
    let liveness_ms = liveness.as_millis().to_string();
    let mut doomed = crate::Workers::command(worker)
        .worker([mode, &server.url(), &name, "killed", "1", &liveness_ms])
        .spawn();
    assert!(
        doomed.wait_for_stdout(0, "queued=1", Duration::from_secs(20)),
        "the worker did not queue: {}",
        doomed.stdout_so_far(0)
    );
    let waiter = tokio::spawn(acquire(client.clone(), name.clone()));
    await_queued(&server, &name, 2).await;
    doomed.kill(0);

    let released = tokio::time::Instant::now();
    holder.unlock().await.expect("unlock");
    let owners: Vec<String> = server.cmd(&["HKEYS", &family.key(&name)]);
    let handed_to_the_killed_waiter = owners
        .iter()
        .any(|field| is_owner_field(field) && !field.starts_with(client.id()));
    let guard = waiter
        .await
        .expect("join")
        .expect("served despite the killed waiter");
    let waited = released.elapsed();
    guard.unlock().await.expect("unlock");
    let turns: i64 = server.cmd(&["LLEN", &format!("turns:{name}")]);
    assert_eq!(turns, 0, "the killed waiter never ran with the lock");
    KilledWaiterRun {
        server,
        name,
        waited,
        handed_to_the_killed_waiter,
    }
}

/// Takes the lock `name` of `redlock` on every one of its masters, with `lease` (`None`:
/// watchdog), for a test that needs all of them: a Redlock returns once a quorum holds the
/// lock, and a master slower than the quorum (on a loaded machine) may be left out, so a take
/// that missed one is given back and taken again, up to 20 times.
///
/// # Panics
///
/// When an acquisition fails, or 20 in a row miss a master.
pub async fn redlock_on_every_master(
    redlock: &Redlock,
    name: &str,
    lease: Option<Duration>,
) -> RedlockGuard {
    let lock = redlock.lock(name);
    for _ in 0..20 {
        let guard = lock
            .try_acquire(Duration::from_secs(10), lease)
            .await
            .unwrap_or_else(|err| panic!("taking {name}: {err}"));
        if guard.masters_held() == redlock.clients().len() {
            return guard;
        }
        guard
            .unlock()
            .await
            .unwrap_or_else(|err| panic!("giving {name} back: {err}"));
    }
    panic!("20 acquisitions of {name} each missed a master");
}

/// Runs `scenario` for each of `families` at once, each as a task of its own (a scenario starts
/// its own servers), and panics naming every family it failed for, with its panic.
///
/// # Panics
///
/// When `scenario` panicked for any family.
pub async fn for_each_family<F, Fut>(families: impl IntoIterator<Item = Family>, scenario: F)
where
    F: Fn(Family) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runs: Vec<_> = families
        .into_iter()
        .map(|family| (family, tokio::spawn(scenario(family))))
        .collect();
    let mut failed = Vec::new();
    for (family, run) in runs {
        if let Err(err) = run.await {
            failed.push(format!("{family:?}: {err}"));
        }
    }
    assert!(failed.is_empty(), "failed for:\n{}", failed.join("\n"));
}
