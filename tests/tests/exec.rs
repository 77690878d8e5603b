//! Lock-checked writes (DESIGN 4.2): `LockGuard::exec` runs a pipeline only while the guard's
//! owner holds the lock, checked by Redis in the same script; `lock_runtime::exec` does it for
//! the innermost held lock; `LockGuard::connection` refuses on the client once the lease is lost.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, LockGuard, distribute_lock};
use lock_tests::{
    RedisServer,
    locks::{Family, lock_key},
    unique_name,
};
use redis::AsyncCommands;

async fn connect(server: &RedisServer) -> LockClient {
    LockClient::connect(&server.url()).await.expect("connect")
}

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
    assert!(matches!(refused, LockError::Config { .. }), "{refused}");
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
        assert!(matches!(err, LockError::Config { .. }), "{command}: {err}");
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
    assert!(matches!(err, LockError::Config { .. }), "{err}");
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
    assert!(matches!(err, LockError::Config { .. }), "{what}: {err}");
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
    for (what, command) in [
        ("SET without a value", no_value),
        ("an unknown command", unknown),
        ("SCRIPT EXISTS", no_script),
        ("an unknown subcommand", no_subcommand),
        ("BLMPOP", blocking),
        ("XREAD BLOCK", blocking_read),
        ("SELECT", select),
    ] {
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
