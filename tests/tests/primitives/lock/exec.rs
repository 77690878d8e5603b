//! Lock-checked writes (DESIGN 4.2): `LockGuard::exec` runs a pipeline only while the guard's
//! owner holds the lock, checked by Redis in the same script; `lock_runtime::exec` does it for
//! the innermost held lock; `LockGuard::connection` refuses on the client once the lease is lost.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, LockGuard, distribute_lock};
use lock_tests::{
    Capability, RedisServer, TcpProxy,
    late::deliver_held,
    locks::{
        Family, assert_released_beside, assert_rw_released, connect, eventually, exec_records,
        for_each_family, lock_key, rw_holds,
    },
    server_version, skip_without, unique_name,
};
use redis::AsyncCommands;

/// The test's data key, in the lock's slot.
fn data_key(guard: &LockGuard) -> String {
    format!("{}:data", guard.hash_tag())
}

/// A pipeline writing `writer` into the data key and reading it back.
fn write(guard: &LockGuard, writer: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.hset(data_key(guard), "writer", writer)
        .ignore()
        .hget(data_key(guard), "writer");
    pipe
}

fn written(server: &RedisServer, name: &str) -> Option<String> {
    server.cmd(&["HGET", &format!("{}:data", lock_key(name)), "writer"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exclusive_hold_writes_while_it_holds() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    for family in [Family::Reentrant, Family::Fair, Family::Write] {
        let name = unique_name("exec-writes");
        let guard = family.acquire(&client, &name).await.expect("acquire");
        let (value,): (String,) = guard.exec(&write(&guard, "me")).await.expect("exec");
        assert_eq!(value, "me", "{family:?}");
        assert_eq!(written(&server, &name).as_deref(), Some("me"), "{family:?}");
        guard.unlock().await.expect("unlock");
    }
}

/// The replies are what the same pipeline sent directly gives: ignored commands left out, an
/// atomic pipeline's one array unwrapped, several values in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replies_are_the_pipelines_own() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let guard = client
        .lock(unique_name("exec-replies"))
        .acquire()
        .await
        .expect("acquire");
    let key = data_key(&guard);
    let mut pipe = redis::pipe();
    pipe.hset(&key, "a", 1)
        .ignore()
        .hincr(&key, "a", 2)
        .hget(&key, "missing")
        .hgetall(&key);
    let (counted, missing, all): (i64, Option<String>, Vec<(String, i64)>) =
        guard.exec(&pipe).await.expect("exec");
    assert_eq!(
        (counted, missing, all),
        (3, None, vec![("a".to_owned(), 3)])
    );

    let mut direct = redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut atomic = redis::pipe();
    atomic.atomic().hincr(&key, "a", 1).hget(&key, "a");
    let checked: (i64, i64) = guard.exec(&atomic).await.expect("atomic exec");
    let plain: (i64, i64) = atomic.query_async(&mut direct).await.expect("direct");
    assert_eq!(
        (checked.0 + 1, checked.1 + 1),
        plain,
        "same shape as sent directly"
    );

    // An empty pipeline, and a stream read that does not block (`XREAD` blocks only with
    // `BLOCK`), run as sent directly.
    let () = guard.exec(&redis::pipe()).await.expect("empty");
    let stream = format!("{}:stream", guard.hash_tag());
    let mut read = redis::pipe();
    read.cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("f")
        .arg("v")
        .ignore()
        .cmd("XREAD")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&stream)
        .arg(0);
    let (entries,): (redis::Value,) = guard.exec(&read).await.expect("XREAD without BLOCK");
    assert!(matches!(entries, redis::Value::Array(_)), "{entries:?}");
    let _: i64 = server.cmd(&["DEL", &key, &stream]);
    guard.unlock().await.expect("unlock");
}

/// A command's error as it runs (here `HINCRBY` of a string) is reported as the pipeline reports
/// it, and the other commands still ran, as in `MULTI`/`EXEC`: the error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_reported_and_the_others_ran() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-error");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let key = data_key(&guard);
    let mut pipe = redis::pipe();
    pipe.hset(&key, "writer", "me")
        .ignore()
        .hincr(&key, "writer", 1)
        .hset(&key, "after", "yes")
        .ignore();
    let err = guard
        .exec::<()>(&pipe)
        .await
        .expect_err("HINCRBY of a string");
    assert!(matches!(err, LockError::Redis { .. }), "{err}");
    assert!(err.to_string().contains("every command ran"), "{err}");
    let after: Option<String> = server.cmd(&["HGET", &key, "after"]);
    assert_eq!(after.as_deref(), Some("yes"));
    guard.unlock().await.expect("unlock");
}

/// After a force-unlock, a takeover by another owner, and a fixed lease running out, `exec`
/// writes nothing and says the lease is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_once_the_lock_is_not_this_owners() {
    let server = RedisServer::start();
    let (mine, other) = (connect(&server).await, connect(&server).await);
    let short = Some(Duration::from_millis(300));
    let wait = Duration::from_secs(2);

    let name = unique_name("exec-forced");
    let guard = mine.lock(&name).acquire().await.expect("acquire");
    assert!(other.lock(&name).force_unlock().await.expect("force"));
    let err = guard
        .exec::<(String,)>(&write(&guard, "stale"))
        .await
        .expect_err("forced");
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(
        written(&server, &name),
        None,
        "force-unlocked: nothing written"
    );

    let name = unique_name("exec-taken-over");
    let guard = mine
        .lock(&name)
        .try_acquire(wait, short)
        .await
        .expect("acquire");
    let taker = other
        .lock(&name)
        .try_acquire(wait, None)
        .await
        .expect("taken over");
    let _: (String,) = taker
        .exec(&write(&taker, "taker"))
        .await
        .expect("taker writes");
    let err = guard
        .exec::<(String,)>(&write(&guard, "stale"))
        .await
        .expect_err("taken");
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(written(&server, &name).as_deref(), Some("taker"));
    taker.unlock().await.expect("unlock");

    let name = unique_name("exec-expired");
    let guard = mine
        .lock(&name)
        .try_acquire(wait, short)
        .await
        .expect("acquire");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = guard
        .exec::<(String,)>(&write(&guard, "stale"))
        .await
        .expect_err("expired");
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(written(&server, &name), None, "expired: nothing written");
}

/// A write hold's own lease ends, though the lock's hash lives on for other holds: `exec`
/// checks the hold's lease, not only that the hash has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_hold_past_its_own_lease_writes_nothing() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-rw");
    let lock = client.read_write_lock(&name);
    let writing = lock
        .write()
        .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(300)))
        .await
        .expect("write");
    // A downgraded read hold keeps the hash alive past the write's lease.
    let reading = writing
        .scope(lock.read().acquire())
        .await
        .expect("downgrade");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = writing
        .exec::<(String,)>(&write(&writing, "stale"))
        .await
        .expect_err("the write's lease ended");
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(written(&server, &name), None);
    let refused = reading
        .exec::<(String,)>(&write(&reading, "reader"))
        .await
        .expect_err("read");
    assert!(
        matches!(
            refused,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{refused}"
    );
    reading.unlock().await.expect("unlock");
}

/// The holder's process is frozen (SIGSTOP) past its 500 ms lease while another owner takes
/// the lock and writes; thawed, its late write is refused by Redis and the data is the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_frozen_past_its_lease_is_refused_by_redis() {
    let server = RedisServer::start();
    let name = unique_name("exec-frozen");
    let mut holder = lock_tests::Workers::command(env!("CARGO_BIN_EXE_lock-worker"))
        .worker(["exec-late", &server.url(), &name, "500", "300"])
        .spawn();
    assert!(holder.wait_for_stdout(0, "held=1", Duration::from_secs(20)));
    holder.pause(0);
    let client = connect(&server).await;
    let taker = client
        .lock(&name)
        .try_acquire(Duration::from_secs(5), None)
        .await
        .expect("taken once the frozen holder's lease ran out");
    let _: (String,) = taker
        .exec(&write(&taker, "taker"))
        .await
        .expect("taker writes");
    holder.resume(0);
    assert!(
        holder.wait_for_stdout(0, "exec=", Duration::from_secs(10)),
        "the thawed holder tried its write"
    );
    assert!(
        holder.stdout_so_far(0).contains("exec=lease-lost"),
        "the late write was not refused: {}",
        holder.stdout_so_far(0)
    );
    assert_eq!(written(&server, &name).as_deref(), Some("taker"));
    taker.unlock().await.expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_cannot_run_in_a_script_are_refused_before_anything_runs() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-refused");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    for command in ["BLPOP", "SUBSCRIBE", "MULTI", "EVAL"] {
        let mut pipe = redis::pipe();
        pipe.hset(data_key(&guard), "writer", "first")
            .ignore()
            .cmd(command)
            .arg("x")
            .arg(0);
        let err = guard.exec::<()>(&pipe).await.expect_err(command);
        assert!(
            matches!(
                err,
                LockError::Config {
                    mistake: lock_runtime::Mistake::InvalidArgument,
                    ..
                }
            ),
            "{command}: {err}"
        );
        assert!(err.to_string().contains(command), "{err}");
    }
    assert_eq!(written(&server, &name), None, "nothing ran");
    guard.unlock().await.expect("unlock");
}

#[distribute_lock(key = "exec-attr:{id}", wait = "2s")]
async fn record(id: String, writer: &str) -> Result<String, LockError> {
    let mut pipe = redis::pipe();
    pipe.hset(format!("{{lock:exec-attr:{id}}}:data"), "writer", writer)
        .ignore()
        .hget(format!("{{lock:exec-attr:{id}}}:data"), "writer");
    let (value,): (String,) = lock_runtime::exec(&pipe).await?;
    Ok(value)
}

/// Inside an annotated function, `lock_runtime::exec` writes under the function's lock; outside
/// any held lock it is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_runtime_exec_writes_under_the_lock_held_around_it() {
    let server = RedisServer::start();
    lock_runtime::set_default_client(connect(&server).await);
    let id = unique_name("id");
    assert_eq!(record(id.clone(), "body").await.expect("record"), "body");
    assert_eq!(
        written(&server, &format!("exec-attr:{id}")).as_deref(),
        Some("body")
    );
    let mut pipe = redis::pipe();
    pipe.get("anything");
    let err = lock_runtime::exec::<()>(&pipe)
        .await
        .expect_err("no lock around");
    assert!(
        matches!(
            err,
            LockError::Config {
                mistake: lock_runtime::Mistake::Misuse,
                ..
            }
        ),
        "{err}"
    );
}

/// `connection()` sends commands while the lease is intact and refuses them once it is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_connection_refuses_once_the_lease_is_lost() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-connection");
    let guard = client
        .lock(&name)
        .try_acquire(Duration::from_secs(1), Some(Duration::from_millis(500)))
        .await
        .expect("acquire");
    let key = data_key(&guard);
    let mut connection = guard.connection();
    let sent: redis::RedisResult<()> = connection.hset(&key, "writer", "before").await;
    sent.expect("sent while held");
    guard.lease_lost().await;
    let refused: redis::RedisResult<()> = connection.hset(&key, "writer", "after").await;
    let err = refused.expect_err("refused once the lease is lost");
    assert!(err.to_string().contains(&name), "{err}");
    assert_eq!(written(&server, &name).as_deref(), Some("before"));
}

/// `[SET first 1, <command>, SET last 2]` under `guard`, atomic or not.
fn around(guard: &LockGuard, command: &redis::Cmd, atomic: bool) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    if atomic {
        pipe.atomic();
    }
    pipe.set(format!("{}:first", guard.hash_tag()), 1)
        .ignore()
        .add_command(command.clone())
        .ignore()
        .set(format!("{}:last", guard.hash_tag()), 2)
        .ignore();
    pipe
}

/// Panics unless `err` is a refusal that says nothing ran, and neither write around the refused
/// command landed.
fn assert_nothing_ran(server: &RedisServer, guard: &LockGuard, err: &LockError, what: &str) {
    let written: i64 = server.cmd(&[
        "EXISTS",
        &format!("{}:first", guard.hash_tag()),
        &format!("{}:last", guard.hash_tag()),
    ]);
    assert_eq!(written, 0, "{what}: {err}: a write around it landed");
    assert!(
        matches!(
            err,
            LockError::Config {
                mistake: lock_runtime::Mistake::InvalidArgument,
                ..
            }
        ),
        "{what}: {err}"
    );
    assert!(err.to_string().contains("nothing ran"), "{what}: {err}");
}

/// A command Redis would refuse before running it (wrong arity, unknown, refused in scripts
/// though the old deny list missed it, blocking, or changing the connection's database) makes
/// the whole pipeline run nowhere, atomic or not, as `MULTI`/`EXEC` discards a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_command_leaves_the_whole_pipeline_unrun() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-malformed");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let key = format!("{}:other", guard.hash_tag());
    let mut no_value = redis::cmd("SET");
    no_value.arg(&key);
    let mut unknown = redis::cmd("NO-SUCH-COMMAND");
    unknown.arg(&key);
    let mut no_script = redis::cmd("SCRIPT");
    no_script.arg("EXISTS").arg("0123");
    let mut no_subcommand = redis::cmd("OBJECT");
    no_subcommand.arg("NO-SUCH-SUBCOMMAND").arg(&key);
    let mut blocking = redis::cmd("BLMPOP");
    blocking.arg(0).arg(1).arg(&key).arg("LEFT");
    let mut blocking_read = redis::cmd("XREAD");
    blocking_read
        .arg("BLOCK")
        .arg(0)
        .arg("STREAMS")
        .arg(&key)
        .arg("$");
    let mut select = redis::cmd("SELECT");
    select.arg(1);
    let mut malformed = vec![
        ("SET without a value", no_value),
        ("an unknown command", unknown),
        ("SCRIPT EXISTS", no_script),
        ("BLMPOP", blocking),
        ("XREAD BLOCK", blocking_read),
        ("SELECT", select),
    ];
    // Redis before 7.0 describes no subcommand: the command itself refuses it as it runs.
    if server_version().redis_7_or_newer() {
        malformed.push(("an unknown subcommand", no_subcommand));
    }
    for (what, command) in malformed {
        for atomic in [true, false] {
            let err = guard
                .exec::<()>(&around(&guard, &command, atomic))
                .await
                .expect_err(what);
            assert_nothing_ran(&server, &guard, &err, what);
        }
    }
    guard.unlock().await.expect("unlock");
}

/// `SELECT` would move the later commands to another database while the caller's connection
/// stays: refused, so nothing lands in database 1 either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_is_refused_before_anything_runs() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-select");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let mut select = redis::cmd("SELECT");
    select.arg(1);
    let err = guard
        .exec::<()>(&around(&guard, &select, false))
        .await
        .expect_err("SELECT");
    assert_nothing_ran(&server, &guard, &err, "SELECT");
    assert!(err.to_string().contains("SELECT"), "{err}");
    let in_db_1: i64 = server.cmd(&[
        "EVAL",
        "redis.call('select', 1) return redis.call('dbsize')",
        "0",
    ]);
    assert_eq!(in_db_1, 0, "nothing written in database 1");
    guard.unlock().await.expect("unlock");
}

/// A command the client's ACL user may not run is refused before anything runs, as `EXEC`
/// discards a transaction with a `NOPERM` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_acl_refuses_leaves_the_whole_pipeline_unrun() {
    if skip_without(Capability::CommandChecksInScripts) {
        return;
    }
    let server = RedisServer::start();
    let _: () = server.cmd(&[
        "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-sadd",
    ]);
    let url = server.url().replacen("redis://", "redis://app:pw@", 1);
    let client = LockClient::connect(&url).await.expect("connect as app");
    let name = unique_name("exec-acl");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let mut sadd = redis::cmd("SADD");
    sadd.arg(format!("{}:set", guard.hash_tag())).arg("member");
    for atomic in [true, false] {
        let err = guard
            .exec::<()>(&around(&guard, &sadd, atomic))
            .await
            .expect_err("SADD is not app's");
        assert_nothing_ran(&server, &guard, &err, "SADD");
        assert!(err.to_string().contains("NOPERM"), "{err}");
    }
    guard.unlock().await.expect("unlock");
}

/// A command with more arguments than a Lua call can take (Redis's Lua stops at about 8 000
/// values) is refused before anything runs, with the limit; one at the limit runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_too_large_for_a_script_is_refused_before_anything_runs() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-large");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let set = format!("{}:set", guard.hash_tag());
    let sadd = |members: usize| {
        let mut sadd = redis::cmd("SADD");
        sadd.arg(&set).arg((0..members).collect::<Vec<_>>());
        sadd
    };
    for atomic in [true, false] {
        let err = guard
            .exec::<()>(&around(&guard, &sadd(10_000), atomic))
            .await
            .expect_err("10 000 members");
        assert_nothing_ran(&server, &guard, &err, "SADD of 10 000 members");
        assert!(err.to_string().contains("7997"), "{err}");
        let members: i64 = server.cmd(&["SCARD", &set]);
        assert_eq!(members, 0);
    }
    // SADD, the key and 7995 members: 7997 arguments, the most a command may have.
    let limit = LockGuard::EXEC_MAX_ARGUMENTS;
    assert_eq!(limit, 7997);
    let err = guard
        .exec::<()>(&around(&guard, &sadd(limit - 1), true))
        .await
        .expect_err("one past the limit");
    assert_nothing_ran(&server, &guard, &err, "one argument past the limit");
    let mut pipe = redis::pipe();
    pipe.add_command(sadd(limit - 2));
    let (added,): (usize,) = guard.exec(&pipe).await.expect("at the limit");
    assert_eq!(added, limit - 2);
    guard.unlock().await.expect("unlock");
}

/// Integer replies beyond 2^53 (past what a Lua number holds exactly) come back as Redis
/// stored them: a counter's new value exactly; any other such reply as an error that says
/// the commands ran, never a rounded number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_replies_beyond_2_pow_53_are_exact() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    let name = unique_name("exec-integers");
    let guard = client.lock(&name).acquire().await.expect("acquire");
    let (counter, hash) = (
        format!("{}:counter", guard.hash_tag()),
        format!("{}:hash", guard.hash_tag()),
    );
    for atomic in [true, false] {
        let _: () = server.cmd(&["SET", &counter, "9007199254740992"]);
        let _: () = server.cmd(&["HSET", &hash, "n", "-9223372036854775000"]);
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        pipe.incr(&counter, 1)
            .cmd("INCR")
            .arg(&counter)
            .cmd("INCRBY")
            .arg(&counter)
            .arg(i64::MAX - 9_007_199_254_740_994)
            .hincr(&hash, "n", -808)
            .cmd("DECR")
            .arg(&counter);
        let value: redis::Value = guard.exec(&pipe).await.expect("exec");
        let redis::Value::Array(replies) = value else {
            panic!("not an array: {value:?}");
        };
        assert_eq!(
            replies,
            [
                redis::Value::Int(9_007_199_254_740_993),
                redis::Value::Int(9_007_199_254_740_994),
                redis::Value::Int(i64::MAX),
                redis::Value::Int(i64::MIN),
                redis::Value::Int(i64::MAX - 1),
            ],
            "atomic: {atomic}"
        );
        let stored: String = server.cmd(&["GET", &counter]);
        assert_eq!(stored, (i64::MAX - 1).to_string());
    }
    // Small integers are left as they are.
    let mut pipe = redis::pipe();
    pipe.set(&counter, 41).ignore().incr(&counter, 1);
    let (small,): (i64,) = guard.exec(&pipe).await.expect("exec");
    assert_eq!(small, 42);

    // No exact way to carry BITFIELD's 64-bit reply: an error, and it says the commands ran.
    let bits = format!("{}:bits", guard.hash_tag());
    let mut pipe = redis::pipe();
    pipe.cmd("BITFIELD")
        .arg(&bits)
        .arg("SET")
        .arg("i64")
        .arg(0)
        .arg(i64::MAX)
        .ignore()
        .cmd("BITFIELD")
        .arg(&bits)
        .arg("GET")
        .arg("i64")
        .arg(0);
    let err = guard
        .exec::<(Vec<i64>,)>(&pipe)
        .await
        .expect_err("not exact in Lua");
    assert!(matches!(err, LockError::Redis { .. }), "{err}");
    assert!(err.to_string().contains("every command ran"), "{err}");
    let _: i64 = server.cmd(&["DEL", &counter, &hash, &bits]);
    guard.unlock().await.expect("unlock");
}

/// A lock of `family` held through a [`TcpProxy`] by a client with the default settings (a
/// request gets no reply after 3 s), for the late copies of an exec: its request queued on a
/// connection the client retires, delivered to Redis afterwards (DESIGN 3.2: up to ~15 minutes
/// later).
struct LateCopies {
    family: Family,
    server: RedisServer,
    proxy: TcpProxy,
    client: LockClient,
    name: String,
}

impl LateCopies {
    async fn start(family: Family, prefix: &str) -> Self {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(server.port()).await;
        let client = LockClient::connect(&proxy.url()).await.expect("connect");
        Self {
            family,
            server,
            proxy,
            client,
            name: unique_name(prefix),
        }
    }

    /// Takes the lock `name` (a fixed lease that outlasts the test, so no renewal shares the
    /// connection), and runs one exec: Redis has the scripts, and the client knows the
    /// commands, so what follows is one request each (a late copy of an `EVALSHA` Redis had
    /// never seen would run nothing, and hide what the test looks for).
    async fn warmed_up_guard(&self, name: &str) -> LockGuard {
        let guard = self
            .family
            .try_acquire(&self.client, name, WAIT, Some(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|err| panic!("{:?}: acquire: {err}", self.family));
        let (value,): (String,) = guard
            .exec(&write(&guard, "warm-up"))
            .await
            .unwrap_or_else(|err| panic!("{:?}: warm-up exec: {err}", self.family));
        assert_eq!(value, "warm-up");
        guard
    }

    /// Delivers what the proxy holds, and waits until Redis ran it.
    async fn deliver(&self) {
        deliver_held(&self.proxy, &format!("{:?}'s exec", self.family)).await;
    }

    /// The exec records in the lock's hash: the owners that ran a lock-checked write, with
    /// what each record says.
    fn exec_records(&self, name: &str) -> Vec<(String, String)> {
        let key = self.family.key(name);
        exec_records(&self.server, &key)
            .into_iter()
            .map(|owner| {
                let record: String = self.server.cmd(&["HGET", &key, &format!("~x:{owner}")]);
                (owner, record)
            })
            .collect()
    }

    /// Releases `guard`, which must still hold the lock, deletes the data the execs wrote, and
    /// checks nothing of the lock is left.
    async fn release(&self, guard: LockGuard, name: &str) {
        let family = self.family;
        assert!(
            !guard.is_lease_lost(),
            "{family:?}: the guard lost its lease"
        );
        guard
            .unlock()
            .await
            .unwrap_or_else(|err| panic!("{family:?}: unlock: {err}"));
        let _: i64 = self
            .server
            .cmd(&["DEL", &format!("{}:data", lock_key(name))]);
        family.assert_released(&self.server, name);
    }
}

/// How long the late-copy tests wait for a lock: it is free.
const WAIT: Duration = Duration::from_secs(2);

/// The exclusive holds, which run lock-checked writes.
const EXCLUSIVE: [Family; 3] = [Family::Reentrant, Family::Fair, Family::Write];

/// An exec whose request stalls on its connection: no reply within the response timeout, so the
/// client retires the connection. Its error must say for certain that the commands did not run,
/// and they must not run when the stalled request reaches Redis afterwards, though the same
/// owner still holds the lock. Before the fix the error said "unknown", and the late copy wrote.
async fn timed_out_exec(family: Family) {
    let late = LateCopies::start(family, "exec-timed-out").await;
    let guard = late.warmed_up_guard(&late.name).await;
    late.proxy.hold_connections();
    let err = guard
        .exec::<(String,)>(&write(&guard, "late copy"))
        .await
        .expect_err("no reply: the request is held");

    late.deliver().await;

    assert_eq!(
        written(&late.server, &late.name).as_deref(),
        Some("warm-up"),
        "{family:?}: the late copy of the exec ran"
    );
    assert!(
        err.to_string().contains("did not run, and never will"),
        "{family:?}: the error should say the commands did not run: {err}"
    );
    late.release(guard, &late.name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_exec_says_it_did_not_run_and_its_late_copy_runs_nothing() {
    for_each_family(EXCLUSIVE, timed_out_exec).await;
}

/// An exec that reached Redis and ran, whose reply was lost: the client times out, and its
/// error must say the commands ran (Redis's record of the exec's number says so). Before the
/// fix it said "unknown".
async fn exec_whose_reply_is_lost(family: Family) {
    let late = LateCopies::start(family, "exec-reply-lost").await;
    let guard = late.warmed_up_guard(&late.name).await;
    let pipe = write(&guard, "ran");
    let dropped_before = late.proxy.dropped_bytes();
    late.proxy.drop_replies(true);
    let (ran, ()) = tokio::join!(guard.exec::<(String,)>(&pipe), async {
        assert!(
            eventually(WAIT, || written(&late.server, &late.name).as_deref()
                == Some("ran"))
            .await,
            "{family:?}: set-up: the exec did not reach Redis"
        );
        // The exec ran; its reply is lost once the proxy has read and discarded it.
        assert!(
            eventually(WAIT, || late.proxy.dropped_bytes() > dropped_before).await,
            "{family:?}: set-up: the exec's reply was not dropped"
        );
        // Nothing else is sent on the connection that lost the reply before the client gives
        // up on it; the check of what ran goes out on a new one.
        late.proxy.drop_replies(false);
    });
    let err = ran.expect_err("the reply was lost");
    assert!(
        err.to_string().contains("they ran, all of them"),
        "{family:?}: the error should say the commands ran: {err}"
    );
    late.release(guard, &late.name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_whose_reply_is_lost_says_it_ran() {
    for_each_family(EXCLUSIVE, exec_whose_reply_is_lost).await;
}

/// Where an exec is cut short (its future dropped, as `tokio::time::timeout` does) while its
/// request is on the wire: at once, and at points up to well into the response timeout.
const CUTS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(20),
    Duration::from_millis(200),
    Duration::from_secs(1),
];

/// Execs cut short at every point of [`CUTS`] while their requests stall (one lock each, one
/// client): each number is spent in the background, so when the stalled requests reach Redis,
/// none of them runs, and every guard still holds its lock. Before the fix every late copy
/// wrote.
async fn execs_cut_short(family: Family) {
    let late = LateCopies::start(family, "exec-cut").await;
    let mut locks = Vec::new();
    for cut in CUTS {
        let name = unique_name(&format!("exec-cut-{}ms", cut.as_millis()));
        let guard = late.warmed_up_guard(&name).await;
        let warm = late.exec_records(&name);
        locks.push((cut, name, guard, warm));
    }
    late.proxy.hold_connections();
    for (cut, _, guard, _) in &locks {
        let pipe = write(guard, "late copy");
        let cut_short = tokio::time::timeout(*cut, guard.exec::<(String,)>(&pipe)).await;
        assert!(cut_short.is_err(), "{family:?}: an exec held came back");
    }
    // The numbers are spent in the background, on a new connection once the held one times out.
    eventually(Duration::from_secs(10), || {
        locks
            .iter()
            .all(|(_, name, _, warm)| late.exec_records(name) != *warm)
    })
    .await;

    late.deliver().await;

    for (cut, name, guard, _) in locks {
        assert_eq!(
            written(&late.server, &name).as_deref(),
            Some("warm-up"),
            "{family:?}: the exec cut at {cut:?} ran when its late copy landed"
        );
        late.release(guard, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_cut_short_never_runs_later() {
    for_each_family(EXCLUSIVE, execs_cut_short).await;
}

/// The record of an owner's execs lives in the lock's hash exactly as long as the owner's hold:
/// the exclusive locks' goes with the hash; a write hold's goes with the hold when it is
/// released, or dropped once its lease ended, while a read hold of its scope keeps the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_record_goes_with_its_hold() {
    let server = RedisServer::start();
    let client = connect(&server).await;
    for family in [Family::Reentrant, Family::Fair] {
        let name = unique_name("exec-record");
        let guard = family.acquire(&client, &name).await.expect("acquire");
        let _: (String,) = guard.exec(&write(&guard, "me")).await.expect("exec");
        assert_eq!(
            exec_records(&server, &family.key(&name)).len(),
            1,
            "{family:?}: the exec is recorded"
        );
        guard.unlock().await.expect("unlock");
        let data = format!("{}:data", lock_key(&name));
        assert_released_beside(&server, &name, &[&data]);
    }

    for lease in [None, Some(Duration::from_millis(300))] {
        let name = unique_name("exec-record-rw");
        let lock = client.read_write_lock(&name);
        let writing = lock.write().try_acquire(WAIT, lease).await.expect("write");
        let reading = writing
            .scope(lock.read().acquire())
            .await
            .expect("downgrade");
        let _: (String,) = writing.exec(&write(&writing, "me")).await.expect("exec");
        let key = Family::Write.key(&name);
        assert_eq!(exec_records(&server, &key).len(), 1, "the exec is recorded");
        match lease {
            None => writing.unlock().await.expect("unlock"),
            Some(lease) => {
                tokio::time::sleep(lease + Duration::from_millis(100)).await;
                // The next script that looks drops the ended hold: another reader's acquire.
                let other = connect(&server).await;
                other
                    .read_write_lock(&name)
                    .read()
                    .try_acquire(WAIT, None)
                    .await
                    .expect("a reader beside the downgraded one")
                    .unlock()
                    .await
                    .expect("unlock");
                drop(writing);
            }
        }
        assert_eq!(
            exec_records(&server, &key),
            Vec::<String>::new(),
            "lease {lease:?}: the write hold is gone, its exec record too"
        );
        assert_eq!(rw_holds(&server, &name), 1, "the read hold is left");
        reading.unlock().await.expect("unlock");
        let _: i64 = server.cmd(&["DEL", &format!("{}:data", lock_key(&name))]);
        assert_rw_released(&server, &name);
    }
}
