//! Mutual exclusion and fencing tokens across OS processes: many tasks in several `lock-worker`
//! processes do a non-atomic read-modify-write of a counter in Redis under one lock.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use lock_tests::{
    RedisServer, WorkerOutput, Workers,
    locks::{assert_released, last_token},
    unique_name,
};

use crate::WORKER;

/// How the workers protect their read-modify-write.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Lock,
    NoLock,
    Attribute,
}

fn run_counter(
    server: &RedisServer,
    name: &str,
    processes: usize,
    tasks: u64,
    iterations: u64,
    mode: Mode,
) -> Vec<WorkerOutput> {
    let command = if mode == Mode::Attribute {
        "macro-counter"
    } else {
        "counter"
    };
    let mut workers = Workers::command(WORKER);
    for _ in 0..processes {
        let mut args = vec![
            command.to_owned(),
            server.url(),
            name.to_owned(),
            tasks.to_string(),
            iterations.to_string(),
        ];
        if mode == Mode::NoLock {
            args.push("--no-lock".to_owned());
        }
        workers = workers.worker(args);
    }
    // A generous bound: five milliseconds per acquisition, two minutes at least.
    let acquisitions = processes as u64 * tasks * iterations;
    let limit = Duration::from_secs(120).max(Duration::from_millis(5 * acquisitions));
    let outputs = workers.spawn().wait_all(limit);
    for output in &outputs {
        output.assert_success();
    }
    outputs
}

fn counter(server: &RedisServer, name: &str) -> u64 {
    server.cmd(&["GET", &format!("{name}:counter")])
}

#[test]
fn the_lock_makes_a_read_modify_write_exact_across_processes() {
    let server = RedisServer::start();
    let name = unique_name("exclusion");
    let (processes, tasks, iterations) = (3, 8, 10);

    run_counter(&server, &name, processes, tasks, iterations, Mode::Lock);

    let expected = processes as u64 * tasks * iterations;
    assert_eq!(
        counter(&server, &name),
        expected,
        "updates were lost under the lock"
    );
    assert_released(&server, &name);
}

#[test]
fn without_the_lock_the_same_workload_loses_updates() {
    let server = RedisServer::start();
    let name = unique_name("no-lock");
    let (processes, tasks, iterations) = (3, 8, 10);

    run_counter(&server, &name, processes, tasks, iterations, Mode::NoLock);

    let expected = processes as u64 * tasks * iterations;
    let counted = counter(&server, &name);
    assert!(
        counted < expected,
        "expected lost updates without the lock, counted {counted} of {expected}"
    );
}

#[test]
fn fencing_tokens_strictly_increase_over_a_thousand_acquisitions() {
    let server = RedisServer::start();
    let name = unique_name("fencing");
    let (processes, tasks, iterations) = (4, 10, 25);

    let outputs = run_counter(&server, &name, processes, tasks, iterations, Mode::Lock);

    let mut tokens = Vec::new();
    for output in &outputs {
        // Each holder checks, under the lock, that its token is above the last one stored.
        assert_eq!(output.field("violations"), "0", "a token did not increase");
        tokens.extend(
            output
                .field("tokens")
                .split(',')
                .map(|token| token.parse::<u64>().expect("token")),
        );
    }
    let total = processes as u64 * tasks * iterations;
    assert_eq!(tokens.len() as u64, total);
    let distinct: HashSet<u64> = tokens.iter().copied().collect();
    assert_eq!(distinct.len() as u64, total, "a token was handed out twice");
    assert_eq!(counter(&server, &name), total);
    let fence: u64 = server.cmd(&["GET", &format!("{{lock:{name}}}:fence")]);
    assert_eq!(
        Some(&last_token(fence)),
        tokens.iter().max(),
        "the fencing state keeps the last token handed out"
    );
    assert_released(&server, &name);
}

/// The fault suite's soak run: 100 000 acquisitions of one lock by 4 processes × 25 tasks, no
/// fault injected: not one lost update, every token above the last. Minutes long, so outside
/// the default run: `scripts/soak.sh` runs it in release mode and prints the rate.
#[test]
#[ignore = "minutes long: run by scripts/soak.sh in release mode"]
fn a_hundred_thousand_acquisitions_across_processes_never_overlap() {
    let server = RedisServer::start();
    let name = unique_name("soak");
    let (processes, tasks, iterations) = (4, 25, 1_000);
    let started = Instant::now();

    let outputs = run_counter(&server, &name, processes, tasks, iterations, Mode::Lock);

    let elapsed = started.elapsed();
    let total = processes as u64 * tasks * iterations;
    for output in &outputs {
        assert_eq!(output.field("violations"), "0", "a token did not increase");
    }
    assert_eq!(counter(&server, &name), total, "an update was lost");
    assert_released(&server, &name);
    println!(
        "{total} acquisitions across {processes} processes in {elapsed:.1?}: {:.0}/s, 0 overlaps",
        total as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn an_annotated_function_is_exact_across_processes() {
    let server = RedisServer::start();
    let name = unique_name("attribute-exclusion");
    let (processes, tasks, iterations) = (3, 8, 10);

    let outputs = run_counter(
        &server,
        &name,
        processes,
        tasks,
        iterations,
        Mode::Attribute,
    );

    let expected = processes as u64 * tasks * iterations;
    for output in &outputs {
        assert_eq!(output.field("acquired"), (tasks * iterations).to_string());
    }
    assert_eq!(
        counter(&server, &name),
        expected,
        "updates were lost under the attribute"
    );
    assert_released(&server, &name);
}
