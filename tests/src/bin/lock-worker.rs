//! A worker process for the cross-process tests: it contends for a lock with many tasks and
//! reports what it saw on stdout, one `key=value` line per fact.
//!
//! ```text
//! lock-worker counter URL NAME TASKS ITERATIONS [--no-lock]
//!     Each task ITERATIONS times: take the lock (unless --no-lock), read the counter, yield,
//!     write it back plus one, check the fencing token is above the last one stored, release.
//!     Prints `acquired=N`, `violations=N` (tokens not above the last seen) and `tokens=a,b,...`.
//! lock-worker redlock-counter URL NAME TASKS ITERATIONS MASTER_URL...
//!     The same as `counter`, under the lock NAME of a Redlock over the masters MASTER_URL...
//!     (in watchdog mode); the counter and the last token are kept on URL.
//! lock-worker macro-counter URL NAME TASKS ITERATIONS
//!     The same read-modify-write as `counter`, inside a `#[distribute_lock]` function using the
//!     default client. Prints `acquired=N`.
//! lock-worker hold URL NAME LEASE_MS WATCHDOG_MS
//!     Takes the lock (LEASE_MS = 0: watchdog mode, renewed by a client whose watchdog timeout is
//!     WATCHDOG_MS), prints `token=N`, then holds it until killed or the lease is lost.
//! lock-worker fair-turns URL NAME LABEL TASKS [WATCHDOG_MS]
//!     Queues TASKS waiters on the fair lock NAME one after another (each once the queue in Redis
//!     has grown by one), prints `queued=TASKS`, then each, when served, appends `LABEL-i` to the
//!     Redis list `turns:NAME` and releases after 5 ms. WATCHDOG_MS sets the client's watchdog
//!     timeout, which is also the liveness period of its queued waiters.
//! lock-worker lock-turns URL NAME LABEL TASKS [WATCHDOG_MS]
//!     The same through the reentrant lock NAME (whose waiters queue too, to be woken by name).
//! lock-worker rw-hold URL NAME MODE LEASE_MS WATCHDOG_MS
//!     Takes the read-write lock NAME in MODE (`read` or `write`; LEASE_MS = 0: watchdog mode,
//!     renewed by a client whose watchdog timeout is WATCHDOG_MS), prints `held=1` and
//!     `token=N`, then holds it until killed or the lease is lost.
//! lock-worker rw-mix URL NAME TASKS ITERATIONS
//!     Each task ITERATIONS times takes the read-write lock NAME, writing one time in three:
//!     a writer checks it is alone (Redis counters of the writers and readers inside), then
//!     reads the counter, yields, writes it back plus one; a reader counts itself in, checks no
//!     writer is inside, stays 2 ms. Prints `writes=N`, `violations=N` (a writer not alone, a
//!     reader beside a writer) and `max_readers=N` (the most readers inside at once, over every
//!     process, that this process saw).
//! lock-worker sem-mix URL NAME TASKS ITERATIONS TOTAL
//!     Each task ITERATIONS times takes 1 or 2 permits (in turn) of the semaphore NAME, whose
//!     permits number TOTAL (set by the test), counts them in a Redis counter of the permits in
//!     use, checks the counter never exceeds TOTAL, stays 2 ms, counts them out, releases.
//!     Prints `acquisitions=N`, `violations=N` and `max_in_use=N` (the most it saw in use).
//! lock-worker sem-hold URL NAME PERMITS WATCHDOG_MS
//!     Takes PERMITS permits of the semaphore NAME in watchdog mode (a client whose watchdog
//!     timeout is WATCHDOG_MS), prints `id=ID`, then holds them until killed or the lease is
//!     lost (then prints `lost=1` and exits with an error).
//! lock-worker exec-late URL NAME LEASE_MS DELAY_MS
//!     Takes the lock NAME with a fixed lease of LEASE_MS, prints `held=1`, waits DELAY_MS, then
//!     writes `{lock:NAME}:data` field `writer` = `late` through `LockGuard::exec` and prints
//!     `exec=ok`, `exec=lease-lost` (Redis refused: the lock was no longer this owner's) or
//!     `exec=error`.
//! lock-worker fenced-writer URL NAME ROUNDS LEASE_MS STORE [--pause]
//!     ROUNDS times: takes the lock NAME with a fixed lease of LEASE_MS, prints `held=TOKEN`,
//!     writes its token to a store on URL, prints `wrote=TOKEN:accepted` or
//!     `wrote=TOKEN:rejected`, releases. STORE `fenced` is a store that checks fencing tokens
//!     (a script keeping `NAME:store`'s token and refusing any token not above it); `unfenced`
//!     writes whatever comes. Every accepted write appends its token to the list `NAME:log`.
//!     With `--pause`, the first hold stops the process (`SIGSTOP` to itself, after printing
//!     `pausing`) before it writes, as a long GC pause or a frozen VM would, until the test
//!     resumes it. Prints `accepted=N` and `rejected=N` at the end.
//! lock-worker default NAME
//!     Takes and releases the lock through `lock_runtime::default_client()` (so through the
//!     `REDIS_URL` environment variable), printing `token=N`, or `error=MESSAGE` on failure.
//! lock-worker latch-wait URL NAME
//!     Prints `waiting`, waits (without limit, on a client with default settings) until the
//!     count-down latch NAME is at zero, prints `released` and exits.
//! lock-worker drop-and-exit URL NAME
//!     Takes the lock NAME, drops its guard (the release runs in the background), waits for it
//!     with `LockClient::flush`, prints `flushed=1` and exits at once, as a service does at the
//!     end of its shutdown.
//! ```

use std::{process::ExitCode, time::Duration};

use lock_runtime::{
    Lock, LockClient, LockError, LockGuard, Redlock, RedlockGuard, RedlockLock, distribute_lock,
};
use redis::AsyncCommands;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["counter", url, name, tasks, iterations, rest @ ..] => {
            let locker = if rest == ["--no-lock"] {
                Ok(Locker::Nothing)
            } else {
                LockClient::connect(url)
                    .await
                    .map(|client| Locker::Lock(client.lock(*name)))
            };
            counter(url, name, parse(tasks), parse(iterations), locker).await
        }
        [
            "redlock-counter",
            url,
            name,
            tasks,
            iterations,
            masters @ ..,
        ] => {
            let locker = redlock(masters)
                .await
                .map(|redlock| Locker::Redlock(redlock.lock(*name)));
            counter(url, name, parse(tasks), parse(iterations), locker).await
        }
        ["hold", url, name, lease_ms, watchdog_ms] => {
            hold(url, name, parse(lease_ms), parse(watchdog_ms)).await
        }
        ["macro-counter", url, name, tasks, iterations] => {
            macro_counter(url, name, parse(tasks), parse(iterations)).await
        }
        [
            mode @ ("fair-turns" | "lock-turns"),
            url,
            name,
            label,
            tasks,
            rest @ ..,
        ] => {
            let watchdog = rest.first().map_or(Duration::from_secs(30), |ms| {
                Duration::from_millis(parse(ms))
            });
            let fair = *mode == "fair-turns";
            turns(url, name, label, parse(tasks), watchdog, fair).await
        }
        ["rw-hold", url, name, mode, lease_ms, watchdog_ms] => {
            rw_hold(url, name, mode, parse(lease_ms), parse(watchdog_ms)).await
        }
        ["rw-mix", url, name, tasks, iterations] => {
            rw_mix(url, name, parse(tasks), parse(iterations)).await
        }
        ["sem-mix", url, name, tasks, iterations, total] => {
            sem_mix(url, name, parse(tasks), parse(iterations), parse(total)).await
        }
        ["sem-hold", url, name, permits, watchdog_ms] => {
            sem_hold(url, name, parse(permits), parse(watchdog_ms)).await
        }
        ["exec-late", url, name, lease_ms, delay_ms] => {
            exec_late(url, name, parse(lease_ms), parse(delay_ms)).await
        }
        [
            "fenced-writer",
            url,
            name,
            rounds,
            lease_ms,
            store,
            rest @ ..,
        ] => {
            let pause = rest == ["--pause"];
            fenced_writer(url, name, parse(rounds), parse(lease_ms), store, pause).await
        }
        ["default", name] => through_the_default_client(name).await,
        ["latch-wait", url, name] => latch_wait(url, name).await,
        ["drop-and-exit", url, name] => drop_and_exit(url, name).await,
        _ => {
            eprintln!("usage: see the doc comment of tests/src/bin/lock-worker.rs; got {args:?}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lock-worker failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse(number: &str) -> u64 {
    number
        .parse()
        .unwrap_or_else(|_| panic!("expected a number, got {number:?}"))
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// What `counter` takes around each read-modify-write.
enum Locker {
    Nothing,
    Lock(Lock),
    Redlock(RedlockLock),
}

/// A hold `counter` took: its token, and its release.
enum Held {
    Lock(LockGuard),
    Redlock(RedlockGuard),
}

impl Held {
    fn fencing_token(&self) -> u64 {
        match self {
            Self::Lock(guard) => guard.fencing_token(),
            Self::Redlock(guard) => guard.fencing_token(),
        }
    }

    async fn unlock(self) -> Result<(), LockError> {
        match self {
            Self::Lock(guard) => guard.unlock().await,
            // A master killed under the hold cannot confirm its release; if that leaves fewer
            // than a quorum confirming, the rest frees itself when the lease runs out.
            Self::Redlock(guard) => match guard.unlock().await {
                Err(LockError::NoQuorum { .. }) => Ok(()),
                outcome => outcome,
            },
        }
    }
}

impl Locker {
    async fn take(&self) -> Result<Option<Held>, Failure> {
        Ok(match self {
            Self::Nothing => None,
            Self::Lock(lock) => Some(Held::Lock(lock.acquire().await?)),
            Self::Redlock(lock) => Some(Held::Redlock(lock.acquire().await?)),
        })
    }
}

/// A Redlock over a client of each of `masters`.
async fn redlock(masters: &[&str]) -> Result<Redlock, LockError> {
    let mut clients = Vec::new();
    for master in masters {
        clients.push(LockClient::connect(master).await?);
    }
    Redlock::new(clients)
}

async fn counter(
    url: &str,
    name: &str,
    tasks: u64,
    iterations: u64,
    locker: Result<Locker, LockError>,
) -> Result<(), Failure> {
    let locker = std::sync::Arc::new(locker?);
    let redis = redis::Client::open(url)?;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let locker = std::sync::Arc::clone(&locker);
        let mut connection = redis.get_multiplexed_async_connection().await?;
        let name = name.to_owned();
        handles.push(tokio::spawn(async move {
            let counter_key = format!("{name}:counter");
            let last_token_key = format!("{name}:last-token");
            let mut tokens = Vec::new();
            let mut violations = 0u64;
            for _ in 0..iterations {
                let guard = locker.take().await?;
                let value: u64 = connection
                    .get::<_, Option<u64>>(&counter_key)
                    .await?
                    .unwrap_or(0);
                if let Some(guard) = &guard {
                    let token = guard.fencing_token();
                    let last: u64 = connection
                        .get::<_, Option<u64>>(&last_token_key)
                        .await?
                        .unwrap_or(0);
                    if token <= last {
                        violations += 1;
                    }
                    let () = connection.set(&last_token_key, token).await?;
                    tokens.push(token);
                }
                // Give every other task the chance to read the same value: without the lock, the
                // writes below then overwrite each other.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let () = connection.set(&counter_key, value + 1).await?;
                if let Some(guard) = guard {
                    guard.unlock().await?;
                }
            }
            Ok::<_, Failure>((tokens, violations))
        }));
    }
    let mut acquired = 0;
    let mut violations = 0;
    let mut tokens = Vec::new();
    for handle in handles {
        let (task_tokens, task_violations) = handle.await??;
        acquired += task_tokens.len();
        violations += task_violations;
        tokens.extend(task_tokens);
    }
    let tokens: Vec<String> = tokens.iter().map(u64::to_string).collect();
    println!("acquired={acquired}");
    println!("violations={violations}");
    println!("tokens={}", tokens.join(","));
    Ok(())
}

/// The store of `fenced-writer fenced`: accepts a write only with a token above the last it
/// accepted, as a database checking fencing tokens would.
const FENCED_WRITE: &str = "
local last = tonumber(redis.call('hget', KEYS[1], 'token') or '0')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('hset', KEYS[1], 'token', ARGV[1])
redis.call('rpush', KEYS[2], ARGV[1])
return 1";

/// The store of `fenced-writer unfenced`: accepts every write.
const UNFENCED_WRITE: &str = "
redis.call('hset', KEYS[1], 'token', ARGV[1])
redis.call('rpush', KEYS[2], ARGV[1])
return 1";

async fn fenced_writer(
    url: &str,
    name: &str,
    rounds: u64,
    lease_ms: u64,
    store: &str,
    pause: bool,
) -> Result<(), Failure> {
    let client = LockClient::connect(url).await?;
    let mut connection = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let write = redis::Script::new(match store {
        "fenced" => FENCED_WRITE,
        "unfenced" => UNFENCED_WRITE,
        other => return Err(format!("STORE is `fenced` or `unfenced`, not {other:?}").into()),
    });
    let lock = client.lock(name);
    let (mut accepted, mut rejected) = (0, 0);
    for round in 0..rounds {
        let guard = lock
            .try_acquire(
                Duration::from_secs(20),
                Some(Duration::from_millis(lease_ms)),
            )
            .await?;
        let token = guard.fencing_token();
        println!("held={token}");
        if pause && round == 0 {
            println!("pausing");
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP)?;
        }
        let written: i64 = write
            .key(format!("{name}:store"))
            .key(format!("{name}:log"))
            .arg(token)
            .invoke_async(&mut connection)
            .await?;
        if written == 1 {
            accepted += 1;
            println!("wrote={token}:accepted");
        } else {
            rejected += 1;
            println!("wrote={token}:rejected");
        }
        // A paused holder's lease ran out: its release finds the lock another's.
        let _ = guard.unlock().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("accepted={accepted}");
    println!("rejected={rejected}");
    Ok(())
}

async fn hold(url: &str, name: &str, lease_ms: u64, watchdog_ms: u64) -> Result<(), Failure> {
    let client = LockClient::builder()
        .url(url)
        .watchdog_timeout(Duration::from_millis(watchdog_ms))
        .build()
        .await?;
    let lease = (lease_ms > 0).then(|| Duration::from_millis(lease_ms));
    let guard = client
        .lock(name)
        .try_acquire(Duration::from_secs(30), lease)
        .await?;
    println!("token={}", guard.fencing_token());
    guard.lease_lost().await;
    Err(LockError::LeaseLost {
        name: name.to_owned(),
    })?
}

async fn turns(
    url: &str,
    name: &str,
    label: &str,
    tasks: u64,
    watchdog: Duration,
    fair: bool,
) -> Result<(), Failure> {
    let client = LockClient::builder()
        .url(url)
        .watchdog_timeout(watchdog)
        .build()
        .await?;
    let mut redis = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let queue = format!("{{lock:{name}}}:queue");
    let mut waiters = Vec::new();
    for i in 0..tasks {
        let queued_before: u64 = redis.zcard(&queue).await?;
        let (client, name) = (client.clone(), name.to_owned());
        let mut turns = redis.clone();
        let (turns_key, turn) = (format!("turns:{name}"), format!("{label}-{i}"));
        waiters.push(tokio::spawn(async move {
            let wait = Duration::from_secs(30);
            let guard = if fair {
                client.fair_lock(&name).try_acquire(wait, None).await?
            } else {
                client.lock(&name).try_acquire(wait, None).await?
            };
            let _: u64 = turns.rpush(&turns_key, &turn).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
            guard.unlock().await?;
            Ok::<_, Failure>(())
        }));
        while redis.zcard::<_, u64>(&queue).await? <= queued_before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    println!("queued={tasks}");
    for waiter in waiters {
        waiter.await??;
    }
    Ok(())
}

async fn rw_hold(
    url: &str,
    name: &str,
    mode: &str,
    lease_ms: u64,
    watchdog_ms: u64,
) -> Result<(), Failure> {
    let client = LockClient::builder()
        .url(url)
        .watchdog_timeout(Duration::from_millis(watchdog_ms))
        .build()
        .await?;
    let lease = (lease_ms > 0).then(|| Duration::from_millis(lease_ms));
    let lock = client.read_write_lock(name);
    let wait = Duration::from_secs(30);
    let guard = match mode {
        "read" => lock.read().try_acquire(wait, lease).await?,
        "write" => lock.write().try_acquire(wait, lease).await?,
        other => return Err(format!("mode must be `read` or `write`, not {other:?}").into()),
    };
    println!("held=1");
    println!("token={}", guard.fencing_token());
    guard.lease_lost().await;
    Err(LockError::LeaseLost {
        name: name.to_owned(),
    })?
}

async fn rw_mix(url: &str, name: &str, tasks: u64, iterations: u64) -> Result<(), Failure> {
    let client = LockClient::connect(url).await?;
    let redis = redis::Client::open(url)?;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let lock = client.read_write_lock(name);
        let mut connection = redis.get_multiplexed_async_connection().await?;
        let name = name.to_owned();
        handles.push(tokio::spawn(async move {
            let (counter, writers, readers) = (
                format!("{name}:counter"),
                format!("{name}:writers"),
                format!("{name}:readers"),
            );
            let (mut writes, mut violations, mut most) = (0u64, 0u64, 0i64);
            for i in 0..iterations {
                if (task + i) % 3 == 0 {
                    let guard = lock.write().acquire().await?;
                    let inside: i64 = connection.incr(&writers, 1).await?;
                    let reading: Option<i64> = connection.get(&readers).await?;
                    if inside != 1 || reading.unwrap_or(0) != 0 {
                        violations += 1;
                    }
                    let value: Option<u64> = connection.get(&counter).await?;
                    // Let every other task run: without exclusion, writes overwrite each other.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let () = connection.set(&counter, value.unwrap_or(0) + 1).await?;
                    let _: i64 = connection.decr(&writers, 1).await?;
                    guard.unlock().await?;
                    writes += 1;
                } else {
                    let guard = lock.read().acquire().await?;
                    let inside: i64 = connection.incr(&readers, 1).await?;
                    most = most.max(inside);
                    let writing: Option<i64> = connection.get(&writers).await?;
                    if writing.unwrap_or(0) != 0 {
                        violations += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let _: i64 = connection.decr(&readers, 1).await?;
                    guard.unlock().await?;
                }
            }
            Ok::<_, Failure>((writes, violations, most))
        }));
    }
    let (mut writes, mut violations, mut most) = (0, 0, 0);
    for handle in handles {
        let (task_writes, task_violations, task_most) = handle.await??;
        writes += task_writes;
        violations += task_violations;
        most = most.max(task_most);
    }
    println!("writes={writes}");
    println!("violations={violations}");
    println!("max_readers={most}");
    Ok(())
}

async fn sem_mix(
    url: &str,
    name: &str,
    tasks: u64,
    iterations: u64,
    total: u64,
) -> Result<(), Failure> {
    let client = LockClient::connect(url).await?;
    let redis = redis::Client::open(url)?;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let semaphore = client.semaphore(name);
        let mut connection = redis.get_multiplexed_async_connection().await?;
        let in_use = format!("{name}:in-use");
        handles.push(tokio::spawn(async move {
            let (mut violations, mut most) = (0u64, 0u64);
            for i in 0..iterations {
                let wanted = 1 + u32::from((task + i) % 2 == 1);
                let permit = semaphore.acquire(wanted).await?;
                let now: u64 = connection.incr(&in_use, wanted).await?;
                most = most.max(now);
                if now > total {
                    violations += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                let _: i64 = connection.decr(&in_use, wanted).await?;
                permit.release().await?;
            }
            Ok::<_, Failure>((violations, most))
        }));
    }
    let (mut violations, mut most) = (0, 0);
    for handle in handles {
        let (task_violations, task_most) = handle.await??;
        violations += task_violations;
        most = most.max(task_most);
    }
    println!("acquisitions={}", tasks * iterations);
    println!("violations={violations}");
    println!("max_in_use={most}");
    Ok(())
}

async fn sem_hold(url: &str, name: &str, permits: u64, watchdog_ms: u64) -> Result<(), Failure> {
    let client = LockClient::builder()
        .url(url)
        .watchdog_timeout(Duration::from_millis(watchdog_ms))
        .build()
        .await?;
    let permit = client
        .semaphore(name)
        .try_acquire(u32::try_from(permits)?, Duration::from_secs(30), None)
        .await?;
    println!("id={}", permit.id());
    permit.lease_lost().await;
    println!("lost=1");
    Err(LockError::LeaseLost {
        name: name.to_owned(),
    })?
}

async fn exec_late(url: &str, name: &str, lease_ms: u64, delay_ms: u64) -> Result<(), Failure> {
    let client = LockClient::connect(url).await?;
    let guard = client
        .lock(name)
        .try_acquire(
            Duration::from_secs(5),
            Some(Duration::from_millis(lease_ms)),
        )
        .await?;
    println!("held=1");
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    let mut pipe = redis::pipe();
    pipe.hset(format!("{}:data", guard.hash_tag()), "writer", "late")
        .ignore();
    match guard.exec::<()>(&pipe).await {
        Ok(()) => println!("exec=ok"),
        Err(err) if err.is_lease_lost() => println!("exec=lease-lost"),
        Err(err) => println!("exec=error {err}"),
    }
    Ok(())
}

async fn through_the_default_client(name: &str) -> Result<(), Failure> {
    let outcome = async {
        let guard = lock_runtime::default_client()
            .await?
            .lock(name)
            .acquire()
            .await?;
        let token = guard.fencing_token();
        guard.unlock().await?;
        Ok::<_, LockError>(token)
    };
    match outcome.await {
        Ok(token) => println!("token={token}"),
        Err(err) => println!("error={err}"),
    }
    Ok(())
}

async fn drop_and_exit(url: &str, name: &str) -> Result<(), Failure> {
    let client = LockClient::connect(url).await?;
    drop(client.lock(name).acquire().await?);
    client.flush().await;
    println!("flushed=1");
    Ok(())
}

async fn latch_wait(url: &str, name: &str) -> Result<(), Failure> {
    let latch = LockClient::connect(url).await?.count_down_latch(name);
    println!("waiting");
    latch.wait().await?;
    println!("released");
    Ok(())
}

/// One unit of the read-modify-write, under the lock named after the counter.
#[distribute_lock(key = "{name}", wait = "60s")]
async fn increment(
    name: &str,
    connection: &mut redis::aio::MultiplexedConnection,
) -> Result<(), Failure> {
    let counter_key = format!("{name}:counter");
    let value: u64 = connection
        .get::<_, Option<u64>>(&counter_key)
        .await?
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let () = connection.set(&counter_key, value + 1).await?;
    Ok(())
}

async fn macro_counter(url: &str, name: &str, tasks: u64, iterations: u64) -> Result<(), Failure> {
    lock_runtime::set_default_client(LockClient::connect(url).await?);
    let redis = redis::Client::open(url)?;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let mut connection = redis.get_multiplexed_async_connection().await?;
        let name = name.to_owned();
        handles.push(tokio::spawn(async move {
            for _ in 0..iterations {
                increment(&name, &mut connection).await?;
            }
            Ok::<_, Failure>(iterations)
        }));
    }
    let mut acquired = 0;
    for handle in handles {
        acquired += handle.await??;
    }
    println!("acquired={acquired}");
    Ok(())
}
