//! `lock-cli` run as a process against a real Redis (the kit's), as an operator runs it: what it
//! prints, in text and JSON, and its exit status; at a terminal (tmux), what it shows and asks.

mod support;
mod tmux;

use std::{path::Path, process::Stdio, time::Duration};

use lock_runtime::{LockClient, LockError, LockGuard};
use lock_tests::{
    RedisCluster, RedisServer, SentinelRedis,
    locks::{await_queued, client_named},
    unique_name,
};
use serde_json::Value;
use support::{assert_exit, json, lock_cli, next_line, run, stderr, stdout};
use tmux::Terminal;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    task::JoinHandle,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_tells_a_free_lock_from_a_held_one_in_text_and_json() {
    let server = RedisServer::start();
    let holding = client_named(&server, "orders-api@host-3").await;
    let name = unique_name("cli-inspect");

    let free = run(&server, &["inspect", &name]).await;
    assert_exit(&free, 0);
    assert!(
        stdout(&free).starts_with(&format!("lock `{name}`: free\n")),
        "{}",
        stdout(&free)
    );
    let free = json(&run(&server, &["--json", "inspect", &name]).await);
    assert_eq!(free["name"], name.as_str());
    // Nothing of that name exists: every kind is null.
    for kind in ["lock", "read_write_lock", "semaphore", "count_down_latch"] {
        assert!(free[kind].is_null(), "{kind}: {free}");
    }

    let guard = holding.lock(&name).acquire().await.expect("free");
    let held = run(&server, &["inspect", &name]).await;
    assert_exit(&held, 0);
    let text = stdout(&held);
    assert!(
        text.starts_with(&format!("lock `{name}`: held\n")),
        "{text}"
    );
    assert!(text.contains("holder:      orders-api@host-3\n"), "{text}");
    assert!(text.contains("holds:       1\n"), "{text}");
    assert!(
        text.contains(&format!("last token:  {}\n", guard.fencing_token())),
        "{text}"
    );

    let held = json(&run(&server, &["inspect", &name, "--json"]).await);
    let held = &held["lock"];
    assert_eq!(held["kind"], "lock");
    assert_eq!(held["held"], true);
    let holder = &held["holder"];
    assert_eq!(holder["client_name"], "orders-api@host-3");
    assert_eq!(holder["hold_count"], 1);
    let owner = holder["owner"].as_str().expect("an owner id");
    assert!(owner.starts_with(&format!("{}:", holding.id())), "{owner}");
    let ttl = holder["ttl_ms"].as_u64().expect("a lease");
    assert!(ttl > 20_000 && ttl <= 30_000, "watchdog lease: {ttl}");
    assert!(holder["held_for_ms"].as_u64().is_some(), "{held}");
    assert_eq!(held["last_fencing_token"], guard.fencing_token());
    guard.unlock().await.expect("unlock");
}

/// `--prefix` reaches locks of a client with another key prefix; without it, the default's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_follows_the_key_prefix() {
    let server = RedisServer::start();
    let billing = LockClient::builder()
        .url(server.url())
        .key_prefix("billing")
        .build()
        .await
        .expect("connect");
    let name = unique_name("cli-prefix");
    let guard = billing.lock(&name).acquire().await.expect("free");
    let seen = json(
        &run(
            &server,
            &["--json", "--prefix", "billing", "inspect", &name],
        )
        .await,
    );
    assert_eq!(seen["lock"]["held"], true, "{seen}");
    let default = json(&run(&server, &["--json", "inspect", &name]).await);
    assert!(default["lock"].is_null(), "{default}");
    guard.unlock().await.expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_finds_the_held_locks_matching_the_pattern() {
    let server = RedisServer::start();
    let client = client_named(&server, "lister").await;
    let base = unique_name("cli-list");
    let (first, second) = (format!("{base}:1"), format!("{base}:2"));
    let guards = [
        client.lock(&first).acquire().await.expect("free"),
        client.lock(&second).acquire().await.expect("free"),
        client.lock("elsewhere").acquire().await.expect("free"),
    ];
    let pattern = format!("{base}:*");

    let listed = run(&server, &["list", "--pattern", &pattern]).await;
    assert_exit(&listed, 0);
    let lines: Vec<_> = stdout(&listed).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // The kind column, the names padded to one width, the state.
    assert!(
        lines[0].starts_with(&format!("lock              {first}  held by lister for ")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("lock              {second}  held by lister for ")),
        "{lines:?}"
    );

    let listed = json(&run(&server, &["list", "--pattern", &pattern, "--json"]).await);
    let names: Vec<_> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|lock| {
            assert_eq!(lock["kind"], "lock", "{lock}");
            (lock["name"].as_str().expect("a name"), lock["held"].clone())
        })
        .collect();
    assert_eq!(
        names,
        [
            (first.as_str(), Value::Bool(true)),
            (second.as_str(), Value::Bool(true))
        ]
    );
    let every = json(&run(&server, &["list", "--json", "--limit", "2"]).await);
    assert_eq!(every.as_array().map(Vec::len), Some(2), "{every}");

    for guard in guards {
        guard.unlock().await.expect("unlock");
    }
    let none = run(&server, &["list", "--pattern", &pattern]).await;
    assert_exit(&none, 0);
    assert!(
        stdout(&none)
            .starts_with("no lock, read-write lock, semaphore or count-down latch matching"),
        "{}",
        stdout(&none)
    );
}

/// `--cluster` reaches a Redis Cluster: `list` walks every primary, and `inspect` finds a lock
/// whatever node owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_inspect_reach_every_primary_of_a_cluster() {
    let cluster = RedisCluster::start(3);
    let client = LockClient::builder()
        .cluster(cluster.urls())
        .client_name("clustered")
        .build()
        .await
        .expect("connect");
    let base = unique_name("cli-cluster");
    let names: Vec<String> = (0..6).map(|i| format!("{base}:{i}")).collect();
    let mut guards = Vec::new();
    for name in &names {
        guards.push(client.lock(name).acquire().await.expect("free"));
    }
    let owners: std::collections::BTreeSet<u16> = names
        .iter()
        .map(|name| {
            cluster
                .node_for_key(lock_tests::locks::lock_key(name))
                .port()
        })
        .collect();
    assert!(owners.len() > 1, "the locks live on several primaries");

    let seeds = cluster.urls().join(",");
    let cli = |args: &[&str]| lock_cli().arg("--cluster").arg(&seeds).args(args).output();
    let pattern = format!("{base}:*");
    let listed = json(
        &cli(&["list", "--json", "--pattern", &pattern])
            .await
            .expect("runs"),
    );
    let mut listed: Vec<String> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|lock| lock["name"].as_str().expect("a name").to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, names);
    let seen = json(&cli(&["--json", "inspect", &names[5]]).await.expect("runs"));
    assert_eq!(seen["lock"]["holder"]["client_name"], "clustered");
    for guard in guards {
        guard.unlock().await.expect("unlock");
    }
}

/// `--sentinel` with `--sentinel-master` finds the primary through the Sentinels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_finds_the_primary_through_the_sentinels() {
    let redis = SentinelRedis::start(1, 3);
    let client = LockClient::builder()
        .sentinel(SentinelRedis::MASTER_NAME, redis.urls())
        .client_name("sentinel-holder")
        .build()
        .await
        .expect("connect");
    let name = unique_name("cli-sentinel");
    let guard = client.lock(&name).acquire().await.expect("free");
    let seen = lock_cli()
        .arg("--sentinel")
        .arg(redis.urls().join(","))
        .args([
            "--sentinel-master",
            SentinelRedis::MASTER_NAME,
            "--json",
            "inspect",
            &name,
        ])
        .output()
        .await
        .expect("runs");
    assert_eq!(
        json(&seen)["lock"]["holder"]["client_name"],
        "sentinel-holder"
    );
    let without_master = lock_cli()
        .arg("--sentinel")
        .arg(redis.urls().join(","))
        .args(["inspect", &name])
        .output()
        .await
        .expect("runs");
    assert_exit(&without_master, 2);
    guard.unlock().await.expect("unlock");
}

/// `--tls-ca` reaches a `rediss://` server whose certificate a private CA signed; without it
/// the server is refused (exit 1, the reason on stderr), and a missing file is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_reaches_a_tls_server_with_its_ca() {
    if lock_tests::skip_without(lock_tests::Capability::Tls) {
        return;
    }
    let server = RedisServer::builder().tls(true).start();
    let ca = server.dir().join("cli-ca.pem");
    std::fs::write(&ca, server.tls_ca_pem()).expect("write the CA");
    let ca = ca.to_string_lossy().into_owned();
    let holding = client_named(&server, "over-plain").await;
    let name = unique_name("cli-tls");
    let guard = holding.lock(&name).acquire().await.expect("free");
    let tls = |args: &[&str]| {
        lock_cli()
            .arg("--url")
            .arg(server.tls_url())
            .args(args)
            .output()
    };

    let seen = json(
        &tls(&["--tls-ca", &ca, "--json", "inspect", &name])
            .await
            .expect("runs"),
    );
    assert_eq!(seen["lock"]["holder"]["client_name"], "over-plain");
    let refused = tls(&["inspect", &name]).await.expect("runs");
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains(&server.tls_url()),
        "{}",
        stderr(&refused)
    );
    let missing = tls(&["--tls-ca", "/nonexistent/ca.pem", "inspect", &name])
        .await
        .expect("runs");
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("/nonexistent/ca.pem"),
        "{}",
        stderr(&missing)
    );
    guard.unlock().await.expect("unlock");
}

/// A script piping `y` is not a person answering: without `--yes` and without a terminal,
/// `force-unlock` refuses at once and reads nothing; with `--yes` it deletes the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_refuses_without_yes_off_a_terminal_and_frees_the_lock_with_it() {
    let server = RedisServer::start();
    let holding = client_named(&server, "stuck-job").await;
    let waiting = client_named(&server, "next-job").await;
    let name = unique_name("cli-force");
    let lock = holding.lock(&name);
    let guard = lock.acquire().await.expect("free");

    let mut piped = lock_cli()
        .arg("--url")
        .arg(server.url())
        .args(["force-unlock", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lock-cli starts");
    let mut stdin = piped.stdin.take().expect("piped");
    if let Err(err) = stdin.write_all(b"y\n").await {
        // It may have refused and ended already.
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    // Held open: a prompt reading stdin would wait here, and the timeout below would fail.
    let refused = tokio::time::timeout(Duration::from_secs(10), piped.wait_with_output())
        .await
        .expect("refuses at once, not waiting for input")
        .expect("exit status");
    drop(stdin);
    assert_exit(&refused, 2);
    let message = stderr(&refused);
    assert!(message.contains("not a terminal"), "{message}");
    assert!(message.contains("--yes"), "{message}");
    assert!(
        lock.is_locked().await.expect("is_locked"),
        "refused, yet unlocked"
    );

    let waiter = {
        let lock = waiting.lock(&name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await })
    };
    await_queued(&server, &name, 1).await;
    let forced = run(&server, &["force-unlock", &name, "--yes"]).await;
    assert_exit(&forced, 0);
    assert!(stdout(&forced).contains("was held"), "{}", stdout(&forced));
    // Its waiter is woken and takes it; the old holder finds it gone.
    let next = waiter
        .await
        .expect("join")
        .expect("woken, then took the lock");
    assert!(guard.unlock().await.expect_err("taken away").is_not_held());
    next.unlock().await.expect("unlock");

    let again = json(&run(&server, &["--json", "force-unlock", &name, "--yes"]).await);
    assert_eq!(again["was_held"], false, "{again}");
}

/// A script that read the holder's owner id with `inspect --json` deletes that holder's hold
/// only, without a terminal and without `--yes`: a wrong id deletes nothing, the right one frees
/// the lock for its waiter, and the same id run again leaves the waiter's new hold alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_with_owner_deletes_that_holders_hold_only() {
    let server = RedisServer::start();
    let holding = client_named(&server, "stuck-job").await;
    let waiting = client_named(&server, "next-job").await;
    let name = unique_name("cli-owner");
    let guard = holding.lock(&name).acquire().await.expect("free");
    let waiter = {
        let lock = waiting.lock(&name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(10), None).await })
    };
    await_queued(&server, &name, 1).await;
    let look = json(&run(&server, &["--json", "inspect", &name]).await);
    let stuck = look["lock"]["holder"]["owner"]
        .as_str()
        .expect("the holder's owner id")
        .to_owned();

    let other = format!("{}:999", waiting.id());
    let wrong = run(&server, &["force-unlock", &name, "--owner", &other]).await;
    assert_exit(&wrong, 1);
    assert!(
        stderr(&wrong).contains("holds nothing"),
        "{}",
        stderr(&wrong)
    );
    assert!(stderr(&wrong).contains("stuck-job"), "{}", stderr(&wrong));
    assert!(!waiter.is_finished(), "a wrong owner id deleted the lock");

    let forced = run(&server, &["force-unlock", &name, "--owner", &stuck]).await;
    assert_exit(&forced, 0);
    assert!(
        stdout(&forced).contains(&format!("the hold of `{stuck}` deleted")),
        "{}",
        stdout(&forced)
    );
    let next = waiter
        .await
        .expect("join")
        .expect("woken, then took the lock");
    assert!(guard.unlock().await.expect_err("taken away").is_not_held());

    let again = run(&server, &["force-unlock", &name, "--owner", &stuck]).await;
    assert_exit(&again, 1);
    assert!(stderr(&again).contains("next-job"), "{}", stderr(&again));
    next.unlock()
        .await
        .expect("the new holder's hold was left alone");

    let free = json(
        &run(
            &server,
            &["--json", "force-unlock", &name, "--owner", &stuck],
        )
        .await,
    );
    assert_eq!(free["was_held"], false, "{free}");
    let both = run(
        &server,
        &["force-unlock", &name, "--owner", &stuck, "--yes"],
    )
    .await;
    assert_exit(&both, 2);
}

/// `lock-cli --url <server> <args>` at a 120 x 30 terminal.
fn at_terminal(server: &RedisServer, args: &[&str]) -> Terminal {
    let mut full = vec!["--url".to_owned(), server.url()];
    full.extend(args.iter().map(|arg| (*arg).to_owned()));
    Terminal::start(120, 30, Path::new(env!("CARGO_BIN_EXE_lock-cli")), &full)
}

/// A lock held by `stuck-job` with `next-job` queued for it (up to 20 s), and `force-unlock`
/// asking about it at a terminal; returns when the question shows, with the screen.
async fn asked_to_force_unlock(
    server: &RedisServer,
    name: &str,
) -> (
    LockGuard,
    JoinHandle<Result<LockGuard, LockError>>,
    Terminal,
) {
    let holding = client_named(server, "stuck-job").await;
    let waiting = client_named(server, "next-job").await;
    let guard = holding.lock(name).acquire().await.expect("free");
    let waiter = {
        let lock = waiting.lock(name);
        tokio::spawn(async move { lock.try_acquire(Duration::from_secs(20), None).await })
    };
    await_queued(server, name, 1).await;
    let terminal = at_terminal(server, &["force-unlock", name]);
    let question = format!("Force-unlock `{name}`? [y/N]");
    let screen = terminal
        .await_screen("the question", |screen| screen.contains(&question))
        .await;
    // Who holds it, for how long, and who waits, before the question.
    for shown in [
        "holder:      stuck-job\n",
        "held for:    ",
        "waiters:     1\n",
    ] {
        assert!(screen.contains(shown), "{shown:?} not shown:\n{screen}");
    }
    (guard, waiter, terminal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_at_a_terminal_answered_no_leaves_the_lock_held() {
    let server = RedisServer::start();
    let name = unique_name("cli-ask-no");
    let (guard, waiter, terminal) = asked_to_force_unlock(&server, &name).await;

    terminal.send_keys(&["n", "Enter"]);
    assert_eq!(terminal.await_exit().await, 1, "{}", terminal.screen());
    let screen = terminal.screen();
    assert!(screen.contains("left as it was"), "{screen}");
    assert!(
        !waiter.is_finished(),
        "the waiter was served: the lock was deleted"
    );
    guard
        .unlock()
        .await
        .expect("still held by its holder: the answer was no");
    waiter
        .await
        .expect("join")
        .expect("served once released")
        .unlock()
        .await
        .expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_at_a_terminal_answered_yes_frees_the_lock_and_wakes_a_waiter() {
    let server = RedisServer::start();
    let name = unique_name("cli-ask-yes");
    let (guard, waiter, terminal) = asked_to_force_unlock(&server, &name).await;

    terminal.send_keys(&["y", "Enter"]);
    assert_eq!(terminal.await_exit().await, 0, "{}", terminal.screen());
    let screen = terminal.screen();
    assert!(screen.contains("was held: deleted"), "{screen}");
    let next = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter is woken, not left to its timer")
        .expect("join")
        .expect("took the lock");
    assert!(guard.unlock().await.expect_err("taken away").is_not_held());
    next.unlock().await.expect("unlock");
}

/// The holder shown releases while the question is open, and the waiter takes the lock: a "yes"
/// was for the holder shown, so the new one keeps the lock and the command says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_at_a_terminal_leaves_a_holder_that_came_after_the_question() {
    let server = RedisServer::start();
    let name = unique_name("cli-ask-moved");
    let (guard, waiter, terminal) = asked_to_force_unlock(&server, &name).await;
    guard.unlock().await.expect("unlock");
    let next = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter is woken")
        .expect("join")
        .expect("took the lock");

    terminal.send_keys(&["y", "Enter"]);
    assert_eq!(terminal.await_exit().await, 1, "{}", terminal.screen());
    let screen = terminal.screen();
    assert!(
        screen.contains("changed hands while you answered"),
        "{screen}"
    );
    assert!(
        screen.contains("next-job"),
        "the new holder is named:\n{screen}"
    );
    next.unlock()
        .await
        .expect("the new holder keeps the lock: nobody decided on it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_line_per_change_and_stops_on_ctrl_c() {
    let server = RedisServer::start();
    let holding = client_named(&server, "watched-holder").await;
    let name = unique_name("cli-watch");
    let mut watching = lock_cli()
        .arg("--url")
        .arg(server.url())
        .args(["watch", &name, "--interval", "20ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("lock-cli starts");
    let mut lines = BufReader::new(watching.stdout.take().expect("piped")).lines();

    let first = next_line(&mut lines).await;
    assert!(
        first.contains(&format!("{name}  free, 0 waiting")),
        "{first}"
    );
    let guard = holding.lock(&name).acquire().await.expect("free");
    let held = next_line(&mut lines).await;
    assert!(held.contains("held by watched-holder for"), "{held}");
    guard.unlock().await.expect("unlock");
    let freed = next_line(&mut lines).await;
    assert!(freed.contains("free, 0 waiting"), "{freed}");

    let pid = watching.id().expect("running");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = tokio::time::timeout(Duration::from_secs(5), watching.wait())
        .await
        .expect("stops within 5 s")
        .expect("exit status");
    assert!(status.success(), "{status}");
}

/// A Redis that stops answering is reported within about two seconds, not after the client's
/// retry timeout, and the watch goes on once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_a_redis_that_stopped_answering_at_once() {
    let server = RedisServer::start();
    let proxy = lock_tests::TcpProxy::start(server.port()).await;
    let holding = client_named(&server, "watched-holder").await;
    let name = unique_name("cli-watch-down");
    let mut watching = lock_cli()
        .arg("--url")
        .arg(proxy.url())
        .args(["watch", &name, "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lock-cli starts");
    let mut lines = BufReader::new(watching.stdout.take().expect("piped")).lines();
    let mut errors = BufReader::new(watching.stderr.take().expect("piped")).lines();
    let first = next_line(&mut lines).await;
    assert!(first.contains("free, 0 waiting"), "{first}");

    proxy.blackhole(true);
    let reported = next_line(&mut errors).await;
    assert!(
        reported.contains("no answer from Redis within 2s"),
        "{reported}"
    );
    let guard = holding.lock(&name).acquire().await.expect("free");
    proxy.blackhole(false);
    let held = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the watch goes on once Redis answers")
        .expect("stdout readable")
        .expect("a line");
    assert!(held.contains("held by watched-holder for"), "{held}");
    guard.unlock().await.expect("unlock");
    watching.start_kill().expect("kill");
}

/// At a terminal, `watch` is one page redrawn in place: the first row stays its header however
/// often it refreshes and whoever holds the lock, and Ctrl-C gives the terminal back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_at_a_terminal_redraws_in_place_until_ctrl_c() {
    let server = RedisServer::start();
    let first = client_named(&server, "watcher-a").await;
    let second = client_named(&server, "watcher-b").await;
    let name = unique_name("cli-live");
    let terminal = at_terminal(&server, &["watch", &name, "--interval", "100ms"]);
    let header = format!("lock-cli watch `{name}` every 100ms (Ctrl-C to stop)");
    let in_place = |screen: &str| {
        screen.lines().next() == Some(header.as_str()) && screen.matches(&header).count() == 1
    };

    let free = format!("lock `{name}`: free");
    terminal
        .await_screen("the free lock", |screen| screen.contains(&free))
        .await;
    assert!(terminal.alternate_screen(), "not on the alternate screen");
    let guard = first.lock(&name).acquire().await.expect("free");
    terminal
        .await_screen("the first holder", |screen| {
            screen.contains("holder:      watcher-a\n")
        })
        .await;
    guard.unlock().await.expect("unlock");
    let guard = second.lock(&name).acquire().await.expect("free");
    let mut screen = terminal
        .await_screen("the hand-off", |screen| {
            screen.contains("holder:      watcher-b\n") && screen.contains("hand-offs seen: 2\n")
        })
        .await;
    assert!(in_place(&screen), "{screen}");
    for _ in 0..3 {
        let before = screen.clone();
        screen = terminal
            .await_screen("a refresh", |now| now != before)
            .await;
        assert!(in_place(&screen), "scrolled, or drawn twice:\n{screen}");
        assert!(screen.contains("holder:      watcher-b\n"), "{screen}");
        assert!(screen.contains("lease left:  "), "{screen}");
        assert!(
            screen.contains(&format!("last token:  {}\n", guard.fencing_token())),
            "{screen}"
        );
    }

    terminal.send_keys(&["C-c"]);
    assert_eq!(terminal.await_exit().await, 0, "{}", terminal.screen());
    assert!(
        !terminal.alternate_screen(),
        "the terminal was not given back"
    );
    assert!(
        !terminal.screen().contains(&header),
        "{}",
        terminal.screen()
    );
    guard.unlock().await.expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_bad_usage_exit_non_zero_with_a_message() {
    let unreachable = lock_cli()
        .args(["--url", "redis://127.0.0.1:1", "inspect", "x"])
        .output()
        .await
        .expect("lock-cli runs");
    assert_exit(&unreachable, 1);
    assert!(
        stderr(&unreachable).contains("redis://127.0.0.1:1"),
        "{}",
        stderr(&unreachable)
    );

    let server = RedisServer::start();
    let braces = run(&server, &["inspect", "a{b}"]).await;
    assert_exit(&braces, 1);
    assert!(
        stderr(&braces).contains("invalid lock name"),
        "{}",
        stderr(&braces)
    );

    let unknown = run(&server, &["unlock-everything"]).await;
    assert_exit(&unknown, 2);
    let bad_interval = run(&server, &["watch", "x", "--interval", "soon"]).await;
    assert_exit(&bad_interval, 2);
}
