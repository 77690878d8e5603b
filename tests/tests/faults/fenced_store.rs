//! The fault suite's fenced store: a holder frozen past its lease (`SIGSTOP`, as a long GC pause
//! or a frozen VM would) while other processes take the lock and write; when it wakes, it writes
//! with its old token. A store that checks fencing tokens accepts writes only from the newest
//! holder; the same run against a store that does not check them shows the stale write it
//! prevents (the control).

use std::{
    thread,
    time::{Duration, Instant},
};

use lock_tests::{RedisServer, WorkerOutput, Workers, locks::assert_released, unique_name};

const WORKER: &str = env!("CARGO_BIN_EXE_lock-worker");

/// The fixed lease of every hold: the frozen holder loses it while it sleeps.
const LEASE_MS: u64 = 300;
/// How long the first worker stays frozen: its lease, and time for the others to write.
const FROZEN: Duration = Duration::from_millis(1_500);
/// Rounds of take, write, release per worker.
const ROUNDS: u64 = 8;

/// Three workers write through `store`; the first freezes on its first hold, and is thawed once
/// the others have written. Returns the tokens the store accepted, in order, and the outputs.
fn run(server: &RedisServer, name: &str, store: &str) -> (Vec<u64>, Vec<WorkerOutput>) {
    let mut workers = Workers::command(WORKER);
    for index in 0..3 {
        let mut args = vec![
            "fenced-writer".to_owned(),
            server.url(),
            name.to_owned(),
            ROUNDS.to_string(),
            LEASE_MS.to_string(),
            store.to_owned(),
        ];
        if index == 0 {
            args.push("--pause".to_owned());
        }
        workers = workers.worker(args);
    }
    let mut workers = workers.spawn();
    assert!(
        workers.wait_for_stdout(0, "pausing", Duration::from_secs(20)),
        "the first worker took the lock and froze: {}",
        workers.stdout_so_far(0)
    );
    let frozen_at = Instant::now();
    let log = format!("{name}:log");
    // Thaw it only once another holder wrote after its lease ran out.
    while server.cmd::<u64>(&["LLEN", &log]) == 0 || frozen_at.elapsed() < FROZEN {
        assert!(
            frozen_at.elapsed() < Duration::from_secs(20),
            "no other worker wrote while the first was frozen"
        );
        thread::sleep(Duration::from_millis(20));
    }
    workers.resume(0);
    let outputs = workers.wait_all(Duration::from_secs(60));
    for output in &outputs {
        output.assert_success();
    }
    let accepted: Vec<String> = server.cmd(&["LRANGE", &log, "0", "-1"]);
    let accepted = accepted
        .iter()
        .map(|token| token.parse().expect("a token"))
        .collect();
    (accepted, outputs)
}

/// The token the frozen worker held when it froze: its first `held=`.
fn frozen_token(outputs: &[WorkerOutput]) -> u64 {
    outputs[0].field("held").parse().expect("a token")
}

/// Whether `tokens` only ever go up.
fn strictly_increasing(tokens: &[u64]) -> bool {
    tokens.windows(2).all(|pair| pair[0] < pair[1])
}

#[test]
fn a_store_checking_fencing_tokens_refuses_the_frozen_holders_write() {
    let server = RedisServer::start();
    let name = unique_name("fenced-store");
    let (accepted, outputs) = run(&server, &name, "fenced");
    assert!(
        strictly_increasing(&accepted),
        "every accepted write came from the newest holder: {accepted:?}"
    );
    let stale = frozen_token(&outputs);
    assert!(
        outputs[0]
            .stdout
            .contains(&format!("wrote={stale}:rejected")),
        "the frozen holder's write, with its old token, was refused:\n{}",
        outputs[0].stdout
    );
    assert!(!accepted.contains(&stale), "{accepted:?}");
    let writes: u64 = outputs
        .iter()
        .map(|output| output.field("accepted").parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(writes, accepted.len() as u64);
    assert_eq!(writes, 3 * ROUNDS - 1, "only the stale write was refused");
    assert_released(&server, &name);
}

/// The control: without the check, the same run lets the frozen holder overwrite newer data.
#[test]
fn without_the_check_the_frozen_holder_overwrites_newer_data() {
    let server = RedisServer::start();
    let name = unique_name("unfenced-store");
    let (accepted, outputs) = run(&server, &name, "unfenced");
    let stale = frozen_token(&outputs);
    let position = accepted
        .iter()
        .position(|token| *token == stale)
        .expect("the stale write was accepted");
    assert!(
        accepted[..position].iter().any(|token| *token > stale),
        "a newer holder had written before it: {accepted:?}"
    );
    assert!(!strictly_increasing(&accepted), "{accepted:?}");
    assert_released(&server, &name);
}
