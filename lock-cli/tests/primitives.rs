//! `lock-cli` run as a process against a real Redis with each primitive of the family held: the
//! read-write lock, the semaphore and the count-down latch are shown by `inspect`, `list` and
//! `watch` as the lock is, so an operator is never told "free" about a name that is held.

mod support;

use std::process::Stdio;

use lock_tests::{
    RedisServer,
    locks::{assert_released, assert_rw_released, client_named, sem_key},
    unique_name,
};
use serde_json::Value;
use support::{assert_exit, json, lock_cli, next_line, run, stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A line of `watch --json`, parsed.
fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
}

/// The scenario: a read lock held on one name, a permit on another. Neither is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_a_read_lock_and_a_semaphore_not_a_free_lock() {
    let server = RedisServer::start();
    let client = client_named(&server, "viewer-a").await;
    let (doc, pool) = (unique_name("cli-doc"), unique_name("cli-pool"));
    let read = client
        .read_write_lock(&doc)
        .read()
        .acquire()
        .await
        .expect("free");
    let semaphore = client.semaphore(&pool);
    assert!(semaphore.try_set_permits(3).await.expect("set"));
    let permit = semaphore.acquire(1).await.expect("free permits");

    let shown = run(&server, &["inspect", &doc]).await;
    assert_exit(&shown, 0);
    let text = stdout(&shown);
    assert!(
        text.starts_with(&format!("read-write lock `{doc}`: held by 1 reader\n")),
        "{text}"
    );
    assert!(text.contains("  reader:      viewer-a (owner "), "{text}");
    assert!(!text.contains(": free"), "{text}");
    let document = json(&run(&server, &["--json", "inspect", &doc]).await);
    assert!(document["lock"].is_null(), "{document}");
    let rw = &document["read_write_lock"];
    assert_eq!(rw["kind"], "read_write_lock");
    assert_eq!(rw["locked"], true);
    assert_eq!(rw["read_holds"], 1);
    assert!(rw["writer"].is_null(), "{rw}");
    assert_eq!(rw["readers"][0]["client_name"], "viewer-a");

    let shown = run(&server, &["inspect", &pool]).await;
    assert_exit(&shown, 0);
    let text = stdout(&shown);
    assert!(
        text.starts_with(&format!(
            "semaphore `{pool}`: 1 of 3 permits held, 2 free\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  holder:      viewer-a: 1 permit, permit id {}, held for ",
            permit.id()
        )),
        "{text}"
    );
    let document = json(&run(&server, &["--json", "inspect", &pool]).await);
    let sem = &document["semaphore"];
    assert_eq!(
        (&sem["total"], &sem["used"], &sem["available"]),
        (&Value::from(3), &Value::from(1), &Value::from(2)),
        "{sem}"
    );
    assert_eq!(sem["holders"][0]["id"], permit.id());
    assert_eq!(sem["holders"][0]["client_name"], "viewer-a");

    read.unlock().await.expect("unlock");
    permit.release().await.expect("release");
    assert_rw_released(&server, &doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_a_writer_and_a_latch() {
    let server = RedisServer::start();
    let client = client_named(&server, "editor@host-1").await;
    let (doc, batch) = (unique_name("cli-write"), unique_name("cli-batch"));
    let write = client
        .read_write_lock(&doc)
        .write()
        .acquire()
        .await
        .expect("free");
    let latch = client.count_down_latch(&batch);
    assert!(latch.try_set_count(3).await.expect("set"));

    let text = stdout(&run(&server, &["inspect", &doc]).await);
    assert!(
        text.starts_with(&format!("read-write lock `{doc}`: held by a writer\n")),
        "{text}"
    );
    assert!(
        text.contains("  writer:      editor@host-1 (owner "),
        "{text}"
    );
    assert!(
        text.contains(&format!("  last token:  {}\n", write.fencing_token())),
        "{text}"
    );
    let text = stdout(&run(&server, &["inspect", &batch]).await);
    assert!(
        text.starts_with(&format!("count-down latch `{batch}`: count 3\n")),
        "{text}"
    );
    assert!(text.contains("  expires in:  23h 59m"), "{text}");
    let document = json(&run(&server, &["--json", "inspect", &batch]).await);
    assert_eq!(document["count_down_latch"]["count"], 3, "{document}");

    write.unlock().await.expect("unlock");
    for _ in 0..3 {
        latch.count_down().await.expect("count down");
    }
    assert_rw_released(&server, &doc);
    // Open, the latch is gone: nothing of either name is left to show.
    let text = stdout(&run(&server, &["inspect", &batch]).await);
    assert!(
        text.starts_with(&format!("lock `{batch}`: free\n")),
        "{text}"
    );
    assert!(
        text.contains("nothing else of that name under prefix `lock`"),
        "{text}"
    );
}

/// `list` walks every kind, each on its own line with its kind; several kinds of one name are
/// listed apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_kind_with_a_kind_column() {
    let server = RedisServer::start();
    let client = client_named(&server, "lister").await;
    let base = unique_name("cli-kinds");
    let names = [1, 2, 3, 4].map(|i| format!("{base}:{i}"));
    let lock = client.lock(&names[0]).acquire().await.expect("free");
    // A lock and a read lock of one name: their keys are apart.
    let same_name = client
        .read_write_lock(&names[0])
        .read()
        .acquire()
        .await
        .expect("free");
    let read = client
        .read_write_lock(&names[1])
        .read()
        .acquire()
        .await
        .expect("free");
    let semaphore = client.semaphore(&names[2]);
    semaphore.try_set_permits(2).await.expect("set");
    let permit = semaphore.acquire(2).await.expect("free permits");
    let latch = client.count_down_latch(&names[3]);
    latch.try_set_count(1).await.expect("set");
    let pattern = format!("{base}:*");

    let listed = run(&server, &["list", "--pattern", &pattern]).await;
    assert_exit(&listed, 0);
    let lines: Vec<String> = stdout(&listed).lines().map(str::to_owned).collect();
    let expected = [
        ("lock            ", &names[0], "held by lister for "),
        (
            "read-write lock ",
            &names[0],
            "held by 1 reader (lister for ",
        ),
        (
            "read-write lock ",
            &names[1],
            "held by 1 reader (lister for ",
        ),
        (
            "semaphore       ",
            &names[2],
            "2 of 2 permits held, 0 free (lister)",
        ),
        ("count-down latch", &names[3], "count 1, expires in "),
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, (kind, name, state)) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(&format!("{kind}  {name}  {state}")),
            "{line:?} is not {kind} {name} {state}"
        );
    }

    let listed = json(&run(&server, &["list", "--json", "--pattern", &pattern]).await);
    let kinds: Vec<(&str, &str)> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|doc| {
            (
                doc["kind"].as_str().expect("a kind"),
                doc["name"].as_str().expect("a name"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("lock", names[0].as_str()),
            ("read_write_lock", names[0].as_str()),
            ("read_write_lock", names[1].as_str()),
            ("semaphore", names[2].as_str()),
            ("count_down_latch", names[3].as_str()),
        ]
    );
    let limited = json(
        &run(
            &server,
            &["list", "--json", "--limit", "2", "--pattern", &pattern],
        )
        .await,
    );
    assert_eq!(limited.as_array().map(Vec::len), Some(2), "{limited}");
    let cut = run(&server, &["list", "--limit", "2", "--pattern", &pattern]).await;
    assert_exit(&cut, 0);
    assert!(
        stderr(&cut).contains("more than 2 match") && stderr(&cut).contains("raise --limit"),
        "a cut list says so: {}",
        stderr(&cut)
    );
    let whole = run(&server, &["list", "--pattern", &pattern]).await;
    assert!(!stderr(&whole).contains("more than"), "{}", stderr(&whole));

    // A key of another type where a latch would be: left out with a warning, the rest listed.
    let foreign = format!("{base}:5");
    let _: () = server.cmd(&["SET", &format!("{{lock:{foreign}}}:latch"), "not a count"]);
    let listed = run(&server, &["list", "--pattern", &pattern]).await;
    assert_exit(&listed, 0);
    assert!(
        stderr(&listed).contains(&format!("`{foreign}` left out")),
        "{}",
        stderr(&listed)
    );
    assert!(stdout(&listed).contains(&names[3]), "{}", stdout(&listed));
    let _: i64 = server.cmd(&["DEL", &format!("{{lock:{foreign}}}:latch")]);

    // A limit of 0 would list nothing and look like "nothing is held": refused as bad usage.
    let zero = run(&server, &["list", "--limit", "0"]).await;
    assert_exit(&zero, 2);
    assert!(stderr(&zero).contains("at least 1"), "{}", stderr(&zero));

    lock.unlock().await.expect("unlock");
    same_name.unlock().await.expect("unlock");
    read.unlock().await.expect("unlock");
    permit.release().await.expect("release");
    latch.count_down().await.expect("count down");
    assert_released(&server, &names[0]);
    for name in &names[..2] {
        assert_rw_released(&server, name);
    }
}

/// `watch` follows the semaphore and the read-write lock of its name, a line per change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_permits_and_read_holds() {
    let server = RedisServer::start();
    let client = client_named(&server, "watched").await;
    let name = unique_name("cli-watch-kinds");
    let semaphore = client.semaphore(&name);
    semaphore.try_set_permits(2).await.expect("set");
    let mut watching = lock_cli()
        .arg("--url")
        .arg(server.url())
        .args(["watch", &name, "--interval", "20ms", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("lock-cli starts");
    let mut lines = BufReader::new(watching.stdout.take().expect("piped")).lines();

    let first = json_line(&next_line(&mut lines).await);
    assert_eq!(first["semaphore"]["used"], 0, "{first}");
    assert!(first["read_write_lock"].is_null(), "{first}");
    // Its connection is named as the tool's, not as a service's.
    let clients: String = server.cmd(&["CLIENT", "LIST"]);
    let own = format!("name=lock-cli/{} ", watching.id().expect("running"));
    assert!(clients.contains(&own), "{own} in {clients}");
    let permit = semaphore.acquire(1).await.expect("free permits");
    let taken = json_line(&next_line(&mut lines).await);
    assert_eq!(
        taken["semaphore"]["holders"][0]["id"],
        permit.id(),
        "{taken}"
    );
    let read = client
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("free");
    let reading = json_line(&next_line(&mut lines).await);
    assert_eq!(
        reading["read_write_lock"]["readers"][0]["client_name"], "watched",
        "{reading}"
    );
    permit.release().await.expect("release");
    read.unlock().await.expect("unlock");
    // The two releases may land in one look or two: wait for the one that has both.
    let mut after = json_line(&next_line(&mut lines).await);
    while !after["read_write_lock"].is_null() {
        after = json_line(&next_line(&mut lines).await);
    }
    assert_eq!(after["semaphore"]["used"], 0, "{after}");

    watching.start_kill().expect("kill");
    // A semaphore's definition stays (by design); what the rest left has a TTL.
    let _: i64 = server.cmd(&["DEL", &sem_key(&name)]);
    assert_rw_released(&server, &name);
}

/// Text lines of `watch` name the other kinds after the lock's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_lines_name_the_other_kinds() {
    let server = RedisServer::start();
    let client = client_named(&server, "reader-b").await;
    let name = unique_name("cli-watch-text");
    let read = client
        .read_write_lock(&name)
        .read()
        .acquire()
        .await
        .expect("free");
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
        first.contains(&format!(
            "{name}  free, 0 waiting; read-write lock: held by 1 reader (reader-b for "
        )),
        "{first}"
    );
    watching.start_kill().expect("kill");
    read.unlock().await.expect("unlock");
    assert_rw_released(&server, &name);
}

/// `force-unlock` deletes the lock only; asked about a name that is a read-write lock, it says
/// so instead of a bare "nothing to do".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_names_the_other_kinds_it_leaves() {
    let server = RedisServer::start();
    let client = client_named(&server, "writer-c").await;
    let name = unique_name("cli-force-rw");
    let write = client
        .read_write_lock(&name)
        .write()
        .acquire()
        .await
        .expect("free");
    let forced = run(&server, &["force-unlock", &name, "--yes"]).await;
    assert_exit(&forced, 0);
    assert!(
        stdout(&forced)
            .contains("was not held: nothing to do; a read-write lock of that name exists"),
        "{}",
        stdout(&forced)
    );
    let document = json(&run(&server, &["--json", "force-unlock", &name, "--yes"]).await);
    assert_eq!(document["others"], serde_json::json!(["read_write_lock"]));
    write.unlock().await.expect("still held: left alone");
    assert_rw_released(&server, &name);
}

/// `--owner` reaches a hold in the read-write lock (one reader of two) and a semaphore permit
/// by its id, and deletes that one only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_with_owner_deletes_a_read_hold_or_a_permit_by_its_id() {
    let server = RedisServer::start();
    let client = client_named(&server, "reader-d").await;
    let (doc, pool) = (unique_name("cli-owner-rw"), unique_name("cli-owner-sem"));
    let rw = client.read_write_lock(&doc);
    let first = rw.read().acquire().await.expect("free");
    let second = rw.read().acquire().await.expect("shared");
    let stuck = rw.info().await.expect("info").readers()[0]
        .owner()
        .to_owned();
    let forced = json(
        &run(
            &server,
            &["--json", "force-unlock", &doc, "--owner", &stuck],
        )
        .await,
    );
    assert_eq!(forced["kind"], "read_write_lock", "{forced}");
    assert_eq!(forced["was_held"], true, "{forced}");
    assert_eq!(rw.info().await.expect("info").readers().len(), 1);
    let (first, second) = (first.unlock().await, second.unlock().await);
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one reader was taken away: {first:?} {second:?}"
    );
    assert_rw_released(&server, &doc);

    let semaphore = client.semaphore(&pool);
    assert!(semaphore.try_set_permits(2).await.expect("set"));
    let kept = semaphore.acquire(1).await.expect("free permits");
    let stuck = semaphore.acquire(1).await.expect("free permits");
    let released = run(&server, &["force-unlock", &pool, "--owner", stuck.id()]).await;
    assert_exit(&released, 0);
    assert!(
        stdout(&released).starts_with(&format!("semaphore `{pool}`: the hold of")),
        "{}",
        stdout(&released)
    );
    assert!(
        stuck
            .release()
            .await
            .expect_err("released by id")
            .is_not_held()
    );
    kept.release()
        .await
        .expect("the other permit was left alone");

    // A holder past the first hundred that `inspect` lists, whose lease ends last.
    let busy = client.semaphore(unique_name("cli-owner-busy"));
    assert!(busy.try_set_permits(120).await.expect("set"));
    let mut permits = Vec::new();
    for _ in 0..120 {
        permits.push(busy.acquire(1).await.expect("free permits"));
    }
    let last = permits.pop().expect("120 permits");
    let released = run(
        &server,
        &["force-unlock", busy.name(), "--owner", last.id()],
    )
    .await;
    assert_exit(&released, 0);
    assert!(
        last.release()
            .await
            .expect_err("released by id")
            .is_not_held()
    );
    for permit in permits {
        permit.release().await.expect("left alone");
    }
}

/// A semaphore deleted by `delete_if_unused` is not listed, though what answers late copies of
/// its releases stays a while under its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_leaves_out_a_deleted_semaphore() {
    let server = RedisServer::start();
    let client = client_named(&server, "pool-owner").await;
    let (kept, deleted) = (unique_name("cli-kept"), unique_name("cli-deleted"));
    for name in [&kept, &deleted] {
        let semaphore = client.semaphore(name);
        assert!(semaphore.try_set_permits(1).await.expect("set"));
        // A lone acquisition, counted in the hash that outlives the deletion.
        semaphore
            .acquire(1)
            .await
            .expect("free")
            .release()
            .await
            .expect("release");
    }
    assert!(
        client
            .semaphore(&deleted)
            .delete_if_unused()
            .await
            .expect("unused")
    );
    let exists: i64 = server.cmd(&["EXISTS", &sem_key(&deleted)]);
    assert_eq!(exists, 1, "set-up: what answers late copies is still there");
    let listed = json(&run(&server, &["--json", "list", "--pattern", "cli-*"]).await);
    let names: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|entry| entry["name"].as_str())
        .collect();
    assert_eq!(names, [kept.as_str()], "{listed}");
}
